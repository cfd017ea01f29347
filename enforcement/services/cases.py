"""Cases: their derived fields (severity, review deadline, status) and the verbs staff use on them."""

from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from enforcement import sla
from enforcement.actors import WORK_CASE, Actor
from enforcement.audit import audit_record, audit_refusals, audit_row, snapshot
from enforcement.errors import BLANK, InvalidTransition, ValidationFailed
from enforcement.models import SEVERITY_RANK, ActionKind, ActionStatus, Appeal, AuditEvent, Case, Comment, Violation
from enforcement.services.detectors import outcomes_dismissed
from enforcement.services.locks import for_update, lock_case
from enforcement.transitions import PENDING
from lib.bulk import bulk_insert

CASE_FIELDS = ["status", "severity", "review_due_at", "assignee", "needs_lead_review"]


def case_derived_status(case: Case) -> str:
    if case.status == Case.Status.CLOSED:
        return Case.Status.CLOSED
    if Appeal.objects.filter(case=case, status=Appeal.Status.PENDING).exists():
        return Case.Status.APPEALED
    rows = list(case.actions.values_list("status", "kind").order_by())
    in_force = {kind for status, kind in rows if status in (ActionStatus.APPLIED, ActionStatus.SCHEDULED)}
    if any(status == ActionStatus.AWAITING_APPROVAL for status, _ in rows):
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
            case.review_due_at, severity, since or timezone.now(), sla_hours=settings.ENFORCEMENT["SLA_HOURS"]
        )
    case.severity, case.severity_rank = severity, SEVERITY_RANK[severity]
    case.status = case_derived_status(case)
    after = snapshot(case, CASE_FIELDS)
    if after != before:
        case.save(update_fields=["severity", "severity_rank", "review_due_at", "status", "updated_at"])
        audit_record(
            actor=actor, verb="case.updated", target=case, case=case, account=case.account,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )
    return case


def case_review_due(*, actor: Actor, case: Case, severity: str, now: datetime) -> None:
    case.review_due_at = sla.review_deadline(severity, now, sla_hours=settings.ENFORCEMENT["SLA_HOURS"])
    case.save(update_fields=["review_due_at", "updated_at"])
    audit_record(actor=actor, verb="case.review_due", target=case, case=case, account=case.account,
                 before={"review_due_at": None}, after={"review_due_at": case.review_due_at.isoformat()})


def case_reviewed(*, actor: Actor, case: Case) -> None:
    """A person (or automation acting for one) decided on the case: its review deadline is met.

    An act-first case stays due until a lead confirms or reverts the suspension, and a case whose action
    awaits a lead's approval stays due until a lead decides it: the account keeps sending meanwhile.
    """
    if actor.kind == "system" or case.review_due_at is None or case.needs_lead_review:
        return
    if case.actions.filter(status=ActionStatus.AWAITING_APPROVAL).exists():
        return
    before = case.review_due_at.isoformat()
    case.review_due_at = None
    case.save(update_fields=["review_due_at", "updated_at"])
    audit_record(actor=actor, verb="case.reviewed", target=case, case=case, account=case.account,
                 before={"review_due_at": before}, after={"review_due_at": None})


def lead_review_done(*, actor: Actor, case: Case) -> None:
    """A lead confirmed or reverted the act-first suspension: the case no longer waits for them."""
    if case.needs_lead_review:
        case.needs_lead_review = False
        case.save(update_fields=["needs_lead_review", "updated_at"])
    case_reviewed(actor=actor, case=case)


@transaction.atomic
def case_assign(*, actor: Actor, case_id: int, assignee_id: int | None) -> Case:
    actor.require(WORK_CASE, "You may not assign cases.")
    case = lock_case(case_id)
    if case.assignee_id == assignee_id:
        return case
    if assignee_id is not None:
        in_range = 0 < assignee_id < 2**31  # a user's id is a 32-bit integer: a larger one is no one's
        staff = get_user_model().objects.filter(pk=assignee_id, is_active=True, is_staff=True)
        if not (in_range and staff.exists()):
            raise ValidationFailed("No such staff member.", fields={"assignee": ["Not an active staff member."]})
    before = {"assignee": case.assignee_id}
    case.assignee_id = assignee_id
    case.save(update_fields=["assignee", "updated_at"])
    audit_record(actor=actor, verb="case.assigned", target=case, case=case, account=case.account,
                 before=before, after={"assignee": assignee_id})
    return case


@transaction.atomic
def case_comment(*, actor: Actor, case_id: int, body: str) -> Comment:
    actor.require(WORK_CASE, "You may not comment on cases.")
    if not body or not body.strip():
        raise ValidationFailed("A comment needs some text.", fields={"body": ["This field may not be blank."]})
    case = lock_case(case_id)
    comment = Comment.objects.create(
        case=case, author=actor.user_or_none, author_label=actor.label, body=body.strip()
    )
    audit_record(actor=actor, verb="case.commented", target=comment, case=case, account=case.account,
                 after={"body": comment.body[:500]})
    return comment


@audit_refusals("case.resolve", Case, "case_id")
@transaction.atomic
def case_resolve(*, actor: Actor, case_id: int, resolution: str) -> Case:
    """Close a case with its resolution; violations still open in it are dismissed with that reason."""
    actor.require(WORK_CASE, "You may not resolve cases.")
    if not resolution or not resolution.strip():
        raise ValidationFailed("Say how the case was resolved.", fields={"resolution": [BLANK]})
    case = lock_case(case_id)
    if case.status == Case.Status.CLOSED:
        return case
    pending = case.actions.filter(status__in=PENDING).count()
    if pending:
        raise InvalidTransition(
            f"The case has {pending} action(s) awaiting approval or application; cancel or finish them first."
        )
    if case.appeals.filter(status=Appeal.Status.PENDING).exists():
        raise InvalidTransition("The case has an appeal waiting for a decision.")
    now = timezone.now()
    resolution = resolution.strip()
    violations_dismiss_locked(actor=actor, case=case, reason=resolution, now=now, violations=list(
        for_update(case.violations.filter(status=Violation.Status.OPEN)).order_by("pk")
    ))
    before = snapshot(case, CASE_FIELDS)
    case.status = Case.Status.CLOSED
    case.closed_at = now
    case.resolution = resolution
    case.needs_lead_review = False
    case.save(update_fields=["status", "closed_at", "resolution", "needs_lead_review", "updated_at"])
    audit_record(actor=actor, verb="case.resolved", target=case, case=case, account=case.account,
                 before=before, after=snapshot(case, CASE_FIELDS), note=case.resolution)
    return case



def violations_dismiss_locked(*, actor: Actor, case: Case, violations: list[Violation], reason: str, now) -> None:
    """Dismiss violations (locked, open) whose case the caller locked (``violation_dismiss``, closing a case): the
    same few queries for one or a thousand, an audit event each."""
    if not violations:
        return
    Violation.objects.filter(pk__in=[violation.pk for violation in violations]).update(
        status=Violation.Status.DISMISSED, dismissed_at=now, dismissed_reason=reason
    )
    for violation in violations:
        violation.status, violation.dismissed_at, violation.dismissed_reason = Violation.Status.DISMISSED, now, reason
    outcomes_dismissed(violations)
    bulk_insert(AuditEvent, [
        audit_row(actor=actor, verb="violation.dismissed", target=violation, case=case, account=case.account,
                  before={"status": "open"}, after={"status": "dismissed"}, note=reason)
        for violation in violations
    ])
