"""Violations: reported one by one or in batches (idempotent per source and external id), and dismissed."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction
from django.db.models import DateTimeField, JSONField, Subquery
from django.db.models.functions import JSONObject
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Account, APIKey
from enforcement import ladder, notifications, sla
from enforcement.actors import REPORT_VIOLATION, WORK_CASE, Actor
from enforcement.audit import audit_record, audit_row, snapshot
from enforcement.errors import BLANK, NotFound, ServiceError, ValidationFailed
from enforcement.models import SEVERITY_RANK, ActionKind, AuditEvent, Case, EnforcementAction, Rule, Severity, Violation
from enforcement.redaction import redact
from enforcement.services.actions import act_first_suspend, action_propose_locked, covering_action
from enforcement.services.cases import CASE_FIELDS, case_refresh, case_review_due, violations_dismiss_locked
from enforcement.services.detectors import report_trusted
from enforcement.services.locks import for_update, lock_case
from enforcement.services.recommendations import (
    recommend,
    recommendation_for,
    strike_window_days,
    strikes_for_cases,
    strikes_since_subquery,
)
from enforcement.services.report_writes import reports_insert
from enforcement.services.sources import source_for_report
from lib.bulk import bulk_insert
from lib.compiled import CompiledQuery

_UNREAD = object()


@dataclass
class ReportResult:
    violation: Violation
    created: bool
    recommendation: ladder.Recommendation
    act_first_action: EnforcementAction | None = None


def _report_problems(report: dict, *, account, rule, key) -> dict[str, list[str]]:
    """What is wrong with one report, given what its references resolved to (None: not found)."""
    fields: dict[str, list[str]] = {}
    if account is None:
        fields["account"] = [f"No account {report['account']!r}."]
    if rule is None:
        fields["rule"] = [f"No active rule {report['rule']!r}."]
    if report.get("api_key"):
        if key is None:
            fields["api_key"] = [f"No key {report['api_key']!r}."]
        elif account is not None and key.account_id != account.pk:
            fields["api_key"] = ["This key belongs to another account."]
    severity = report.get("severity")
    if severity is not None and severity not in Severity.values:
        fields["severity"] = [f"Must be one of {', '.join(Severity.values)}."]
    return fields


def _missing_report_fields(report: dict) -> dict[str, list[str]]:
    return {
        name: ["This field is required."]
        for name in ("source", "external_id", "summary")
        if not report.get(name) or not str(report[name]).strip()
    }


_RULE_FIELDS = tuple(Rule._meta.concrete_fields)


def _active_rule_row(code: str) -> Subquery:
    """The active rule ``code`` as one JSON object (None if there is none), to read beside another row."""
    row = JSONObject(**{field.attname: field.attname for field in _RULE_FIELDS})
    return Subquery(Rule.objects.filter(code=code, is_active=True).values(row=row)[:1], output_field=JSONField())


def _rule_from_row(row: dict) -> Rule:
    """A ``Rule`` as the database would load it, from ``_active_rule_row``'s object (SQLite gives its JSON
    columns as text and its times without a zone; PostgreSQL gives both typed)."""
    values = []
    for field in _RULE_FIELDS:
        value = row[field.attname]
        if isinstance(field, JSONField) and isinstance(value, str):
            value = json.loads(value)
        elif isinstance(field, DateTimeField) and isinstance(value, str):
            value = parse_datetime(value)
            if value is not None and timezone.is_naive(value):
                value = timezone.make_aware(value, UTC)
        else:
            value = field.to_python(value)
        values.append(value)
    return Rule.from_db(DEFAULT_DB_ALIAS, [field.attname for field in _RULE_FIELDS], values)


def _account_with_rule(public_id: str, rule_code: str):
    return for_update(Account.objects).filter(public_id=public_id).annotate(rule_row=_active_rule_row(rule_code))


def _open_case_with_strikes(account_id: int, since: datetime):
    return (
        for_update(Case.objects).filter(account_id=account_id).exclude(status=Case.Status.CLOSED)
        .annotate(strikes_in_window=strikes_since_subquery(since))
    )


# On every report: compiled once per process (lib/compiled.py).
_ACCOUNT_WITH_RULE = CompiledQuery(_account_with_rule)
_OPEN_CASE_WITH_STRIKES = CompiledQuery(_open_case_with_strikes)


def _resolve_report_inputs(*, account, rule, api_key, severity):
    """The report's account (row-locked: it serialises "find or open the account's case"), rule and key.

    A rule named by its code is read in the account's query (one round trip for both)."""
    rule_obj = rule if isinstance(rule, Rule) else None
    if isinstance(account, str) and rule_obj is None:
        account_obj = _ACCOUNT_WITH_RULE.first(account, rule)
    else:
        accounts = for_update(Account.objects)
        is_obj = isinstance(account, Account)
        accounts = accounts.filter(pk=account.pk) if is_obj else accounts.filter(public_id=account)
        if rule_obj is None:
            accounts = accounts.annotate(rule_row=_active_rule_row(rule))
        account_obj = accounts.first()
    if rule_obj is None and account_obj is not None:
        rule_obj = _rule_from_row(account_obj.rule_row) if account_obj.rule_row else None
    elif rule_obj is None:  # no account: the rule is read alone, so that the answer names every problem
        rule_obj = Rule.objects.filter(code=rule, is_active=True).first()
    key_obj = None
    if api_key:
        key_obj = api_key if isinstance(api_key, APIKey) else APIKey.objects.filter(prefix=api_key).first()
    report = {"account": account, "rule": rule, "api_key": api_key, "severity": severity}
    fields = _report_problems(report, account=account_obj, rule=rule_obj, key=key_obj)
    if fields:
        raise ValidationFailed("The violation report is not valid.", fields=fields)
    return account_obj, rule_obj, key_obj


