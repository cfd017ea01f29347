"""The facts a notice is written from: taken from the case and the action when the state changes, cleaned of
anything that must never be emailed, and stored with the notice (so a resend says what was true then)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from enforcement.models import SEVERITY_RANK, Case, EnforcementAction, Violation
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


def action_context(action: EnforcementAction, *, keys: list[str] | None = None) -> dict:
    """The statement of reasons behind an action, for every notice about it: the measure, the facts (every
    violation it was decided on, grouped by rule, the one that set the severity first), the policy clauses
    and version, whether detection and decision were automated, and until when it can be appealed.

    Works on an action not saved yet (the case page's preview of a proposal), with its ``keys`` given.
    """
    case = action.case
    if keys is None:
        keys = list(action.keys.values_list("prefix", flat=True)) if action.pk else []
    violations = _violations_behind(action)
    appeal_from = action.applied_at or timezone.now()
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
        "keys": keys,
        "requested_by": action.requested_by_label,
        "last_error": action.last_error[:300],
        "violations": grounds(violations),
        "violation_total": len(violations),
        "detection": detection(violations),
        "automated_decision": automated_decision(action),
        "policy_version": "; ".join(
            f"{code} v{version}" for code, version in sorted((action.decided_under.get("rules") or {}).items())
        ),
        "appeal_deadline": _iso(appeal_from + timedelta(days=settings.ENFORCEMENT["APPEAL_WINDOW_DAYS"])),
        "appeal_decision_hours": settings.ENFORCEMENT["APPEAL_DECISION_HOURS"],
    }


def _violations_behind(action: EnforcementAction) -> list[Violation]:
    """The violations the action was decided on (recorded with it); for an older action, the case's open ones."""
    ids = (action.decided_under or {}).get("violations")
    violations = Violation.objects.filter(case_id=action.case_id).select_related("rule", "api_key")
    violations = violations.filter(pk__in=ids) if ids is not None else violations.filter(status="open")
    return list(violations.defer("evidence"))


def grounds(violations: list[Violation]) -> list[dict]:
    """One entry per rule: the rule of the violation that set the severity first (most severe, then earliest),
    then the other rules by their most severe violation; each with its count, the span of time it covers,
    the keys involved and the summary of its most severe report (summaries are redacted at intake)."""
    ordered = sorted(violations, key=lambda v: (-SEVERITY_RANK[v.severity], v.observed_at, v.pk))
    by_rule: dict[str, list[Violation]] = {}
    for violation in ordered:
        by_rule.setdefault(violation.rule.code, []).append(violation)
    entries = []
    for index, (code, group) in enumerate(by_rule.items()):
        lead = group[0]
        observed = sorted(v.observed_at for v in group)
        entries.append({
            "rule": code,
            "rule_title": lead.rule.title,
            "rule_clause": lead.rule.clause,
            "severity": lead.severity,
            "summary": lead.summary,
            "count": len(group),
            "first_observed_at": _iso(observed[0]),
            "last_observed_at": _iso(observed[-1]),
            "keys": sorted({v.api_key.prefix for v in group if v.api_key_id})[:10],
            "sets_severity": index == 0,
        })
    return entries


def detection(violations: list[Violation]) -> str:
    """"automated" (detectors, the edge, GitHub), "staff" (a person found it) or "mixed"."""
    kinds = {"staff" if v.reporter_kind == "user" else "automated" for v in violations}
    return kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else "staff")


def automated_decision(action: EnforcementAction) -> str:
    """"fully" when no person decided (act first, the system's escalation, a token's action that needed no
    approval), "partially" when automation proposed and a person approved, "not" when a person proposed."""
    if action.act_first:
        return "fully"
    if action.requested_by_id is not None:
        return "not"
    return "partially" if action.approved_by_id is not None else "fully"


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

