"""The enforcement workflow: one function per verb, called by the admin, the API, tasks and commands.

Each write is atomic, locks the rows it changes, checks the transition against
``enforcement.transitions``, returns early when there is nothing to do, writes its
``AuditEvent`` in the same transaction, and enqueues follow-up work on commit.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account, APIKey, KeyStatus
from accounts.services import Restriction, key_states_recompute
from enforcement import ladder, notifications, rights, sla
from enforcement.actors import (
    APPROVE_ACTION,
    DECIDE_APPEAL,
    PROPOSE_ACTION,
    SUBMIT_APPEAL,
    SYSTEM,
    WORK_CASE,
    Actor,
)
from enforcement.audit import audit_record, snapshot
from enforcement.errors import Conflict, Forbidden, InvalidTransition, NotFound, ServiceError, ValidationFailed
from enforcement.models import (
    SEVERITY_RANK,
    ActionKind,
    Appeal,
    AuditEvent,
    Case,
    Comment,
    EnforcementAction,
    Rule,
    Severity,
    Violation,
)
from enforcement.redaction import redact
from enforcement.transitions import ACTION_TRANSITIONS, IN_FORCE, PENDING, STRIKE_STATUSES, can_transition

log = logging.getLogger(__name__)

A = EnforcementAction.Status
ACTION_FIELDS = ["kind", "status", "rate_limit_per_minute", "expires_at", "remediation_deadline", "attempts"]
CASE_FIELDS = ["status", "severity", "review_due_at", "assignee", "needs_lead_review"]

DEFAULT_THROTTLE_RATE = 60
DEFAULT_THROTTLE_IP_RATE = 10


def _policy() -> dict:
    return settings.ENFORCEMENT


def _enqueue_apply(action_id: int) -> None:
    from enforcement import tasks

    tasks.enqueue_on_commit(tasks.apply_action, action_id)


def _require(actor: Actor, capability: str, message: str) -> None:
    if not actor.can(capability):
        raise Forbidden(message)


# --------------------------------------------------------------------------- reads used by writes


def strikes_for(*, account_id: int, window_days: int, now: datetime, exclude_case_id: int | None = None) -> int:
    """Strikes: the account's cases actioned within the window, not overturned on appeal."""
    actions = EnforcementAction.objects.filter(
        account_id=account_id,
        status__in=STRIKE_STATUSES,
        overturned=False,
        applied_at__gte=now - timedelta(days=window_days),
    )
    if exclude_case_id is not None:
        actions = actions.exclude(case_id=exclude_case_id)
    return actions.values("case_id").distinct().count()


def recommendation_for(case: Case, *, now: datetime | None = None) -> ladder.Recommendation:
    """The ladder's advice for a case: its most severe open violation, its account's strikes."""
    now = now or timezone.now()
    violation = (
        case.violations.filter(status=Violation.Status.OPEN)
        .select_related("rule")
        .order_by("-rule__act_first", "-reported_at")
    )
    worst = max(violation, key=lambda v: (SEVERITY_RANK[v.severity], v.rule.auto_action), default=None)
    if worst is None:
        return ladder.Recommendation(kind=None, reason="no open violations")
    return _recommend(worst.rule, worst.severity, case, worst.source_trusted, now)


def _recommend(rule: Rule, severity: str, case: Case, trusted: bool, now: datetime) -> ladder.Recommendation:
    window = rule.strike_window_days or _policy()["STRIKE_WINDOW_DAYS"]
    strikes = strikes_for(account_id=case.account_id, window_days=window, now=now, exclude_case_id=case.pk)
    return ladder.recommend(
        rule=ladder.RulePolicy.from_rule(rule),
        severity=severity,
        strikes=strikes,
        window_days=window,
        source_trusted=trusted,
    )


# --------------------------------------------------------------------------- cases


def _case_derived_status(case: Case) -> str:
    if case.status == Case.Status.CLOSED:
        return Case.Status.CLOSED
    if Appeal.objects.filter(case=case, status=Appeal.Status.PENDING).exists():
        return Case.Status.APPEALED
    rows = list(case.actions.values_list("status", "kind").order_by())
    in_force = {kind for status, kind in rows if status in (A.APPLIED, A.SCHEDULED)}
    if any(status == A.AWAITING_APPROVAL for status, _ in rows):
        return Case.Status.AWAITING_APPROVAL
    if in_force - {ActionKind.WARNING}:
        return Case.Status.ACTIONED
    if ActionKind.WARNING in in_force:
        return Case.Status.AWAITING_CUSTOMER
    return Case.Status.OPEN


def case_refresh(*, actor: Actor, case: Case, since: datetime | None = None) -> Case:
    """Recompute a locked case's derived fields (severity, review deadline, status)."""
    before = snapshot(case, CASE_FIELDS)
    open_severities = case.violations.filter(status=Violation.Status.OPEN).values_list("severity", flat=True)
    severity = max(open_severities, key=SEVERITY_RANK.__getitem__, default=case.severity)
    if SEVERITY_RANK[severity] > SEVERITY_RANK[case.severity]:
        case.review_due_at = sla.tightened_deadline(
            case.review_due_at, severity, since or timezone.now(), sla_hours=_policy()["SLA_HOURS"]
        )
    case.severity, case.severity_rank = severity, SEVERITY_RANK[severity]
    case.status = _case_derived_status(case)
    after = snapshot(case, CASE_FIELDS)
    if after != before:
        case.save(update_fields=["severity", "severity_rank", "review_due_at", "status", "updated_at"])
        audit_record(
            actor=actor, verb="case.updated", target=case, case=case, account=case.account,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )
    return case


