"""Statements of reasons in the EU DSA Transparency Database's terms (schema v2), one per applied restrictive action.

Built from the same facts as the customer's notice (``notifications.facts``: the grounds, how it was detected, how
automated the decision was) and mapped per rule (``Rule.dsa_category``, ``dsa_illegal``, ``dsa_legal_ground``: data
that leads edit). The database is public, so a statement carries no personal data: no account or key ids, no
detector's free-text summary; only the rules, their clauses, counts, dates and the measure.
Reads shared by the API and the admin (as ``selectors``).
"""

from datetime import datetime

from django.db.models import Q, QuerySet

from enforcement.models import ActionKind, AuditEvent, EnforcementAction, Rule, Violation
from enforcement.notifications.facts import automated_decision, detection, grounds

RESTRICTIVE_KINDS = (ActionKind.THROTTLE, ActionKind.SUSPEND, ActionKind.TERMINATE)
BATCH_SIZE = 100  # the Transparency Database's batch endpoint takes at most 100 statements a call
PUID_PREFIX = "millimetric-action-"

DECISION_PROVISION = {
    ActionKind.THROTTLE: "DECISION_PROVISION_PARTIAL_SUSPENSION",
    ActionKind.SUSPEND: "DECISION_PROVISION_TOTAL_SUSPENSION",
    ActionKind.TERMINATE: "DECISION_PROVISION_TOTAL_TERMINATION",
}
# Only a measure on the whole account restricts the account itself; one on named keys restricts the service.
DECISION_ACCOUNT = {
    ActionKind.SUSPEND: "DECISION_ACCOUNT_SUSPENDED",
    ActionKind.TERMINATE: "DECISION_ACCOUNT_TERMINATED",
}
AUTOMATED_DECISION = {
    "fully": "AUTOMATED_DECISION_FULLY",
    "partially": "AUTOMATED_DECISION_PARTIALLY",
    "not": "AUTOMATED_DECISION_NOT_AUTOMATED",
}
# The service is offered across the EEA; a restriction of an API key or account applies everywhere.
EEA = ["AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS", "IT", "LI",
       "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK"]
CONTENT_TYPE_OTHER = "API keys and the analytics events sent with them"
# The Transparency Database's length limits.
_LIMITS = {"incompatible_content_ground": 500, "incompatible_content_explanation": 2000,
           "illegal_content_legal_ground": 500, "illegal_content_explanation": 2000, "decision_facts": 5000}


def restrictive_actions(*, since: datetime | None = None, until: datetime | None = None) -> QuerySet:
    """Every restrictive action that was applied (whatever became of it later: a statement stays made)."""
    actions = EnforcementAction.objects.filter(kind__in=RESTRICTIVE_KINDS, applied_at__isnull=False)
    if since is not None:
        actions = actions.filter(applied_at__gte=since)
    if until is not None:
        actions = actions.filter(applied_at__lt=until)
    return actions


def statements_for(actions: list[EnforcementAction]) -> list[dict]:
    """The statements of these actions, in their order, in a constant number of queries."""
    behind = _violations_behind(actions)
    through = EnforcementAction.keys.through
    on_named_keys = set(through.objects.filter(enforcementaction_id__in=[a.pk for a in actions])
                        .values_list("enforcementaction_id", flat=True).distinct())
    return [statement(action, behind.get(action.pk, []), account_wide=action.pk not in on_named_keys)
            for action in actions]


def _violations_behind(actions: list[EnforcementAction]) -> dict[int, list[Violation]]:
    """Each action's violations as its notice has them: those recorded with it, else its case's open ones."""
    wanted = {a.pk: (a.decided_under or {}).get("violations") for a in actions}
    ids = {vid for vids in wanted.values() if vids for vid in vids}
    fallback_cases = {a.case_id for a in actions if wanted[a.pk] is None}
    loaded = Violation.objects.select_related("rule").defer("evidence")
    by_id = {v.pk: v for v in loaded.filter(pk__in=ids)} if ids else {}
    open_by_case: dict[int, list[Violation]] = {}
    if fallback_cases:
        for v in loaded.filter(case_id__in=fallback_cases, status=Violation.Status.OPEN):
            open_by_case.setdefault(v.case_id, []).append(v)
    return {
        a.pk: [by_id[vid] for vid in wanted[a.pk] if vid in by_id and by_id[vid].case_id == a.case_id]
        if wanted[a.pk] is not None else open_by_case.get(a.case_id, [])
        for a in actions
    }


def _cut(field: str, text: str) -> str:
    limit = _LIMITS[field]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _date(value: datetime | None) -> str | None:
    return value.date().isoformat() if value else None


