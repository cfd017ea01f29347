"""Every email template, rendered in both formats from its sample data, says what it must and nothing secret."""

from pathlib import Path

import pytest
from django.conf import settings

from enforcement import notifications
from enforcement.notifications import REMEDIATION, TEMPLATES, URGENCY, render, sample_context
from tests.emails.mailbox import assert_no_secrets, plain, visible_text

CASE_URL = "http://127.0.0.1:8000/admin/enforcement/case/1042/change/"
SECRETS_CLAUSE = "Don't send full credit-card numbers, government IDs, passwords, or other secrets."
ABUSE_CLAUSE = "Sustained abuse (sending events on behalf of a customer who didn't sign up"

# What each email must say, in the text and in the HTML alike.
MUST_SAY = {
    "customer_warning": [
        "This is a warning: nothing has changed on your account",
        "full card number ([CARD REDACTED ...1111]) in 312 checkout events",  # what was seen
        SECRETS_CLAUSE,  # which rule, quoted
        REMEDIATION["secrets-in-events"],  # what to do
        "Please fix this by Sunday 6 December 2026, 12:00 UTC",  # the remediation deadline
        "the next step under our policy is a rate limit",
        "3 reports of this kind",  # the rule once, with its count
        "a member of our Trust & Safety team",  # who decided (a person)
        "our automated systems detected this activity",  # how it was detected
        "Acceptable Use Policy rules secrets-in-events v2",  # the policy version applied
        "reply to this email by Tuesday 29 December 2026",  # redress, with its deadline
        "A team lead who took no part in this decision",
    ],
    "customer_throttle": [
        "We have lowered the rate limits of your API key sk_live_4eC39HqL",
        "60 requests per minute per key",
        "10 requests per minute from each IP address",
        "The limits apply until Sunday 20 December 2026, 12:00 UTC",
        SECRETS_CLAUSE,
        REMEDIATION["secrets-in-events"],
    ],
    "customer_suspend": [
        "We have suspended all API keys of your account",
        "requests made with these keys are refused",
        "act first and explain later",
        URGENCY["sustained-rate-abuse"],  # why it could not wait
        "a team lead reviews it by Sunday 29 November 2026, 12:40 UTC",
        "2.1 million events in 30 minutes",
        ABUSE_CLAUSE,
        REMEDIATION["sustained-rate-abuse"],
        "taken automatically, under our policy, without a person deciding; a team lead reviews it",
    ],
    "customer_terminate": [
        "We have closed your Millimetric account acct_demo00000000001",
        "revoked all of its API keys",
        "approved by a second team lead",
        ABUSE_CLAUSE,
        SECRETS_CLAUSE,
        "the most serious here",  # the rule that set the severity comes first
        "reply to this email by Tuesday 29 December 2026",
    ],
    "customer_lifted": [
        "We have lifted the suspension on all API keys of your account",
        "Requests made with your API keys are accepted again",
    ],
    "customer_appeal_received": [
        "We received your appeal (#12) against the suspension",
        "the suspension stays in force",
        "we will email you the decision",
    ],
    "customer_appeal_decided": [
        "we overturned it",
        "The suspension has been lifted, and it no longer counts against your account",
        "a load test against your own staging sites",  # the lead's note
    ],
    "customer_key_revoked": [
        "Your secret key sk_live_4eC39HqL was published where anyone can see it",
        "https://github.com/acme-analytics/shop/blob/3f2a9c1/config/settings.py",
        "revoked it at once, on Sunday 29 November 2026, 11:41 UTC",
        "Create a new secret key for your account",
        "an environment variable or a secret manager",
        "the key stays in the repository's history",
        "sk_live_ keys only on servers",
        "Don't share API keys publicly.",
        "our automated systems detected this activity",  # the statement of reasons of a revocation
        "taken automatically, under our policy, without a person deciding",
        "Acceptable Use Policy rules key-exposure v1",
        "you believe we revoked it by mistake, reply to this email",
    ],
    "staff_critical_case": [
        "A critical violation was reported for Acme Analytics Ltd (acct_demo00000000001)",
        "sustained-rate-abuse",
        "Sunday 29 November 2026, 12:40 UTC",
        "2.1 million events in 30 minutes",
        CASE_URL,
    ],
    "staff_awaiting_approval": [
        "agent.alex proposed a suspension on case #1042",
        "needs a lead's approval",
        "Card numbers again after the warning",
        CASE_URL,
    ],
    "staff_action_failed": [
        "Applying rate limit #78 on case #1042 failed after every retry",
        "OperationalError: could not connect to server",
        "Retry it once the cause is fixed",
        CASE_URL,
    ],
    "staff_act_first_review": [
        "An act-first suspension of Acme Analytics Ltd",
        "A lead must review it by Sunday 29 November 2026, 12:40 UTC",
        "confirm it, or revert it",
        "token:abuse-detector (act-first)",
        CASE_URL,
    ],
    "staff_detector_act_first": [
        "The detector abuse-detector (owned by service token abuse-detector) has lost act-first",
        "its precision is 85% over its last 20 decided reports, under the threshold of 90%",
        "its critical reports open a case for a lead instead of suspending at once",
        "131 actioned, 9 dismissed, 4 overturned on appeal",
        "Sunday 29 November 2026, 11:41 UTC",
        "Open the source: http://127.0.0.1:8000/admin/enforcement/source/7/change/",
    ],
}