def _case_review_due(*, actor: Actor, case: Case, severity: str, now: datetime) -> None:
    case.review_due_at = sla.review_deadline(severity, now, sla_hours=_policy()["SLA_HOURS"])
    case.save(update_fields=["review_due_at", "updated_at"])
    audit_record(actor=actor, verb="case.review_due", target=case, case=case, account=case.account,
                 before={"review_due_at": None}, after={"review_due_at": case.review_due_at.isoformat()})


def _case_reviewed(*, actor: Actor, case: Case) -> None:
    """A person (or automation acting for one) decided on the case: its review deadline is met.

    An act-first case stays due until a lead confirms or reverts the suspension.
    """
    if actor.kind == "system" or case.review_due_at is None or case.needs_lead_review:
        return
    before = case.review_due_at.isoformat()
    case.review_due_at = None
    case.save(update_fields=["review_due_at", "updated_at"])
    audit_record(actor=actor, verb="case.reviewed", target=case, case=case, account=case.account,
                 before={"review_due_at": before}, after={"review_due_at": None})


def _lead_review_done(*, actor: Actor, case: Case) -> None:
    """A lead confirmed or reverted the act-first suspension: the case no longer waits for them."""
    if case.needs_lead_review:
        case.needs_lead_review = False
        case.save(update_fields=["needs_lead_review", "updated_at"])
    _case_reviewed(actor=actor, case=case)


def _lock_case(case_id: int) -> Case:
    try:
        return Case.objects.select_for_update().select_related("account").get(pk=case_id)
    except Case.DoesNotExist:
        raise NotFound(f"No case {case_id}.") from None


@transaction.atomic
def case_assign(*, actor: Actor, case_id: int, assignee_id: int | None) -> Case:
    _require(actor, WORK_CASE, "You may not assign cases.")
    case = _lock_case(case_id)
    if case.assignee_id == assignee_id:
        return case
    if assignee_id is not None:
        assignee = get_user_model().objects.filter(pk=assignee_id, is_active=True, is_staff=True).first()
        if assignee is None:
            raise ValidationFailed("No such staff member.", fields={"assignee": ["Not an active staff member."]})
    before = {"assignee": case.assignee_id}
    case.assignee_id = assignee_id
    case.save(update_fields=["assignee", "updated_at"])
    audit_record(actor=actor, verb="case.assigned", target=case, case=case, account=case.account,
                 before=before, after={"assignee": assignee_id})
    return case


@transaction.atomic
def case_comment(*, actor: Actor, case_id: int, body: str) -> Comment:
    _require(actor, WORK_CASE, "You may not comment on cases.")
    if not body or not body.strip():
        raise ValidationFailed("A comment needs some text.", fields={"body": ["This field may not be blank."]})
    case = _lock_case(case_id)
    comment = Comment.objects.create(
        case=case, author=actor.user if actor.kind == "user" else None, author_label=actor.label, body=body.strip()
    )
    audit_record(actor=actor, verb="case.commented", target=comment, case=case, account=case.account,
                 after={"body": comment.body[:500]})
    return comment


@transaction.atomic
def case_resolve(*, actor: Actor, case_id: int, resolution: str) -> Case:
    _require(actor, WORK_CASE, "You may not resolve cases.")
    case = _lock_case(case_id)
    if case.status == Case.Status.CLOSED:
        return case
    pending = case.actions.filter(status__in=PENDING).count()
    if pending:
        raise InvalidTransition(
            f"The case has {pending} action(s) awaiting approval or application; cancel or finish them first."
        )
    if case.appeals.filter(status=Appeal.Status.PENDING).exists():
        raise InvalidTransition("The case has an appeal waiting for a decision.")
    before = snapshot(case, CASE_FIELDS)
    case.status = Case.Status.CLOSED
    case.closed_at = timezone.now()
    case.resolution = resolution or ""
    case.needs_lead_review = False
    case.save(update_fields=["status", "closed_at", "resolution", "needs_lead_review", "updated_at"])
    audit_record(actor=actor, verb="case.resolved", target=case, case=case, account=case.account,
                 before=before, after=snapshot(case, CASE_FIELDS), note=case.resolution)
    return case


# --------------------------------------------------------------------------- violations


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


