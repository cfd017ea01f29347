"""The facts a notice is written from: taken from the case and the action when the state changes, cleaned of
anything that must never be emailed, and stored with the notice (so a resend says what was true then)."""

from datetime import datetime

from enforcement.models import Case, EnforcementAction
from enforcement.redaction import REDACTED, redact

# Never put into an email, whatever a caller passes.
_NEVER_RENDERED = {"evidence", "token", "raw_token"}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def case_context(case: Case, *, violation=None) -> dict:
    rules = sorted({(v.rule.code, v.rule.title) for v in case.violations.select_related("rule")})
    context = {
        "case_id": case.pk,
        "case_severity": case.severity,
        "review_due_at": _iso(case.review_due_at),
        "account_id": case.account.public_id,
        "account_name": case.account.name,
        "rules": [{"code": code, "title": title} for code, title in rules],
    }
    if violation is not None:
        context["violation"] = {
            "id": violation.pk,
            "rule": violation.rule.code,
            "rule_title": violation.rule.title,
            "rule_clause": violation.rule.clause,
            "severity": violation.severity,
            "summary": violation.summary,
            "observed_at": _iso(violation.observed_at),
            "api_key": violation.api_key.prefix if violation.api_key_id else None,
        }
    return context


def action_context(action: EnforcementAction) -> dict:
    case = action.case
    violations = list(case.violations.select_related("rule").filter(status="open").order_by("-reported_at")[:5])
    return {
        **case_context(case),
        "action_id": action.pk,
        "action_kind": action.kind,
        "action_status": action.status,
        "reason": action.reason,
        "act_first": action.act_first,
        "rate_limit_per_minute": action.rate_limit_per_minute,
        "ip_rate_limit_per_minute": action.ip_rate_limit_per_minute,
        "expires_at": _iso(action.expires_at),
        "remediation_deadline": _iso(action.remediation_deadline),
        "keys": list(action.keys.values_list("prefix", flat=True)) if action.pk else [],
        "requested_by": action.requested_by_label,
        "last_error": action.last_error[:300],
        "violations": [
            {"rule": v.rule.code, "rule_title": v.rule.title, "rule_clause": v.rule.clause,
             "summary": v.summary, "severity": v.severity}
            for v in violations
        ],
    }


# Labels of the people and tokens that acted: names, not secrets ("token:abuse-detector").
_VERBATIM = {"requested_by"}


def _secret_field(key: str | None) -> bool:
    return key is not None and redact("x", key=key) == REDACTED


def clean(value, *, key: str | None = None):
    """Drop what must never be emailed; redact card numbers, key tokens and secrets in the rest."""
    if key in _VERBATIM and isinstance(value, str):
        return value
    if isinstance(value, dict | list | tuple) and _secret_field(key):
        return REDACTED
    if isinstance(value, dict):
        return {k: clean(v, key=str(k)) for k, v in value.items() if k not in _NEVER_RENDERED}
    if isinstance(value, list | tuple):
        return [clean(item) for item in value]
    return redact(value, key=key)