def violation_report(
    *,
    actor: Actor,
    account: Account | str,
    rule: Rule | str,
    source: str,
    external_id: str,
    summary: str,
    severity: str | None = None,
    api_key: APIKey | str | None = None,
    observed_at: datetime | None = None,
    evidence: dict | None = None,
) -> ReportResult:
    """Record a violation once per (source, external_id), attach it to the account's open case."""
    actor.require(REPORT_VIOLATION, "You may not report violations.")
    missing = _missing_report_fields({"source": source, "external_id": external_id, "summary": summary})
    if missing:
        raise ValidationFailed("The violation report is not valid.", fields=missing)
    # The source is checked before anything stored under it is answered; the earlier report, if any, is read
    # in the same query.
    source_row = source_for_report(actor=actor, name=source[:64], reported=(source, external_id))
    reported_id = getattr(source_row, "reported_violation_id", _UNREAD)
    if reported_id is _UNREAD:
        existing = Violation.objects.filter(source=source, external_id=external_id).select_related("case", "rule")
        existing = existing.first()
    elif reported_id is not None:
        existing = Violation.objects.select_related("case", "rule").filter(pk=reported_id).first()
    else:
        existing = None
    if existing is not None:
        return ReportResult(existing, False, recommendation_for(existing.case))
    try:
        with transaction.atomic():
            account_obj, rule_obj, key_obj = _resolve_report_inputs(
                account=account, rule=rule, api_key=api_key, severity=severity
            )
            return _violation_create(
                actor=actor, account=account_obj, rule=rule_obj, key=key_obj, source=source,
                external_id=external_id, summary=summary, severity=severity or rule_obj.default_severity,
                observed_at=observed_at, evidence=evidence,
            )
    except IntegrityError:
        # Someone reported the same (source, external_id) at the same moment.
        existing = Violation.objects.filter(source=source, external_id=external_id).select_related("case").first()
        if existing is None:
            raise
        return ReportResult(existing, False, recommendation_for(existing.case))