def _resolve_report_inputs(*, account, rule, api_key, severity):
    """The report's account (row-locked: it serialises "find or open the account's case"), rule and key."""
    accounts = Account.objects.select_for_update()
    account_obj = (
        accounts.filter(pk=account.pk) if isinstance(account, Account) else accounts.filter(public_id=account)
    ).first()
    rule_obj = rule if isinstance(rule, Rule) else Rule.objects.filter(code=rule, is_active=True).first()
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
    _require(actor, "report_violation", "You may not report violations.")
    missing = _missing_report_fields({"source": source, "external_id": external_id, "summary": summary})
    if missing:
        raise ValidationFailed("The violation report is not valid.", fields=missing)
    existing = Violation.objects.filter(source=source, external_id=external_id).select_related("case", "rule").first()
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
    case = Case.objects.select_for_update().filter(account=account).exclude(status=Case.Status.CLOSED).first()
    case_opened = case is None
    if case_opened:
        case = Case.objects.create(
            account=account, severity=severity, severity_rank=SEVERITY_RANK[severity],
            review_due_at=sla.review_deadline(severity, now, sla_hours=_policy()["SLA_HOURS"]),
        )
        audit_record(actor=actor, verb="case.opened", target=case, case=case, account=account,
                     after=snapshot(case, CASE_FIELDS))
    violation = Violation.objects.create(
        account=account, api_key=key, rule=rule, case=case, severity=severity, source=source[:64],
        external_id=external_id[:200], source_trusted=actor.is_trusted_source, reported_by=actor.label,
        observed_at=observed_at or now, summary=redact(summary), evidence=redact(evidence or {}),
    )
    audit_record(
        actor=actor, verb="violation.reported", target=violation, case=case, account=account,
        after={"rule": rule.code, "severity": severity, "source": source, "external_id": external_id,
               "api_key": key.prefix if key else None},
    )
    if not case_opened and case.review_due_at is None:
        _case_review_due(actor=actor, case=case, severity=severity, now=now)  # new evidence: look again
    # A report can only raise its case's severity (the status follows from actions and appeals).
    if not case_opened and SEVERITY_RANK[severity] > SEVERITY_RANK[case.severity]:
        case_refresh(actor=actor, case=case, since=now)
    recommendation = _recommend(rule, severity, case, actor.is_trusted_source, now)
    act_first_action = _follow_up_report(
        actor=actor, case=case, violation=violation, recommendation=recommendation, case_opened=case_opened,
        suspension_underway=recommendation.act_first and _suspension_underway(case),
    )
    return ReportResult(violation, True, recommendation, act_first_action)


def _suspension_underway(case: Case) -> bool:
    """A suspension or termination is already pending or in force on the case."""
    return case.actions.filter(
        kind__in=[ActionKind.SUSPEND, ActionKind.TERMINATE], status__in=[*PENDING, *IN_FORCE]
    ).exists()


def _follow_up_report(*, actor, case, violation, recommendation, case_opened, suspension_underway):
    """After a new report: act first when the ladder says so and nothing as strong is under way;
    tell staff about a critical case. Returns the act-first suspension, if one was scheduled."""
    act_first_action = None
    if recommendation.act_first and not suspension_underway:
        act_first_action = _act_first_suspend(actor=actor, case=case, violation=violation, reason=recommendation.reason)
    if violation.severity == Severity.CRITICAL and (case_opened or act_first_action):
        notifications.notify_staff(
            template="staff_critical_case", event_key=f"case:{case.pk}:critical", case=case,
            context=notifications.case_context(case, violation=violation),
        )
    return act_first_action


def _act_first_suspend(*, actor: Actor, case: Case, violation: Violation, reason: str) -> EnforcementAction:
    now = timezone.now()
    action = EnforcementAction.objects.create(
        case=case, account=case.account, kind=ActionKind.SUSPEND, status=A.SCHEDULED,
        reason=f"Act first on {violation.rule.code}: {reason}", act_first=True,
        requested_by_label=f"{actor.label} (act-first)", scheduled_at=now,
        requested_by=actor.user if actor.kind == "user" else None,
        requested_by_token=actor.token if actor.kind == "token" else None,
    )
    audit_record(actor=actor, verb="action.act_first_scheduled", target=action, case=case, account=case.account,
                 after=snapshot(action, ACTION_FIELDS), note=action.reason)
    case.needs_lead_review = True
    case.review_due_at = sla.tightened_deadline(case.review_due_at, "critical", now, sla_hours=_policy()["SLA_HOURS"])
    case.save(update_fields=["needs_lead_review", "review_due_at", "updated_at"])
    case_refresh(actor=SYSTEM, case=case)
    notifications.notify_staff(
        template="staff_act_first_review", event_key=f"action:{action.pk}:act_first_review", case=case,
        action=action, context=notifications.action_context(action), leads_only=True,
    )
    _enqueue_apply(action.pk)
    return action


@transaction.atomic
def violation_dismiss(*, actor: Actor, violation_id: int, reason: str) -> Violation:
    _require(actor, WORK_CASE, "You may not dismiss violations.")
    violation = Violation.objects.select_for_update().filter(pk=violation_id).first()
    if violation is None:
        raise NotFound(f"No violation {violation_id}.")
    if violation.status == Violation.Status.DISMISSED:
        return violation
    case = _lock_case(violation.case_id)
    violation.status = Violation.Status.DISMISSED
    violation.dismissed_at = timezone.now()
    violation.dismissed_reason = reason or ""
    violation.save(update_fields=["status", "dismissed_at", "dismissed_reason"])
    audit_record(actor=actor, verb="violation.dismissed", target=violation, case=case, account=case.account,
                 before={"status": "open"}, after={"status": "dismissed"}, note=violation.dismissed_reason)
    case_refresh(actor=actor, case=case)
    return violation


# --------------------------------------------------------------------------- actions


def _lock_action(action_id: int) -> EnforcementAction:
    try:
        return EnforcementAction.objects.select_for_update().select_related("case", "account").get(pk=action_id)
    except EnforcementAction.DoesNotExist:
        raise NotFound(f"No action {action_id}.") from None


def _set_status(actor: Actor, action: EnforcementAction, new: str, verb: str, *, extra: list[str], note: str = ""):
    if not can_transition(ACTION_TRANSITIONS, action.status, new):
        raise InvalidTransition(f"A {action.status} action cannot become {new}.")
    before = snapshot(action, ACTION_FIELDS)
    action.status = new
    action.save(update_fields=["status", *extra, "updated_at"])
    audit_record(actor=actor, verb=verb, target=action, case=action.case, account=action.account,
                 before=before, after=snapshot(action, ACTION_FIELDS), note=note)


