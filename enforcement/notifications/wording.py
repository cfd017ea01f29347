"""The policy's wording in customer notices: what to call each measure, what to do about each rule, and why
acting first was urgent. Plain data, edited here as the policy's voice changes."""


# How an action is named in a sentence ("the suspension on your account").
ACTION_LABELS = {
    "warning": "warning",
    "throttle": "rate limit",
    "suspend": "suspension",
    "terminate": "account closure",
}


KEY_KIND_LABELS = {"pk_live_": "publishable key", "sk_live_": "secret key", "rk_live_": "restricted key"}


# What the customer should do, per rule of the policy; shown under "What to do".
REMEDIATION = {
    "covert-tracking": "Show people a clear notice (and ask for consent where the law requires it) before your "
    "site or app sends their events, or stop sending events about people who were not informed.",
    "special-category-data": "Stop sending the special-category properties described above, or reply with the "
    "legal basis you rely on for them. Remove them from your tracking code and check that no other event "
    "carries them.",
    "childrens-data": "Stop sending events about children, or reply to show us how you comply with COPPA or the "
    "equivalent law (for example, verifiable parental consent).",
    "secrets-in-events": "Remove the field from the events you send, and check your tracking code for other places "
    "that copy form fields or request bodies into events. If a password or secret was sent, change it: treat it "
    "as exposed.",
    "security-abuse": "Stop the traffic described above. If you are doing security research, report it to "
    "security@millimetric.ai and follow our disclosure policy: research in good faith is welcome.",
    "key-exposure": "Replace the exposed key with a new one, remove it from the public place where it was found, "
    "and use the right key type: pk_live_ keys in browsers, sk_live_ keys only on servers, rk_live_ keys for "
    "read-only analytics.",
    "spam-fraud": "Stop sending events that do not come from real visitors of sites you own (bots, click farms, "
    "scraped pages), and reply to tell us how the traffic was produced.",
    "malware-illegal-content": "Remove the malware or content from the site running our snippet, or remove our "
    "snippet from that site, and reply when it is done.",
    "impersonation": "Stop presenting your account, site or events as another person or organisation, and reply "
    "to tell us what you changed.",
    "unlawful-use": "Stop the use described above and reply to tell us what you changed; if you believe the use "
    "is lawful, tell us why.",
    "rate-limit-overuse": "Keep your traffic within the published per-key and per-IP rate limits (batch events and "
    "back off when you get a 429 response), or reply to ask for a higher limit.",
    "sustained-rate-abuse": "Stop sending events on behalf of sites or customers who did not sign up, and reply to "
    "tell us which key or integration produced the traffic.",
    "security-research": "Nothing is required of you. Please report any findings to security@millimetric.ai.",
}


DEFAULT_REMEDIATION = "Stop the activity described above and reply to this email to tell us what you changed."


# Why an act-first action could not wait for a conversation, per rule.
URGENCY = {
    "security-abuse": "Probing and denial-of-service traffic puts the service, and every customer who relies on it, "
    "at risk for as long as it continues.",
    "spam-fraud": "Fraudulent traffic distorts other people's analytics and can inflate their bills for as long as "
    "it continues.",
    "malware-illegal-content": "A site serving malware or illegal content harms its visitors for as long as it "
    "stays up.",
    "sustained-rate-abuse": "The traffic was ongoing and was affecting the service and other customers' bills; a "
    "warning could not have stopped it in time.",
}


DEFAULT_URGENCY = "The activity was ongoing and was causing harm that a warning could not have stopped in time."