def _violation_create(*, actor, account, rule, key, source, external_id, summary, severity, observed_at, evidence):
    now = timezone.now()
    # The open case, locked, with its account's strikes in the rule's window (the ladder's input) beside it.
    case = _OPEN_CASE_WITH_STRIKES.first(account.pk, now - timedelta(days=strike_window_days(rule)))
    case_opened = case is None
    if case_opened:
        case = Case.objects.create(
            account=account, severity=severity, severity_rank=SEVERITY_RANK[severity],
            review_due_at=sla.review_deadline(severity, now, sla_hours=settings.ENFORCEMENT["SLA_HOURS"]),
        )
        audit_record(actor=actor, verb="case.opened", target=case, case=case, account=account,
                     after=snapshot(case, CASE_FIELDS))
    trusted = report_trusted(actor=actor, source=source[:64], rule=rule, severity=severity)  # the act-first hook
    violation = Violation(
        account=account, api_key=key, rule=rule, case=case, severity=severity, source=source[:64],
        external_id=external_id[:200], source_trusted=trusted, reported_by=actor.label,
        reporter_kind=actor.kind,
        observed_at=observed_at or now, summary=redact(summary), evidence=redact(evidence or {}),
    )
    reports_insert(actor=actor, violations=[violation])  # with its audit event and tally count
    if not case_opened and case.review_due_at is None:
        case_review_due(actor=actor, case=case, severity=severity, now=now)  # new evidence: look again
    # A report can only raise its case's severity (the status follows from actions and appeals).
    if not case_opened and SEVERITY_RANK[severity] > SEVERITY_RANK[case.severity]:
        case_refresh(actor=actor, case=case, since=now)
    recommendation = recommend(rule, severity, case, trusted, now, strikes=getattr(case, "strikes_in_window", None))
    act_first_action = _follow_up_report(
        actor=actor, case=case, violation=violation, recommendation=recommendation, case_opened=case_opened,
        suspension_underway=_wants_suspension(actor, violation, recommendation) and _suspension_underway(case),
    )
    return ReportResult(violation, True, recommendation, act_first_action)


def _suspension_underway(case: Case) -> bool:
    """A suspension or more is already pending or in force: acting first would add nothing."""
    return covering_action(case=case, kind=ActionKind.SUSPEND) is not None


def _wants_suspension(actor: Actor, violation: Violation, recommendation: ladder.Recommendation) -> bool:
    """A critical report under an act-first rule: a trusted source suspends at once (the ladder says act
    first), an agent's report proposes the suspension for a lead."""
    return recommendation.act_first or (
        actor.kind == "user" and violation.severity == Severity.CRITICAL and violation.rule.act_first
        and recommendation.kind is not None
    )


def _follow_up_report(*, actor, case, violation, recommendation, case_opened, suspension_underway):
    """After a new report: act first when the ladder says so and nothing as strong is under way (an agent's
    report proposes the suspension for a lead instead); tell staff about a critical case. Returns the
    act-first suspension, if one was scheduled."""
    act_first_action = None
    if _wants_suspension(actor, violation, recommendation) and not suspension_underway:
        if recommendation.act_first:
            act_first_action = act_first_suspend(actor=actor, case=case, violation=violation,
                                                 reason=recommendation.reason)
        else:
            action_propose_locked(
                actor=actor, case=case, kind=ActionKind.SUSPEND,
                reason=f"Critical {violation.rule.code} report under an act-first rule by {actor.label}: "
                f"a lead decides whether to suspend ({recommendation.reason})",
            )
    if violation.severity == Severity.CRITICAL and (case_opened or act_first_action):
        notifications.notify_staff(
            template="staff_critical_case", event_key=f"case:{case.pk}:critical", case=case,
            context=notifications.case_context(case, violation=violation),
        )
    return act_first_action


@transaction.atomic
def violation_dismiss(*, actor: Actor, violation_id: int, reason: str) -> Violation:
    actor.require(WORK_CASE, "You may not dismiss violations.")
    if not reason or not reason.strip():
        raise ValidationFailed("Say why the violation is dismissed.", fields={"reason": [BLANK]})
    case_id = Violation.objects.filter(pk=violation_id).values_list("case_id", flat=True).first()
    if case_id is None:
        raise NotFound(f"No violation {violation_id}.")
    case = lock_case(case_id)  # the lock order: the case before its violations
    violation = for_update(Violation.objects).get(pk=violation_id)
    if violation.status == Violation.Status.DISMISSED:
        return violation
    violations_dismiss_locked(actor=actor, case=case, violations=[violation], reason=reason.strip(),
                              now=timezone.now())
    case_refresh(actor=actor, case=case)
    return violation