def action_propose(
    *,
    actor: Actor,
    case_id: int,
    reason: str,
    kind: str | None = None,
    key_prefixes: list[str] | None = None,
    rate_limit_per_minute: int | None = None,
    ip_rate_limit_per_minute: int | None = None,
    expires_at: datetime | None = None,
    remediation_deadline: datetime | None = None,
) -> EnforcementAction:
    """Propose an action on a case; without ``kind``, the ladder's recommendation."""
    _require(actor, PROPOSE_ACTION, "You may not propose enforcement actions.")
    with transaction.atomic():
        case = _lock_case(case_id)
        return _action_propose(
            actor=actor, case=case, kind=kind, reason=reason, key_prefixes=key_prefixes,
            rate_limit=rate_limit_per_minute, ip_rate_limit=ip_rate_limit_per_minute,
            expires_at=expires_at, remediation_deadline=remediation_deadline,
        )


def _action_propose(*, actor, case, kind, reason, key_prefixes=None, rate_limit=None, ip_rate_limit=None,
                    expires_at=None, remediation_deadline=None) -> EnforcementAction:
    now = timezone.now()
    if case.status == Case.Status.CLOSED:
        raise InvalidTransition("The case is closed.")
    if kind is None:
        recommendation = recommendation_for(case, now=now)
        if recommendation.kind is None:
            raise ValidationFailed(
                f"The ladder recommends no action ({recommendation.reason}); choose a kind.",
                fields={"kind": ["Required: the ladder has no recommendation for this case."]},
            )
        kind = recommendation.kind
        reason = reason or recommendation.reason
    fields: dict[str, list[str]] = {}
    if kind not in ActionKind.values:
        fields["kind"] = [f"Must be one of {', '.join(ActionKind.values)}."]
    if not reason or not reason.strip():
        fields["reason"] = ["This field may not be blank."]
    if expires_at is not None and expires_at <= now:
        fields["expires_at"] = ["Must be in the future."]
    if remediation_deadline is not None and (kind != ActionKind.WARNING or remediation_deadline <= now):
        fields["remediation_deadline"] = ["Only a warning has one, and it must be in the future."]
    if (rate_limit is not None or ip_rate_limit is not None) and kind != ActionKind.THROTTLE:
        fields["rate_limit_per_minute"] = ["Only a throttle sets rate limits."]
    for name, value in (("rate_limit_per_minute", rate_limit), ("ip_rate_limit_per_minute", ip_rate_limit)):
        if value is not None and value < 1:
            fields[name] = ["Must be at least 1."]
    if expires_at is not None and kind in (ActionKind.WARNING, ActionKind.TERMINATE):
        fields["expires_at"] = ["Only throttles and suspensions expire."]
    keys = []
    if key_prefixes:
        keys = list(APIKey.objects.filter(account_id=case.account_id, prefix__in=key_prefixes))
        unknown = sorted(set(key_prefixes) - {k.prefix for k in keys})
        if unknown:
            fields["keys"] = [f"Not keys of this account: {', '.join(unknown)}."]
        elif kind == ActionKind.TERMINATE:
            fields["keys"] = ["A termination covers the whole account."]
    if fields:
        raise ValidationFailed("The action is not valid.", fields=fields)
    duplicate = case.actions.filter(kind=kind, status__in=[A.AWAITING_APPROVAL, A.SCHEDULED]).first()
    if duplicate is not None:
        raise Conflict(f"A {kind} (#{duplicate.pk}) is already {duplicate.status} on this case.")

    needs_approval = rights.requires_approval(kind, actor)
    action = EnforcementAction.objects.create(
        case=case, account=case.account, kind=kind, reason=reason.strip(),
        status=A.AWAITING_APPROVAL if needs_approval else A.SCHEDULED,
        scheduled_at=None if needs_approval else now,
        rate_limit_per_minute=(rate_limit or DEFAULT_THROTTLE_RATE) if kind == ActionKind.THROTTLE else None,
        ip_rate_limit_per_minute=(ip_rate_limit or DEFAULT_THROTTLE_IP_RATE) if kind == ActionKind.THROTTLE else None,
        expires_at=expires_at,
        remediation_deadline=(remediation_deadline or now + timedelta(days=_policy()["REMEDIATION_DAYS"]))
        if kind == ActionKind.WARNING else None,
        requested_by=actor.user if actor.kind == "user" else None,
        requested_by_token=actor.token if actor.kind == "token" else None,
        requested_by_label=actor.label,
    )
    if keys:
        action.keys.set(keys)
    audit_record(actor=actor, verb="action.proposed", target=action, case=case, account=case.account,
                 after={**snapshot(action, ACTION_FIELDS), "keys": [k.prefix for k in keys]}, note=action.reason)
    case_refresh(actor=actor, case=case)
    _case_reviewed(actor=actor, case=case)
    if needs_approval:
        notifications.notify_staff(
            template="staff_awaiting_approval", event_key=f"action:{action.pk}:awaiting_approval",
            case=case, action=action, context=notifications.action_context(action), leads_only=True,
        )
    else:
        _enqueue_apply(action.pk)
    return action