def statement(action: EnforcementAction, violations: list[Violation], *, account_wide: bool) -> dict:
    """One action's statement of reasons, in the Transparency Database's field names and values."""
    facts = grounds(violations)
    rules = {v.rule.code: v.rule for v in violations}
    lead_rule: Rule | None = rules.get(facts[0]["rule"]) if facts else None
    versions = (action.decided_under or {}).get("rules") or {}
    explanation = _explanation(action, lead_rule, versions)
    return {
        "puid": f"{PUID_PREFIX}{action.pk}",
        "decision_provision": DECISION_PROVISION[action.kind],
        "decision_account": DECISION_ACCOUNT.get(action.kind) if account_wide else None,
        "account_type": "ACCOUNT_TYPE_BUSINESS",
        "end_date_service_restriction": _date(action.expires_at),
        **_ground(lead_rule, explanation),
        "decision_facts": _cut("decision_facts", _facts_text(action, facts)),
        "automated_detection": "No" if detection(violations) == "staff" else "Yes",
        "automated_decision": AUTOMATED_DECISION[automated_decision(action)],
        "source_type": "SOURCE_VOLUNTARY",  # every report is the provider's own detection (or its partner's)
        "application_date": _date(action.applied_at),
        "content_date": _date(min((v.observed_at for v in violations), default=None) or action.created_at),
        "territorial_scope": EEA,
    }


def _ground(rule: Rule | None, explanation: str) -> dict:
    """The ground of a decision under ``rule`` (its DSA mapping: illegal content, or incompatible with the terms),
    its category and the content type: the fields every statement has alike."""
    illegal = bool(rule and rule.dsa_illegal)
    return {
        "decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT" if illegal else "DECISION_GROUND_INCOMPATIBLE_CONTENT",
        "illegal_content_legal_ground": _cut("illegal_content_legal_ground", rule.dsa_legal_ground or rule.clause)
        if illegal else None,
        "illegal_content_explanation": _cut("illegal_content_explanation", explanation) if illegal else None,
        "incompatible_content_ground": None if illegal else _cut(
            "incompatible_content_ground", rule.clause if rule else "Acceptable Use Policy"),
        "incompatible_content_explanation": None if illegal else _cut("incompatible_content_explanation",
                                                                      explanation),
        "incompatible_content_illegal": None if illegal else "No",
        "category": rule.dsa_category if rule else "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE",
        "content_type": ["CONTENT_TYPE_OTHER"],
        "content_type_other": CONTENT_TYPE_OTHER,
    }


def _explanation(action: EnforcementAction, rule: Rule | None, versions: dict) -> str:
    if rule is None:
        return f"The account's use of the API broke the Acceptable Use Policy ({action.reason[:300]})."
    version = versions.get(rule.code, rule.version)
    return (f"The account's use of the API broke the Acceptable Use Policy rule \"{rule.title}\" ({rule.code}, "
            f"version {version}); the measure follows the enforcement ladder.")


def _facts_text(action: EnforcementAction, facts: list[dict]) -> str:
    measure = {
        ActionKind.THROTTLE: "The account's API keys were limited"
        + (f" to {action.rate_limit_per_minute} requests a minute" if action.rate_limit_per_minute else ""),
        ActionKind.SUSPEND: "The account's API keys were suspended",
        ActionKind.TERMINATE: "The account's API keys were terminated",
    }[action.kind]
    lines = [f"{measure}" + (f" until {_date(action.expires_at)}." if action.expires_at else ".")]
    for entry in facts:
        span = entry["first_observed_at"][:10]
        if entry["last_observed_at"][:10] != span:
            span += f" to {entry['last_observed_at'][:10]}"
        lines.append(f"{entry['count']} report(s) of \"{entry['rule_title']}\" ({entry['severity']} severity), "
                     f"observed {span}.")
    if action.act_first:
        lines.append("Acted on at once (clearly malicious behaviour), reviewed by a lead afterwards.")
    return " ".join(lines)


def case_statements(case, *, limit: int | None = None) -> list[dict]:
    """A case's statements, newest first (at most ``limit``), from a case loaded with
    ``selectors.case_detail_queryset`` (no further queries)."""
    violations = {v.pk: v for v in case.violations.all()}
    made = []
    for action in restrictive_applied(case)[:limit]:
        ids = (action.decided_under or {}).get("violations")
        behind = ([violations[vid] for vid in ids if vid in violations] if ids is not None
                  else [v for v in violations.values() if v.status == Violation.Status.OPEN])
        made.append(statement(action, behind, account_wide=not action.keys.all()))
    return made


def restrictive_applied(case) -> list:
    """The case's applied restrictive actions (each has a statement), the latest applied first."""
    return sorted((action for action in case.actions.all()
                   if action.kind in RESTRICTIVE_KINDS and action.applied_at is not None),
                  key=lambda action: (action.applied_at, action.pk), reverse=True)


# --------------------------------------------------------------------------- leaked-key revocations
# A key that GitHub secret scanning found in public is revoked at once (``integrations.github``), recorded as a
# ``key.revoked`` audit event by that source: each is a restriction of the service, so each has a statement.
REVOCATION_SOURCE = "github-secret-scanning"
REVOCATION_RULE = "key-exposure"
REVOCATION_PUID_PREFIX = "millimetric-key-revocation-"