def violation_report_batch(*, actor: Actor, reports: list[dict]) -> list[ReportResult | ServiceError]:
    """Report many violations at once: for each item, what ``violation_report`` would do and answer.

    Each report holds ``violation_report``'s keyword arguments (account, rule and api_key as
    public id, code and prefix). Every item keeps the single path's rules: idempotent per
    (source, external_id), redacted, one ``violation.reported`` audit row each, joined to its
    account's open case (or one is opened), the case refreshed, act-first when the ladder says
    so. The writes are bulk and the case work is done once per account, so the queries grow
    with the accounts in the batch, not with its items. Returns one answer per report, in
    order: its ``ReportResult``, or the ``ServiceError`` that this item alone would have raised.
    """
    actor.require(REPORT_VIOLATION, "You may not report violations.")
    answers: list[ReportResult | ServiceError | None] = [None] * len(reports)
    first_of: dict[tuple[str, str], int] = {}
    repeats: dict[int, int] = {}
    sources_checked: dict[str, ServiceError | None] = {}
    for index, report in enumerate(reports):
        missing = _missing_report_fields(report)
        if missing:
            answers[index] = ValidationFailed("The violation report is not valid.", fields=missing)
            continue
        refusal = _source_refusal(actor, report["source"][:64], sources_checked)
        if refusal is not None:
            answers[index] = refusal
            continue
        pair = (report["source"], report["external_id"])
        if pair in first_of:
            repeats[index] = first_of[pair]  # the same report twice in one batch: the first one decides
        else:
            first_of[pair] = index

    known = Violation.objects.filter(
        source__in={source for source, _ in first_of}, external_id__in={external_id for _, external_id in first_of}
    ).select_related("case", "rule", "account", "api_key")
    known_by_pair = {(v.source, v.external_id): v for v in known}
    advice_for_case: dict[int, ladder.Recommendation] = {}
    new: list[int] = []
    for pair, index in first_of.items():
        violation = known_by_pair.get(pair)
        if violation is None:
            new.append(index)
            continue
        if violation.case_id not in advice_for_case:
            advice_for_case[violation.case_id] = recommendation_for(violation.case)
        answers[index] = ReportResult(violation, False, advice_for_case[violation.case_id])

    items = _batch_resolve_inputs(reports, new, answers)
    if items:
        # Redacted before the transaction: the account rows stay locked for the writes alone.
        redacted = {index: (redact(reports[index]["summary"]), redact(reports[index].get("evidence") or {}))
                    for index, *_ in items}
        try:
            with transaction.atomic():
                for index, result in _violations_create_bulk(
                    actor=actor, reports=reports, items=items, redacted=redacted
                ).items():
                    answers[index] = result
        except IntegrityError:
            # Someone reported one of these at the same moment: item by item, as the single path does.
            for index, *_ in items:
                try:
                    answers[index] = violation_report(actor=actor, **reports[index])
                except ServiceError as exc:
                    answers[index] = exc
    for index, first in repeats.items():
        answer = answers[first]
        answers[index] = answer if isinstance(answer, ServiceError) else ReportResult(
            answer.violation, False, answer.recommendation
        )
    return answers


def _source_refusal(actor: Actor, name: str, checked: dict[str, ServiceError | None]) -> ServiceError | None:
    """``source_for_report`` once per source name of a batch; its refusal, if any, answers each item."""
    if name not in checked:
        try:
            source_for_report(actor=actor, name=name)
            checked[name] = None
        except ServiceError as exc:
            checked[name] = exc
    return checked[name]


def _batch_resolve_inputs(reports: list[dict], indexes: list[int], answers: list) -> list[tuple]:
    """(index, account, rule, key, severity) per valid report, in three queries; errors into ``answers``."""
    wanted = [reports[index] for index in indexes]
    accounts = {a.public_id: a for a in Account.objects.filter(public_id__in={r["account"] for r in wanted})}
    rules = {r.code: r for r in Rule.objects.filter(code__in={r["rule"] for r in wanted}, is_active=True)}
    keys = {k.prefix: k for k in APIKey.objects.filter(prefix__in={r["api_key"] for r in wanted if r.get("api_key")})}
    items = []
    for index in indexes:
        report = reports[index]
        account, rule = accounts.get(report["account"]), rules.get(report["rule"])
        key = keys.get(report["api_key"]) if report.get("api_key") else None
        severity = report.get("severity")
        fields = _report_problems(report, account=account, rule=rule, key=key)
        if fields:
            answers[index] = ValidationFailed("The violation report is not valid.", fields=fields)
        else:
            items.append((index, account, rule, key, severity or rule.default_severity))
    return items