@transaction.atomic
def action_approve(*, actor: Actor, action_id: int) -> EnforcementAction:
    _require(actor, APPROVE_ACTION, "Only a lead may approve suspensions and terminations.")
    action = _lock_action(action_id)
    if action.status in (A.SCHEDULED, A.APPLIED) and action.approved_at is not None:
        return action  # already approved: nothing more to do
    if action.status != A.AWAITING_APPROVAL:
        raise InvalidTransition(f"A {action.status} action cannot be approved.")
    if rights.is_own_termination(actor, action):
        raise Forbidden("A termination needs a second lead: you requested this one.")
    now = timezone.now()
    action.approved_by = actor.user if actor.kind == "user" else None
    action.approved_by_token = actor.token if actor.kind == "token" else None
    action.approved_by_label = actor.label
    action.approved_at = action.scheduled_at = now
    _set_status(actor, action, A.SCHEDULED, "action.approved",
                extra=["approved_by", "approved_by_token", "approved_by_label", "approved_at", "scheduled_at"])
    case = case_refresh(actor=actor, case=_lock_case(action.case_id))
    _case_reviewed(actor=actor, case=case)
    _enqueue_apply(action.pk)
    return action


@transaction.atomic
def action_cancel(*, actor: Actor, action_id: int, reason: str = "") -> EnforcementAction:
    action = _lock_action(action_id)
    if not rights.may_cancel(actor, action):
        raise Forbidden(f"You may not cancel a {action.kind}.")
    if action.status == A.CANCELLED:
        return action
    action.ended_at = timezone.now()
    _set_status(actor, action, A.CANCELLED, "action.cancelled", extra=["ended_at"], note=reason)
    case_refresh(actor=actor, case=_lock_case(action.case_id))
    return action


def action_apply(*, action_id: int, actor: Actor = SYSTEM) -> EnforcementAction:
    """Apply a scheduled action to its keys. Idempotent: anything but a scheduled action is left alone."""
    with transaction.atomic():
        action = _lock_action(action_id)
        if action.status != A.SCHEDULED:
            return action
        now = timezone.now()
        action.applied_at = now
        action.attempts += 1
        action.last_error = ""
        _set_status(actor, action, A.APPLIED, "action.applied", extra=["applied_at", "attempts", "last_error"])
        changed = account_keys_recompute(account_id=action.account_id)
        case = _lock_case(action.case_id)
        case_refresh(actor=actor, case=case)
        notifications.notify_customer(
            template=f"customer_{action.kind}", event_key=f"action:{action.pk}:applied", action=action,
            context=notifications.action_context(action),
        )
        log.info("applied %s to account %s: %d key(s) changed", action, action.account_id, changed)
        return action


@transaction.atomic
def action_record_failure(*, action_id: int, error: str, final: bool) -> EnforcementAction:
    """A try at applying failed. After the last try the action ends ``failed`` and staff are told."""
    action = _lock_action(action_id)
    if action.status != A.SCHEDULED:
        return action
    action.attempts += 1
    action.last_error = error[:2000]
    if not final:
        action.save(update_fields=["attempts", "last_error", "updated_at"])
        return action
    action.ended_at = timezone.now()
    _set_status(
        SYSTEM, action, A.FAILED, "action.failed", extra=["attempts", "last_error", "ended_at"], note=error[:500]
    )
    notifications.notify_staff(
        template="staff_action_failed", event_key=f"action:{action.pk}:failed:{action.attempts}",
        case=action.case, action=action, context=notifications.action_context(action),
    )
    return action


@transaction.atomic
def action_retry(*, actor: Actor, action_id: int) -> EnforcementAction:
    """Put a failed action back on the schedule."""
    action = _lock_action(action_id)
    if not rights.may_undo(actor, action):
        raise Forbidden(f"You may not retry a {action.kind}.")
    if action.status != A.FAILED:  # else "retry" would skip an approval (awaiting_approval -> scheduled)
        raise InvalidTransition(f"Only a failed action is retried; this one is {action.status}.")
    action.scheduled_at = timezone.now()
    action.ended_at = None
    _set_status(actor, action, A.SCHEDULED, "action.retried", extra=["scheduled_at", "ended_at"])
    _enqueue_apply(action.pk)
    return action


def _lift(actor: Actor, action: EnforcementAction, new_status: str, verb: str, note: str, *, overturned=False):
    action.ended_at = timezone.now()
    action.overturned = overturned or action.overturned
    _set_status(actor, action, new_status, verb, extra=["ended_at", "overturned"], note=note)
    account_keys_recompute(account_id=action.account_id)
    case = _lock_case(action.case_id)
    if action.act_first and case.needs_lead_review:
        _lead_review_done(actor=actor, case=case)
    case_refresh(actor=actor, case=case)
    if action.kind != ActionKind.WARNING:
        notifications.notify_customer(
            template="customer_lifted", event_key=f"action:{action.pk}:{new_status}", action=action,
            context={**notifications.action_context(action), "how": new_status},
        )


@transaction.atomic
def action_revert(*, actor: Actor, action_id: int, reason: str, overturned: bool = False) -> EnforcementAction:
    """Lift an applied action; the keys keep whatever other actions still impose."""
    action = _lock_action(action_id)
    if not rights.may_undo(actor, action):
        raise Forbidden(f"Only a lead may revert a {action.kind}.")
    if action.status != A.APPLIED:
        raise InvalidTransition(f"A {action.status} action cannot be reverted.")
    _lift(actor, action, A.REVERTED, "action.reverted", reason, overturned=overturned)
    return action


@transaction.atomic
def action_expire(*, action_id: int, now: datetime | None = None) -> EnforcementAction:
    action = _lock_action(action_id)
    now = now or timezone.now()
    if action.status != A.APPLIED or action.expires_at is None or action.expires_at > now:
        return action
    _lift(SYSTEM, action, A.EXPIRED, "action.expired", "expired")
    return action


