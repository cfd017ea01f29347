"""The periodic sweep: recovers lost work (actions and emails whose message was lost), expires what is due
and escalates warnings whose remediation deadline passed."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from enforcement import ladder, notifications
from enforcement.actors import SYSTEM
from enforcement.audit import audit_record
from enforcement.models import ActionKind, ActionStatus, Case, EnforcementAction
from enforcement.services.actions import APPLY_TASK, action_expire, action_propose_locked, covering_action
from enforcement.services.detectors import detectors_recheck
from enforcement.services.locks import lock_action
from lib import queue

SEND_TASK = "enforcement.tasks.send_notification"


def _overdue_warnings(now: datetime):
    return EnforcementAction.objects.filter(
        kind=ActionKind.WARNING, status=ActionStatus.APPLIED, escalated_at__isnull=True, remediation_deadline__lte=now
    ).exclude(case__status=Case.Status.CLOSED).values_list("pk", flat=True)


def escalate_overdue_warnings(*, now: datetime | None = None) -> list[EnforcementAction]:
    """A warning whose remediation deadline passed with the case still open climbs one rung."""
    now = now or timezone.now()
    escalated = []
    for warning_id in list(_overdue_warnings(now)):
        action = _escalate_warning(warning_id, now)
        if action is not None:
            escalated.append(action)
    return escalated


@transaction.atomic
def _escalate_warning(warning_id: int, now: datetime) -> EnforcementAction | None:
    warning = lock_action(warning_id)
    if warning.escalated_at is not None or warning.status != ActionStatus.APPLIED:
        return None
    case = warning.case
    warning.escalated_at = now
    warning.save(update_fields=["escalated_at", "updated_at"])
    if case.status == Case.Status.CLOSED:
        return None
    audit_record(actor=SYSTEM, verb="action.escalated", target=warning, case=case, account=case.account,
                 note="remediation deadline passed with the case unresolved")
    kind = ladder.next_rung(ActionKind.WARNING)
    if covering_action(case=case, kind=kind) is not None:
        return None
    return action_propose_locked(
        actor=SYSTEM, case=case, kind=kind,
        reason=f"Warning #{warning.pk} passed its remediation deadline unresolved -> {kind}",
    )


@dataclass
class SweepReport:
    requeued_actions: list[int]
    expired_actions: list[int]
    escalated_actions: list[int]
    requeued_notifications: list[int]
    restored_sources: list[str] = field(default_factory=list)  # detectors whose precision recovered


def sweep(*, now: datetime | None = None, dry_run: bool = False) -> SweepReport:
    """Recover lost work: re-enqueue due actions and emails, expire and escalate what is due."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.ENFORCEMENT["SWEEP_GRACE_SECONDS"])
    stuck = list(
        EnforcementAction.objects.filter(status=ActionStatus.SCHEDULED, scheduled_at__lte=now - grace)
        .values_list("pk", flat=True)
    )
    expiring = list(
        EnforcementAction.objects.filter(status=ActionStatus.APPLIED, expires_at__lte=now).values_list("pk", flat=True)
    )
    pending_mail = notifications.stuck_ids(now=now, grace=grace)
    if dry_run:
        return SweepReport(stuck, expiring, list(_overdue_warnings(now)), pending_mail)
    for action_id in stuck:
        queue.enqueue(APPLY_TASK, action_id)
    for action_id in expiring:
        action_expire(action_id=action_id, now=now)
    escalated = [action.pk for action in escalate_overdue_warnings(now=now)]
    for notification_id in pending_mail:
        queue.enqueue(SEND_TASK, notification_id)
    return SweepReport(stuck, expiring, escalated, pending_mail, detectors_recheck())