def _violations_create_bulk(
    *, actor: Actor, reports: list[dict], items: list[tuple], redacted: dict[int, tuple[str, dict]]
) -> dict[int, ReportResult]:
    """``redacted``: each item's summary and evidence, already redacted."""
    now = timezone.now()
    account_ids = sorted({account.pk for _, account, *_ in items})
    # Account rows locked in id order (as the single path locks one), so concurrent batches cannot deadlock.
    list(for_update(Account.objects).filter(pk__in=account_ids).order_by("pk").values_list("pk", flat=True))
    cases = {
        case.account_id: case
        for case in for_update(Case.objects.select_related("account"))
        .filter(account_id__in=account_ids).exclude(status=Case.Status.CLOSED)
    }
    memo: dict[str, bool] = {}
    trusted = {index: report_trusted(actor=actor, source=reports[index]["source"][:64], rule=rule, severity=severity,
                                     memo=memo) for index, _, rule, _, severity in items}  # the act-first hook
    opened: list[Case] = []
    opening_item: dict[int, int] = {}
    for index, account, _, _, severity in items:
        if account.pk not in cases:
            case = Case(
                account=account, severity=severity, severity_rank=SEVERITY_RANK[severity],
                review_due_at=sla.review_deadline(severity, now, sla_hours=settings.ENFORCEMENT["SLA_HOURS"]),
            )
            cases[account.pk] = case
            opened.append(case)
            opening_item[index] = account.pk
    Case.objects.bulk_create(opened)
    violations = []
    for index, account, rule, key, severity in items:
        report = reports[index]
        violations.append(Violation(
            account=account, api_key=key, rule=rule, case=cases[account.pk], severity=severity,
            source=report["source"][:64], external_id=report["external_id"][:200], source_trusted=trusted[index],
            reporter_kind=actor.kind,
            reported_by=actor.label, observed_at=report.get("observed_at") or now,
            summary=redacted[index][0], evidence=redacted[index][1],
        ))
    bulk_insert(AuditEvent, [
        audit_row(actor=actor, verb="case.opened", target=case, case=case, account=case.account,
                  after=snapshot(case, CASE_FIELDS))
        for case in opened
    ])
    reports_insert(actor=actor, violations=violations)  # with their audit events and tally counts

    # A report can only raise its case's severity (and so tighten its deadline): the case's status follows
    # from its actions and appeals, which reports do not change. Refreshing only the cases that a new
    # violation outranks ends in the state that refreshing after every report would, in fewer queries.
    top_rank: dict[int, int] = {}
    for violation in violations:
        top_rank[violation.case.pk] = max(top_rank.get(violation.case.pk, -1), SEVERITY_RANK[violation.severity])
    touched = {violation.case.account_id: violation.case for violation in violations}
    for account_id in sorted(touched):
        case = touched[account_id]
        if case.review_due_at is None:  # new evidence on a reviewed case: look again
            case_review_due(actor=actor, case=case, severity=Severity.values[top_rank[case.pk]], now=now)
        if top_rank[case.pk] > SEVERITY_RANK[case.severity]:
            case_refresh(actor=actor, case=case, since=now)
    windows = {rule.strike_window_days or settings.ENFORCEMENT["STRIKE_WINDOW_DAYS"] for _, _, rule, _, _ in items}
    strikes = strikes_for_cases(cases=list(touched.values()), windows=windows, now=now)
    restrictive_action_open: dict[int, bool] = {}
    results: dict[int, ReportResult] = {}
    for violation, (index, _, rule, _, severity) in zip(violations, items, strict=True):
        case = violation.case
        window = rule.strike_window_days or settings.ENFORCEMENT["STRIKE_WINDOW_DAYS"]
        recommendation = ladder.recommend(
            rule=ladder.RulePolicy.from_rule(rule), severity=severity, strikes=strikes[(case.pk, window)],
            window_days=window, source_trusted=trusted[index],
        )
        wants_suspension = _wants_suspension(actor, violation, recommendation)
        if wants_suspension and case.pk not in restrictive_action_open:
            restrictive_action_open[case.pk] = _suspension_underway(case)
        act_first_action = _follow_up_report(
            actor=actor, case=case, violation=violation, recommendation=recommendation,
            case_opened=index in opening_item, suspension_underway=restrictive_action_open.get(case.pk, False),
        )
        if wants_suspension:
            restrictive_action_open[case.pk] = True
        results[index] = ReportResult(violation, True, recommendation, act_first_action)
    return results