@transaction.atomic
def action_confirm(*, actor: Actor, action_id: int, note: str = "") -> EnforcementAction:
    """A lead confirms an act-first suspension; reverting it is ``action_revert``."""
    _require(actor, APPROVE_ACTION, "Only a lead may review act-first actions.")
    action = _lock_action(action_id)
    if not action.act_first:
        raise InvalidTransition("Only act-first actions are reviewed.")
    if action.reviewed_at is not None:
        return action
    action.reviewed_at = timezone.now()
    action.approved_by = actor.user if actor.kind == "user" else None
    action.approved_by_token = actor.token if actor.kind == "token" else None
    action.approved_by_label = actor.label
    action.save(update_fields=["reviewed_at", "approved_by", "approved_by_token", "approved_by_label", "updated_at"])
    audit_record(actor=actor, verb="action.confirmed", target=action, case=action.case, account=action.account,
                 after={"reviewed_at": action.reviewed_at.isoformat()}, note=note)
    _lead_review_done(actor=actor, case=_lock_case(action.case_id))
    return action


def restrictions_for(account_id: int) -> tuple[list[Restriction], str]:
    """What the actions in force impose on an account's keys, and the account's status."""
    actions = (
        EnforcementAction.objects.filter(account_id=account_id, status__in=IN_FORCE)
        .exclude(kind=ActionKind.WARNING)
        .prefetch_related("keys")
    )
    restrictions, account_status = [], Account.Status.ACTIVE
    status_for = {
        ActionKind.THROTTLE: KeyStatus.THROTTLED,
        ActionKind.SUSPEND: KeyStatus.SUSPENDED,
        ActionKind.TERMINATE: KeyStatus.REVOKED,
    }
    for action in actions:
        key_ids = frozenset(k.pk for k in action.keys.all()) or None
        restrictions.append(
            Restriction(
                status=status_for[action.kind], rate_limit=action.rate_limit_per_minute,
                ip_rate_limit=action.ip_rate_limit_per_minute, key_ids=key_ids,
            )
        )
        if key_ids is None and action.kind == ActionKind.TERMINATE:
            account_status = Account.Status.CLOSED
        elif key_ids is None and action.kind == ActionKind.SUSPEND and account_status != Account.Status.CLOSED:
            account_status = Account.Status.SUSPENDED
    return restrictions, account_status


def account_keys_recompute(*, account_id: int, key_ids: list[int] | None = None) -> int:
    """Recompute the effective state of an account's keys from every action in force."""
    with transaction.atomic():
        restrictions, account_status = restrictions_for(account_id)
        return key_states_recompute(
            account_id=account_id, restrictions=restrictions, account_status=account_status, key_ids=key_ids
        )


def all_keys_recompute() -> tuple[int, int]:
    """Recompute every account's keys; returns (accounts, keys changed)."""
    accounts = changed = 0
    for account_id in Account.objects.values_list("pk", flat=True).iterator():
        changed += account_keys_recompute(account_id=account_id)
        accounts += 1
    return accounts, changed


# --------------------------------------------------------------------------- escalation and the sweep


def escalate_overdue_warnings(*, now: datetime | None = None) -> list[EnforcementAction]:
    """A warning whose remediation deadline passed with the case still open climbs one rung."""
    now = now or timezone.now()
    due = EnforcementAction.objects.filter(
        kind=ActionKind.WARNING, status=A.APPLIED, escalated_at__isnull=True, remediation_deadline__lte=now
    ).exclude(case__status=Case.Status.CLOSED).values_list("pk", flat=True)
    escalated = []
    for warning_id in list(due):
        action = _escalate_warning(warning_id, now)
        if action is not None:
            escalated.append(action)
    return escalated


@transaction.atomic
def _escalate_warning(warning_id: int, now: datetime) -> EnforcementAction | None:
    warning = _lock_action(warning_id)
    if warning.escalated_at is not None or warning.status != A.APPLIED:
        return None
    case = _lock_case(warning.case_id)
    warning.escalated_at = now
    warning.save(update_fields=["escalated_at", "updated_at"])
    if case.status == Case.Status.CLOSED:
        return None
    audit_record(actor=SYSTEM, verb="action.escalated", target=warning, case=case, account=case.account,
                 note="remediation deadline passed with the case unresolved")
    kind = ladder.next_rung(ActionKind.WARNING)
    if case.actions.filter(kind=kind, status__in=[*PENDING, *IN_FORCE]).exists():
        return None
    return _action_propose(
        actor=SYSTEM, case=case, kind=kind,
        reason=f"Warning #{warning.pk} passed its remediation deadline unresolved -> {kind}",
    )


@dataclass
class SweepReport:
    requeued_actions: list[int]
    expired_actions: list[int]
    escalated_actions: list[int]
    requeued_notifications: list[int]