SUBJECTS = {
    "customer_warning": "Action needed by 6 Dec 2026: Acceptable Use Policy warning (case #1042)",
    "customer_throttle": "Your Millimetric API keys are rate-limited (case #1042)",
    "customer_suspend": "Your Millimetric account is suspended (case #1042)",
    "customer_terminate": "Your Millimetric account has been closed (case #1042)",
    "customer_lifted": "We have lifted the suspension on your Millimetric account (case #1042)",
    "customer_appeal_received": "We received your appeal (case #1042)",
    "customer_appeal_decided": "Your appeal was successful (case #1042)",
    "customer_key_revoked": "Your Millimetric secret key sk_live_4eC39HqL was revoked after being exposed publicly",
    "staff_critical_case": "[T&S] Critical case #1042: Acme Analytics Ltd (sustained-rate-abuse), review by 12:40 UTC",
    "staff_awaiting_approval": "[T&S] Approval needed: suspension on Acme Analytics Ltd (case #1042)",
    "staff_action_failed": "[T&S] Failed to apply rate limit #78 on Acme Analytics Ltd (case #1042)",
    "staff_act_first_review": "[T&S] Review act-first suspension on Acme Analytics Ltd by 12:40 UTC (case #1042)",
    "staff_detector_act_first": "[T&S] Detector abuse-detector lost act-first: precision 85% under 90%",
}


def test_every_template_has_a_subject_a_text_and_an_html_file():
    folder = Path(settings.BASE_DIR) / "templates" / "emails"
    for name in TEMPLATES:
        for suffix in (".subject.txt", ".txt", ".html"):
            assert (folder / f"{name}{suffix}").is_file(), f"{name}{suffix} is missing"
    assert set(MUST_SAY) == set(SUBJECTS) == set(TEMPLATES)


@pytest.mark.parametrize("template", list(TEMPLATES))
def test_template_renders_in_both_formats_with_sample_data(template):
    subject, text, html = render(template, sample_context(template))

    assert subject == SUBJECTS[template]
    assert html.lstrip().startswith("<!DOCTYPE html>") and f"<title>{subject.replace('&', '&amp;')}</title>" in html
    seen_text, seen_html = plain(text), visible_text(html)
    for phrase in MUST_SAY[template]:
        assert phrase in seen_text, f"text of {template} lacks {phrase!r}"
        assert phrase in seen_html, f"HTML of {template} lacks {phrase!r}"
    for rendered in (subject, text, seen_html):
        assert "{{" not in rendered and "{%" not in rendered
        assert "None" not in rendered  # a missing value printed as-is
        assert_no_secrets(rendered, "4111111111111111", "4111 1111 1111 1111")
    # Plain text is not HTML-escaped; no line ends in spaces, no run of blank lines.
    assert "&#x27;" not in text and "&amp;" not in text and "<p" not in text
    assert "\n\n\n" not in text and all(line == line.rstrip() for line in text.splitlines())


@pytest.mark.parametrize("template", [t for t, audience in TEMPLATES.items() if audience == "customer"])
def test_customer_emails_are_mandatory_notices_that_invite_a_reply(template):
    subject, text, html = render(template, sample_context(template))
    for seen in (plain(text), visible_text(html)):
        assert "Hello Acme Analytics Ltd," in seen
        assert "reply to this email or write to trust@millimetric.ai" in seen
        assert "mandatory service notice about your Millimetric account Acme Analytics Ltd" in seen
        assert "/admin/" not in seen  # staff links stay with staff
    assert 'href="mailto:trust@millimetric.ai"' in html


@pytest.mark.parametrize("template", [t for t, audience in TEMPLATES.items() if audience == "customer"])
def test_customer_emails_leave_out_the_internal_reason(template):
    context = sample_context(template)
    context["reason"] = "internal note: ladder says suspend, agent thinks they are shady"
    subject, text, html = render(template, context)
    assert "shady" not in text and "shady" not in html


@pytest.mark.parametrize("template", [t for t, audience in TEMPLATES.items()
                                      if audience == "staff" and t != "staff_detector_act_first"])
