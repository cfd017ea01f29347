"""The AUP rule catalogue: one rule per clause of the policy, plus rate abuse and security research."""

from django.db import migrations

RULES = [
    {
        "code": "covert-tracking",
        "title": "Tracking people without informing them",
        "clause": "Don't use Millimetric to track people who have not been informed it's happening, "
        "where the law requires that they be.",
        "default_severity": "medium",
    },
    {
        "code": "special-category-data",
        "title": "Special-category data without a legal basis",
        "clause": "Don't send special-category data (e.g. health, race, sexual orientation, political opinion, "
        "religion) as event properties unless you have a clear legal basis.",
        "default_severity": "high",
    },
    {
        "code": "childrens-data",
        "title": "Children's personal data in violation of COPPA",
        "clause": "Don't send children's personal data in violation of COPPA or equivalent laws.",
        "default_severity": "high",
    },
    {
        "code": "secrets-in-events",
        "title": "Card numbers, government IDs, passwords or secrets in events",
        "clause": "Don't send full credit-card numbers, government IDs, passwords, or other secrets. "
        "They don't belong in analytics events.",
        "default_severity": "medium",
    },
    {
        "code": "security-abuse",
        "title": "Reverse engineering, vulnerability probing or denial of service",
        "clause": "Don't attempt to reverse-engineer the Service, probe for vulnerabilities outside our "
        "security program, or run denial-of-service attacks.",
        "default_severity": "critical",
        "act_first": True,
    },
    {
        "code": "key-exposure",
        "title": "API key shared publicly or of the wrong type",
        "clause": "Don't share API keys publicly. Use the appropriate key type (pk_live_* for browser, "
        "sk_live_* for server, rk_live_* for read-only analytics).",
        "default_severity": "medium",
    },
    {
        "code": "spam-fraud",
        "title": "Spam, scraping, click farms or fraudulent metrics",
        "clause": "Don't use Millimetric to spam, scrape sites you don't own, run click farms or otherwise "
        "inflate metrics fraudulently.",
        "default_severity": "critical",
        "act_first": True,
    },
    {
        "code": "malware-illegal-content",
        "title": "Malware, illegal or violent content on a tracked site",
        "clause": "Don't host malware, illegal content, or content that promotes violence on a site running "
        "our snippet.",
        "default_severity": "critical",
        "act_first": True,
    },
    {
        "code": "impersonation",
        "title": "Impersonating another person or entity",
        "clause": "Don't impersonate another person or entity.",
        "default_severity": "high",
    },
    {
        "code": "unlawful-use",
        "title": "Violating law, sanctions or export controls",
        "clause": "Don't use the Service to violate any applicable law or regulation, including sanctions and "
        "export controls.",
        "default_severity": "high",
    },
    {
        "code": "rate-limit-overuse",
        "title": "Exceeding the published rate limits",
        "clause": "We publish per-key and per-IP rate limits in the docs. If you need more, ask.",
        "default_severity": "low",
    },
    {
        "code": "sustained-rate-abuse",
        "title": "Sustained abuse of the ingest path",
        "clause": "Sustained abuse (sending events on behalf of a customer who didn't sign up, deliberately "
        "spiking another customer's bill, etc.) is grounds for immediate suspension.",
        "default_severity": "critical",
        "act_first": True,
    },
    {
        "code": "security-research",
        "title": "Good-faith security research (safe harbour)",
        "clause": "Good-faith security research is welcome. Please report findings to security@millimetric.ai. "
        "We will not pursue legal action against researchers who comply with our disclosure policy and avoid "
        "accessing other customers' data.",
        "default_severity": "low",
        "auto_action": False,
        "description": "Recorded for context; never actioned automatically. A person decides.",
    },
]


def forwards(apps, schema_editor):
    Rule = apps.get_model("enforcement", "Rule")
    for spec in RULES:
        defaults = {k: v for k, v in spec.items() if k != "code"}
        Rule.objects.update_or_create(code=spec["code"], defaults=defaults)


def backwards(apps, schema_editor):
    apps.get_model("enforcement", "Rule").objects.filter(code__in=[r["code"] for r in RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("enforcement", "0002_audit_append_only")]
    operations = [migrations.RunPython(forwards, backwards)]