def sweep(*, now: datetime | None = None, dry_run: bool = False) -> SweepReport:
    """Recover lost work: re-enqueue due actions and emails, expire and escalate what is due."""
    from enforcement import tasks

    now = now or timezone.now()
    grace = timedelta(seconds=_policy()["SWEEP_GRACE_SECONDS"])
    stuck = list(
        EnforcementAction.objects.filter(status=A.SCHEDULED, scheduled_at__lte=now - grace).values_list("pk", flat=True)
    )
    expiring = list(
        EnforcementAction.objects.filter(status=A.APPLIED, expires_at__lte=now).values_list("pk", flat=True)
    )
    pending_mail = notifications.stuck_ids(now=now, grace=grace)
    if dry_run:
        overdue = list(
            EnforcementAction.objects.filter(
                kind=ActionKind.WARNING, status=A.APPLIED, escalated_at__isnull=True, remediation_deadline__lte=now
            ).exclude(case__status=Case.Status.CLOSED).values_list("pk", flat=True)
        )
        return SweepReport(stuck, expiring, overdue, pending_mail)
    for action_id in stuck:
        tasks.enqueue(tasks.apply_action, action_id)
    for action_id in expiring:
        action_expire(action_id=action_id, now=now)
    escalated = [a.pk for a in escalate_overdue_warnings(now=now)]
    for notification_id in pending_mail:
        tasks.enqueue(tasks.send_notification, notification_id)
    return SweepReport(stuck, expiring, escalated, pending_mail)


# --------------------------------------------------------------------------- appeals


def appeal_submit(*, actor: Actor, action_id: int, message: str) -> Appeal:
    _require(actor, SUBMIT_APPEAL, "You may not submit appeals.")
    if not message or not message.strip():
        raise ValidationFailed("An appeal needs a message.", fields={"message": ["This field may not be blank."]})
    try:
        with transaction.atomic():
            action = _lock_action(action_id)
            if Appeal.objects.filter(action=action).exists():
                raise Conflict("This action has already been appealed.")
            if action.status not in (A.APPLIED, A.EXPIRED) or action.applied_at is None:
                raise InvalidTransition(f"A {action.status} action cannot be appealed.")
            window = timedelta(days=_policy()["APPEAL_WINDOW_DAYS"])
            if timezone.now() > action.applied_at + window:
                raise InvalidTransition(f"The appeal window of {window.days} days has passed.")
            case = _lock_case(action.case_id)
            if case.status == Case.Status.CLOSED:
                raise InvalidTransition("The case is closed.")
            appeal = Appeal.objects.create(
                action=action, case=case, message=message.strip(), submitted_by_label=actor.label
            )
            audit_record(actor=actor, verb="appeal.submitted", target=appeal, case=case, account=case.account,
                         after={"action": action.pk, "status": appeal.status})
            case_refresh(actor=actor, case=case)
            notifications.notify_customer(
                template="customer_appeal_received", event_key=f"appeal:{appeal.pk}:received", action=action,
                context={**notifications.action_context(action), "appeal_id": appeal.pk},
            )
            return appeal
    except IntegrityError:
        raise Conflict("This action has already been appealed.") from None


@transaction.atomic
def appeal_decide(*, actor: Actor, appeal_id: int, outcome: str, note: str = "") -> Appeal:
    _require(actor, DECIDE_APPEAL, "Only a lead may decide appeals.")
    if outcome not in (Appeal.Status.UPHELD, Appeal.Status.OVERTURNED):
        raise ValidationFailed("Unknown outcome.", fields={"outcome": ["Must be upheld or overturned."]})
    appeal = Appeal.objects.select_for_update().select_related("action").filter(pk=appeal_id).first()
    if appeal is None:
        raise NotFound(f"No appeal {appeal_id}.")
    if appeal.status == outcome:
        return appeal
    if appeal.status != Appeal.Status.PENDING:
        raise InvalidTransition(f"The appeal was already {appeal.status}.")
    appeal.status = outcome
    appeal.decided_at = timezone.now()
    appeal.decided_by = actor.user if actor.kind == "user" else None
    appeal.decided_by_label = actor.label
    appeal.decision_note = note or ""
    appeal.save(update_fields=["status", "decided_at", "decided_by", "decided_by_label", "decision_note"])
    case = _lock_case(appeal.case_id)
    audit_record(actor=actor, verb=f"appeal.{outcome}", target=appeal, case=case, account=case.account,
                 before={"status": "pending"}, after={"status": outcome}, note=appeal.decision_note)
    action = _lock_action(appeal.action_id)
    if outcome == Appeal.Status.OVERTURNED:
        if action.status == A.APPLIED:
            _lift(actor, action, A.REVERTED, "action.reverted", f"appeal #{appeal.pk} overturned", overturned=True)
        else:
            action.overturned = True
            action.save(update_fields=["overturned", "updated_at"])
    case_refresh(actor=actor, case=case)
    notifications.notify_customer(
        template="customer_appeal_decided", event_key=f"appeal:{appeal.pk}:decided", action=action,
        context={**notifications.action_context(action), "outcome": outcome, "note": appeal.decision_note},
    )
    return appeal


# --------------------------------------------------------------------------- violations in bulk


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
    _require(actor, "report_violation", "You may not report violations.")
    answers: list[ReportResult | ServiceError | None] = [None] * len(reports)
    first_of: dict[tuple[str, str], int] = {}
    repeats: dict[int, int] = {}
    for index, report in enumerate(reports):
        missing = _missing_report_fields(report)
        if missing:
            answers[index] = ValidationFailed("The violation report is not valid.", fields=missing)
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
        try:
            with transaction.atomic():
                for index, result in _violations_create_bulk(actor=actor, reports=reports, items=items).items():
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