def test_staff_emails_link_to_the_admin_case_page(template, settings):
    settings.CONSOLE_BASE_URL = "https://console.millimetric.ai"
    subject, text, html = render(template, sample_context(template))
    url = "https://console.millimetric.ai/admin/enforcement/case/1042/change/"
    assert f"Open the case: {url}" in text
    assert f'href="{url}"' in html
    assert subject.startswith("[T&S] ")


def test_the_detector_alert_links_to_the_source_and_says_when_it_recovers(settings):
    settings.CONSOLE_BASE_URL = "https://console.millimetric.ai"
    context = {**sample_context("staff_detector_act_first"), "withheld": False, "precision": 0.95}
    subject, text, html = render("staff_detector_act_first", context)
    assert subject == "[T&S] Detector abuse-detector may act first again: precision 95%"
    url = "https://console.millimetric.ai/admin/enforcement/source/7/change/"
    for seen in (plain(text), visible_text(html)):
        assert "may act first again: its precision is 95% over its last 20 decided reports" in seen
        assert "lost act-first" not in seen and "/case/" not in seen
        assert f"Open the source: {url}" in seen
    assert f'href="{url}"' in html


def test_dates_follow_the_configured_time_zone(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    subject, text, html = render("customer_warning", sample_context("customer_warning"))
    assert "Please fix this by Sunday 6 December 2026, 13:00 CET" in plain(text)


def test_a_value_that_is_not_a_date_does_not_break_rendering():
    context = {**sample_context("customer_throttle"), "expires_at": "soon"}
    subject, text, html = render("customer_throttle", context)
    assert "The limits apply until" in text


# ------------------------------------------------------------------ variants of one template


def test_suspension_that_was_not_act_first_names_its_keys_and_end():
    context = {**sample_context("customer_suspend"), "act_first": False, "keys": ["sk_live_4eC39HqL"],
               "expires_at": "2026-12-13T09:30:00+00:00"}
    subject, text, html = render("customer_suspend", context)
    assert subject == "Your Millimetric API key is suspended (case #1042)"
    assert "We have suspended your API key sk_live_4eC39HqL" in plain(text)
    assert "requests made with this key are refused" in plain(text)
    assert "The suspension ends on Sunday 13 December 2026, 09:30 UTC" in plain(text)
    assert "act first" not in text and "act first" not in html


def test_lifted_after_expiry_says_it_ended_as_planned():
    context = {**sample_context("customer_throttle"), "action_status": "expired", "how": "expired"}
    subject, text, html = render("customer_lifted", context)
    assert subject == "The rate limit on your Millimetric account has ended (case #1042)"
    for seen in (plain(text), visible_text(html)):
        assert "The rate limit on your API key sk_live_4eC39HqL ended on Sunday 20 December 2026, 12:00 UTC" in seen
        assert "Your usual rate limits apply again" in seen


def test_lifted_termination_reopens_the_account():
    context = {**sample_context("customer_terminate"), "action_status": "reverted", "how": "reverted"}
    subject, text, html = render("customer_lifted", context)
    assert subject == "Your Millimetric account has been reopened (case #1042)"
    assert "We have reopened your Millimetric account and its API keys." in plain(text)


def test_upheld_appeal_keeps_the_action_and_says_what_to_do():
    context = {**sample_context("customer_appeal_decided"), "outcome": "upheld", "action_status": "applied",
               "expires_at": "2026-12-13T09:30:00+00:00", "note": "The traffic continued after your reply."}
    subject, text, html = render("customer_appeal_decided", context)
    assert subject == "Decision on your appeal: the suspension stands (case #1042)"
    for seen in (plain(text), visible_text(html)):
        assert "we upheld it: the decision stands" in seen
        assert "The suspension stays in force until Sunday 13 December 2026, 09:30 UTC" in seen
        assert REMEDIATION["sustained-rate-abuse"] in seen
        assert "The traffic continued after your reply." in seen
        assert "sorry" not in seen


def test_overturned_warning_is_withdrawn():
    context = {**sample_context("customer_warning"), "action_status": "reverted", "outcome": "overturned",
               "note": ""}
    subject, text, html = render("customer_appeal_decided", context)
    assert "The warning is withdrawn, and it no longer counts against your account." in plain(text)
    assert "A note from the team lead" not in text


def test_appeal_received_for_a_warning_keeps_the_deadline():
    context = {**sample_context("customer_warning"), "appeal_id": 3}
    subject, text, html = render("customer_appeal_received", context)
    assert "the warning stays on record and its deadline of Sunday 6 December 2026, 12:00 UTC still applies" in (
        plain(text)
    )


def test_revoked_restricted_key_without_a_link():
    context = {**sample_context("customer_key_revoked"), "key_prefix": "rk_live_Zx81QpLm", "key_kind": "restricted",
               "leak_url": "javascript:alert(1)"}
    subject, text, html = render("customer_key_revoked", context)
    assert subject == "Your Millimetric restricted key rk_live_Zx81QpLm was revoked after being exposed publicly"
    assert "Create a new restricted key" in plain(text)
    assert 'href="javascript' not in html


def test_key_revoked_with_only_the_webhook_minimum():
    subject, text, html = render("customer_key_revoked", {"account_id": "acct_x", "account_name": "Zed",
                                                          "key_prefix": "sk_live_4eC39HqL"})
    assert "Your secret key sk_live_4eC39HqL was published where anyone can see it." in plain(text)
    assert "(case #" not in subject


def test_staff_termination_request_mentions_the_second_lead():
    context = {**sample_context("staff_awaiting_approval"), "action_kind": "terminate"}
    subject, text, html = render("staff_awaiting_approval", context)
    assert subject == "[T&S] Approval needed: account closure on Acme Analytics Ltd (case #1042)"
    assert "A termination needs a second lead" in text


# ------------------------------------------------------------------ escaping and secrets


def test_text_is_not_escaped_and_html_is():
    context = {**sample_context("customer_warning"), "account_name": "Bob's <Shop> & Co"}
    subject, text, html = render("customer_warning", context)
    assert "Hello Bob's <Shop> & Co," in text
    assert "Bob&#x27;s &lt;Shop&gt; &amp; Co" in html and "<Shop>" not in html
    assert "Don't send full credit-card numbers" in text


def test_secrets_and_evidence_never_reach_an_email_even_if_passed_in():
    token = "sk_live_4eC39HqLmT8Zr2VbN0pXy6WqA1sDf3Gh"
    context = sample_context("customer_appeal_decided")
    context["note"] = f"Card 4242 4242 4242 4242 and key {token} were in the test data; password=hunter2."
    context["violations"][0]["summary"] = "card_number=5555555555554444 in 3 events"
    context["evidence"] = {"sample": {"email": "shopper@victim.example"}}
    context["violations"][0]["evidence"] = {"raw": "shopper@victim.example"}
    for template in ("customer_appeal_decided", "customer_suspend", "staff_awaiting_approval"):
        subject, text, html = render(template, context)
        for rendered in (subject, text, html):
            assert_no_secrets(rendered, "4242 4242 4242 4242", "5555555555554444", token, "hunter2",
                              "shopper@victim.example")
    subject, text, html = render("customer_appeal_decided", context)
    assert "[CARD REDACTED ...4242]" in text and "sk_live_4eC39HqL...f3Gh" in text
    assert "sk_live_4eC39HqL" in text and "password=[REDACTED]" in text


# ------------------------------------------------------------------ sample data


def test_sample_context_is_a_fresh_copy_for_known_templates_only():
    sample = sample_context("customer_warning")
    sample["violations"][0]["summary"] = "changed"
    assert sample_context("customer_warning")["violations"][0]["summary"] != "changed"
    with pytest.raises(KeyError):
        sample_context("customer_unknown")


def test_samples_only_use_rules_of_the_catalogue(db):
    from enforcement.models import Rule

    catalogue = dict(Rule.objects.values_list("code", "clause"))
    for template in TEMPLATES:
        sample = sample_context(template)
        for violation in [*sample.get("violations", []), *filter(None, [sample.get("violation")])]:
            assert catalogue[violation["rule"]] == violation["rule_clause"], (template, violation["rule"])
        assert {r["code"] for r in sample.get("rules", [])} <= set(catalogue)
    assert set(notifications.REMEDIATION) <= set(catalogue) and set(URGENCY) <= set(catalogue)
    assert {code for code, in Rule.objects.filter(act_first=True).values_list("code")} <= set(URGENCY)


def test_every_rule_has_its_own_guidance(db):
    from enforcement.models import Rule

    assert set(Rule.objects.values_list("code", flat=True)) == set(REMEDIATION)


def test_render_does_not_change_the_context_it_is_given():
    context = sample_context("customer_throttle")
    before = repr(context)
    render("customer_throttle", context)
    assert repr(context) == before



def test_a_warning_without_a_deadline_still_reads_well():
    context = {**sample_context("customer_warning"), "remediation_deadline": None}
    subject, text, html = render("customer_warning", context)
    assert subject == "Action needed: Acceptable Use Policy warning (case #1042)"
    assert "Please fix this as soon as you can, and reply" in plain(text)


@pytest.mark.parametrize("template", list(TEMPLATES))
def test_every_template_survives_a_sparse_context(template):
    subject, text, html = render(template, {"account_id": "acct_x", "account_name": "Zed"})
    assert subject and "None" not in subject + text + visible_text(html)
    if TEMPLATES[template] == "customer":
        assert "Hello Zed," in text