def key_revocations(*, since: datetime | None = None, until: datetime | None = None) -> QuerySet:
    """Every revocation of a leaked key by GitHub secret scanning (the audit log is append-only: they stay)."""
    events = AuditEvent.objects.filter(verb="key.revoked", target_type="apikey", actor_label=REVOCATION_SOURCE)
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    return events


def revocation_statement(event, rule: Rule | None) -> dict:
    """One revocation's statement: one API key's service ended, found and decided by automation."""
    explanation = (f"An API key was published where anyone could use it, which the Acceptable Use Policy rule "
                   f"\"{rule.title}\" ({rule.code}, version {rule.version}) forbids; a key found in public is "
                   f"revoked at once." if rule else "An API key was published where anyone could use it; a key "
                   "found in public is revoked at once.")
    facts = ("One API key of the account was revoked permanently (the account and its other keys were not "
             "restricted): GitHub secret scanning found the key in a public location and reported it; the "
             "revocation followed automatically. The customer may create a new key.")
    return {
        "puid": f"{REVOCATION_PUID_PREFIX}{event.pk}",
        # The closest measure in the schema: part of the service (one key) ended, not the account.
        "decision_provision": "DECISION_PROVISION_PARTIAL_SUSPENSION",
        "decision_account": None,
        "account_type": "ACCOUNT_TYPE_BUSINESS",
        "end_date_service_restriction": None,  # permanent
        **_ground(rule, explanation),
        "decision_facts": _cut("decision_facts", facts),
        "automated_detection": "Yes",
        "automated_decision": "AUTOMATED_DECISION_FULLY",
        "source_type": "SOURCE_VOLUNTARY",  # the provider's own detection with its partner, not a notice
        "application_date": _date(event.created_at),
        "content_date": _date(event.created_at),
        "territorial_scope": EEA,
    }


def revocation_statements(events: list) -> list[dict]:
    """The statements of these revocations, in their order: one query for the rule, whatever their number."""
    if not events:
        return []
    rule = Rule.objects.filter(code=REVOCATION_RULE).first()
    return [revocation_statement(event, rule) for event in events]


# --------------------------------------------------------------------------- both, in one order
# Statements are ordered by (date, source, id): an action by ``applied_at`` (source 0), a revocation by its audit
# event's ``created_at`` (source 1). A position in that order is what a cursor or an export's ``after`` holds.
ACTION, REVOCATION = 0, 1


def _after(field: str, source: int, position: tuple, *, descending: bool):
    """Rows of ``source`` that come after ``position`` in the order (descending or not)."""
    at, pos_source, pos_id = position
    op = "lt" if descending else "gt"
    past = Q(**{f"{field}__{op}": at})
    if (source < pos_source) if descending else (source > pos_source):
        return past | Q(**{field: at})  # the same moment, a source that comes later
    if source == pos_source:
        return past | Q(**{field: at, f"id__{op}": pos_id})
    return past


def statement_page(actions: QuerySet, revocations: QuerySet, *, after: tuple | None, descending: bool,
                   size: int) -> tuple[list[dict], tuple | None]:
    """Up to ``size`` statements from both sources past ``after``, and the position of the last if more follow.
    Two queries for the rows, and those of ``statements_for`` and ``revocation_statements``."""
    sign = "-" if descending else ""
    if after is not None:
        actions = actions.filter(_after("applied_at", ACTION, after, descending=descending))
        revocations = revocations.filter(_after("created_at", REVOCATION, after, descending=descending))
    rows = [((a.applied_at, ACTION, a.pk), a) for a in
            actions.order_by(f"{sign}applied_at", f"{sign}id")[: size + 1]]
    rows += [((e.created_at, REVOCATION, e.pk), e) for e in
             revocations.order_by(f"{sign}created_at", f"{sign}id")[: size + 1]]
    rows.sort(key=lambda row: row[0], reverse=descending)
    more = len(rows) > size
    rows = rows[:size]
    made_actions = iter(statements_for([obj for (_, source, _), obj in rows if source == ACTION]))
    made_revocations = iter(revocation_statements([obj for (_, source, _), obj in rows if source == REVOCATION]))
    made = [next(made_actions) if source == ACTION else next(made_revocations) for (_, source, _), _ in rows]
    return made, (rows[-1][0] if more and rows else None)


def encode_position(position: tuple) -> str:
    at, source, pk = position
    return f"{at.isoformat()}_{source}_{pk}"


def decode_position(text: str) -> tuple | None:
    """A position that ``encode_position`` made, else None."""
    try:
        at, source, pk = text.rsplit("_", 2)
        parsed = datetime.fromisoformat(at)
        source_n, pk_n = int(source), int(pk)
    except ValueError:
        return None
    if parsed.tzinfo is None or source_n not in (ACTION, REVOCATION) or not 0 < pk_n < 2**63:
        return None
    return parsed, source_n, pk_n