def strikes_for_cases(*, cases: list[Case], windows: set[int], now: datetime) -> dict[tuple[int, int], int]:
    """``strikes_for`` of each case's account (its own case excluded), per window, in one query."""
    if not cases:
        return {}
    rows = EnforcementAction.objects.filter(
        account_id__in={case.account_id for case in cases},
        status__in=STRIKE_STATUSES,
        overturned=False,
        applied_at__gte=now - timedelta(days=max(windows)),
    ).values_list("account_id", "case_id", "applied_at")
    rows = list(rows)
    return {
        (case.pk, window): len({
            case_id for account_id, case_id, applied_at in rows
            if account_id == case.account_id and case_id != case.pk and applied_at >= now - timedelta(days=window)
        })
        for case in cases
        for window in windows
    }


def _audit_row(actor: Actor, verb: str, target, *, case, account, after: dict) -> AuditEvent:
    """An unsaved ``AuditEvent`` as ``audit_record`` writes it, for ``bulk_create``."""
    return AuditEvent(
        **actor.audit_fields(), verb=verb, target_type=target._meta.model_name, target_id=str(target.pk),
        case=case, account=account, after=after,
    )


def _violations_create_bulk(*, actor: Actor, reports: list[dict], items: list[tuple]) -> dict[int, ReportResult]:
    now = timezone.now()
    trusted = actor.is_trusted_source
    account_ids = sorted({account.pk for _, account, *_ in items})
    # Account rows locked in id order (as the single path locks one), so concurrent batches cannot deadlock.
    list(Account.objects.select_for_update().filter(pk__in=account_ids).order_by("pk").values_list("pk", flat=True))
    cases = {
        case.account_id: case
        for case in Case.objects.select_for_update().select_related("account")
        .filter(account_id__in=account_ids).exclude(status=Case.Status.CLOSED)
    }
    opened: list[Case] = []
    opening_item: dict[int, int] = {}
    for index, account, _, _, severity in items:
        if account.pk not in cases:
            case = Case(
                account=account, severity=severity, severity_rank=SEVERITY_RANK[severity],
                review_due_at=sla.review_deadline(severity, now, sla_hours=_policy()["SLA_HOURS"]),
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
            source=report["source"][:64], external_id=report["external_id"][:200], source_trusted=trusted,
            reported_by=actor.label, observed_at=report.get("observed_at") or now,
            summary=redact(report["summary"]), evidence=redact(report.get("evidence") or {}),
        ))
    Violation.objects.bulk_create(violations)
    audit_rows = [
        _audit_row(actor, "case.opened", case, case=case, account=case.account, after=snapshot(case, CASE_FIELDS))
        for case in opened
    ]
    for violation, (_, _, rule, key, severity) in zip(violations, items, strict=True):
        audit_rows.append(_audit_row(
            actor, "violation.reported", violation, case=violation.case, account=violation.account,
            after={"rule": rule.code, "severity": severity, "source": violation.source,
                   "external_id": violation.external_id, "api_key": key.prefix if key else None},
        ))
    AuditEvent.objects.bulk_create(audit_rows)

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
            _case_review_due(actor=actor, case=case, severity=Severity.values[top_rank[case.pk]], now=now)
        if top_rank[case.pk] > SEVERITY_RANK[case.severity]:
            case_refresh(actor=actor, case=case, since=now)
    windows = {rule.strike_window_days or _policy()["STRIKE_WINDOW_DAYS"] for _, _, rule, _, _ in items}
    strikes = strikes_for_cases(cases=list(touched.values()), windows=windows, now=now)
    restrictive_action_open: dict[int, bool] = {}
    results: dict[int, ReportResult] = {}
    for violation, (index, _, rule, _, severity) in zip(violations, items, strict=True):
        case = violation.case
        window = rule.strike_window_days or _policy()["STRIKE_WINDOW_DAYS"]
        recommendation = ladder.recommend(
            rule=ladder.RulePolicy.from_rule(rule), severity=severity, strikes=strikes[(case.pk, window)],
            window_days=window, source_trusted=trusted,
        )
        if recommendation.act_first and case.pk not in restrictive_action_open:
            restrictive_action_open[case.pk] = _suspension_underway(case)
        act_first_action = _follow_up_report(
            actor=actor, case=case, violation=violation, recommendation=recommendation,
            case_opened=index in opening_item, suspension_underway=restrictive_action_open.get(case.pk, False),
        )
        if act_first_action is not None:
            restrictive_action_open[case.pk] = True
        results[index] = ReportResult(violation, True, recommendation, act_first_action)
    return results


# --------------------------------------------------------------------------- the rule catalogue

RULE_FIELDS = ["title", "clause", "description", "default_severity", "ladder_overrides", "strike_window_days",
               "act_first", "auto_action", "publishable_key_exposure_is_violation", "is_active"]


@transaction.atomic
def rule_save(*, actor: Actor, rule: Rule) -> Rule:
    """Create or edit a rule of the catalogue (the policy as data), with its audit event."""
    if not (actor.kind == "user" and actor.user.has_perm("enforcement.change_rule")):
        raise Forbidden("Only a lead may edit the rule catalogue.")
    problems = ladder.validate_overrides(rule.ladder_overrides)
    if problems:
        raise ValidationFailed("The ladder overrides are not valid.", fields={"ladder_overrides": problems})
    creating = rule.pk is None
    before = None if creating else snapshot(Rule.objects.select_for_update().get(pk=rule.pk), RULE_FIELDS)
    after = snapshot(rule, RULE_FIELDS)
    if before is not None:
        before, after = ({k: v for k, v in before.items() if after[k] != v},
                         {k: v for k, v in after.items() if before[k] != v})
        if not after:
            return rule
    rule.save()
    audit_record(actor=actor, verb="rule.created" if creating else "rule.updated", target=rule,
                 before=before, after=after)
    return rule

