"""Made-up facts for every template, for the admin's email preview and the template tests."""

import copy

_SAMPLE_CASE = {
    "case_id": 1042,
    "case_severity": "medium",
    "review_due_at": "2026-11-30T11:40:00+00:00",
    "account_id": "acct_demo00000000001",
    "account_name": "Acme Analytics Ltd",
    "rules": [{"code": "secrets-in-events", "title": "Card numbers, government IDs, passwords or secrets in events"}],
}


_SAMPLE_SECRETS = {
    "rule": "secrets-in-events",
    "rule_title": "Card numbers, government IDs, passwords or secrets in events",
    "rule_clause": "Don't send full credit-card numbers, government IDs, passwords, or other secrets. "
    "They don't belong in analytics events.",
    "summary": "The event property card_number carried a full card number ([CARD REDACTED ...1111]) "
    "in 312 checkout events sent with key sk_live_4eC39HqL.",
    "severity": "medium",
    "count": 3,
    "first_observed_at": "2026-11-28T09:12:00+00:00",
    "last_observed_at": "2026-11-29T10:05:00+00:00",
    "keys": ["sk_live_4eC39HqL"],
    "sets_severity": True,
}


_SAMPLE_ABUSE = {
    "rule": "sustained-rate-abuse",
    "rule_title": "Sustained abuse of the ingest path",
    "rule_clause": "Sustained abuse (sending events on behalf of a customer who didn't sign up, deliberately "
    "spiking another customer's bill, etc.) is grounds for immediate suspension.",
    "summary": "Key sk_live_4eC39HqL sent 2.1 million events in 30 minutes on behalf of 212 sites that are "
    "not registered to the account.",
    "severity": "critical",
    "count": 1,
    "first_observed_at": "2026-11-29T11:10:00+00:00",
    "last_observed_at": "2026-11-29T11:40:00+00:00",
    "keys": ["sk_live_4eC39HqL"],
    "sets_severity": True,
}


_SAMPLE_ACTION = {
    "action_id": 77,
    "action_kind": "warning",
    "action_status": "applied",
    "reason": "medium severity, no strikes in 90 days -> warning",
    "act_first": False,
    "rate_limit_per_minute": None,
    "ip_rate_limit_per_minute": None,
    "expires_at": None,
    "remediation_deadline": None,
    "keys": [],
    "requested_by": "agent.alex",
    "last_error": "",
    "violations": [_SAMPLE_SECRETS],
    "violation_total": 3,
    "detection": "automated",
    "automated_decision": "not",
    "policy_version": "secrets-in-events v2",
    "appeal_deadline": "2026-12-29T11:41:00+00:00",
    "appeal_decision_hours": 72,
}


def _sample_action(**changes) -> dict:
    return {**_SAMPLE_CASE, **_SAMPLE_ACTION, **changes}


def _sample_abuse_case(**changes) -> dict:
    return _sample_action(
        case_severity="critical", review_due_at="2026-11-29T12:40:00+00:00",
        rules=[{"code": "sustained-rate-abuse", "title": "Sustained abuse of the ingest path"}],
        violations=[_SAMPLE_ABUSE], **changes,
    )


def _samples() -> dict[str, dict]:
    suspension = {
        "action_kind": "suspend", "act_first": True, "requested_by": "token:abuse-detector (act-first)",
        "automated_decision": "fully", "violation_total": 1, "policy_version": "sustained-rate-abuse v1",
        "reason": "Act first on sustained-rate-abuse: critical severity under an act-first rule, trusted source "
        "-> suspend",
    }
    return {
        "customer_warning": _sample_action(remediation_deadline="2026-12-06T12:00:00+00:00"),
        "customer_throttle": _sample_action(
            action_id=78, action_kind="throttle", case_severity="medium", rate_limit_per_minute=60,
            ip_rate_limit_per_minute=10, expires_at="2026-12-20T12:00:00+00:00", keys=["sk_live_4eC39HqL"],
            requested_by="system", reason="Warning #77 passed its remediation deadline unresolved -> throttle",
        ),
        "customer_suspend": _sample_abuse_case(**suspension, action_id=79),
        "customer_terminate": _sample_action(
            action_id=80, action_kind="terminate", case_severity="high", requested_by="lead.sam",
            reason="third strike in 90 days -> terminate",
            rules=[*_SAMPLE_CASE["rules"], {"code": "sustained-rate-abuse",
                                            "title": "Sustained abuse of the ingest path"}],
            violations=[_SAMPLE_ABUSE, {**_SAMPLE_SECRETS, "sets_severity": False}], violation_total=4,
            policy_version="secrets-in-events v2; sustained-rate-abuse v1", automated_decision="not",
        ),
        "customer_lifted": _sample_abuse_case(**suspension, action_id=79, action_status="reverted", how="reverted"),
        "customer_appeal_received": _sample_abuse_case(**suspension, action_id=79, appeal_id=12),
        "customer_appeal_decided": _sample_abuse_case(
            **suspension, action_id=79, action_status="reverted", outcome="overturned",
            note="The traffic came from a load test against your own staging sites; we have lifted the suspension.",
        ),
        "customer_key_revoked": {
            **_SAMPLE_CASE,
            "rules": [{"code": "key-exposure", "title": "API key shared publicly or of the wrong type"}],
            "key_prefix": "sk_live_4eC39HqL",
            "key_kind": "secret",
            "leak_url": "https://github.com/acme-analytics/shop/blob/3f2a9c1/config/settings.py",
            "leak_source": "commit",
            "revoked_at": "2026-11-29T11:41:07+00:00",
            "detection": "automated",
            "automated_decision": "fully",
            "policy_version": "key-exposure v1",
        },
        "staff_critical_case": {
            **_SAMPLE_CASE, "case_severity": "critical", "review_due_at": "2026-11-29T12:40:00+00:00",
            "rules": [{"code": "sustained-rate-abuse", "title": "Sustained abuse of the ingest path"}],
            "violation": {**_SAMPLE_ABUSE, "id": 9002, "observed_at": "2026-11-29T11:40:00+00:00",
                          "api_key": "sk_live_4eC39HqL"},
        },
        "staff_awaiting_approval": _sample_action(
            action_id=81, action_kind="suspend", action_status="awaiting_approval", case_severity="high",
            requested_by="agent.alex", reason="Card numbers again after the warning; the throttle did not stop it.",
        ),
        "staff_action_failed": _sample_action(
            action_id=78, action_kind="throttle", action_status="failed", rate_limit_per_minute=60,
            ip_rate_limit_per_minute=10, requested_by="system",
            reason="Warning #77 passed its remediation deadline unresolved -> throttle",
            last_error="OperationalError: could not connect to server: Connection refused",
        ),
        "staff_act_first_review": _sample_abuse_case(**suspension, action_id=79, action_status="scheduled"),
        "staff_detector_act_first": {
            "source": "abuse-detector", "source_id": 7, "withheld": True, "owner": "service token abuse-detector",
            "precision": 0.85, "decided": 20, "actioned": 131, "dismissed": 9, "overturned": 4, "threshold": 0.9,
            "min_decided": 20, "changed_at": "2026-11-29T11:41:00+00:00",
        },
    }


def sample_context(template: str) -> dict:
    """Made-up but realistic data for previewing a template (admin) and for template tests.

    Each sample has the shape the services write for that template; a fresh copy every call.
    """
    samples = _samples()
    if template not in samples:
        raise KeyError(f"No email template {template!r}; see notifications.TEMPLATES.")
    return copy.deepcopy(samples[template])

