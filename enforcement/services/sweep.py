"""The periodic sweep: recovers lost work (actions and emails whose message was lost), expires what is due
and escalates warnings whose remediation deadline passed.

It keeps up at any backlog: one run at a time (a PostgreSQL advisory lock; a file lock under ``VAR_DIR``
elsewhere), at most ``SWEEP_BATCH_SIZE`` actions of each kind per run, earliest due first, handed to tasks
``SWEEP_CHUNK_SIZE`` ids a message (the sweep itself only reads ids and sends). Each action handed over is
stamped ``requeued_at`` and not sent again for ``SWEEP_REQUEUE_BACKOFF_SECONDS``, so a backlog the workers
are still working through is not sent again every minute, and a message lost again is still sent once more."""

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from enforcement import ladder, notifications
from enforcement.actors import SYSTEM
from enforcement.audit import audit_record
from enforcement.models import ActionKind, ActionStatus, Case, EnforcementAction
from enforcement.services.actions import action_propose_locked, covering_action
from enforcement.services.detectors import detectors_recheck
from enforcement.services.locks import lock_action
from lib import queue

SEND_TASK = "enforcement.tasks.send_notification"
APPLY_CHUNK_TASK = "enforcement.tasks.apply_actions"
EXPIRE_CHUNK_TASK = "enforcement.tasks.expire_actions"
# pg_try_advisory_lock's key for the sweep: any constant no other lock in the database uses.
SWEEP_LOCK_KEY = 0x6D6D_7377  # "mmsw"

log = logging.getLogger(__name__)


def _overdue_warnings(now: datetime, limit: int | None = None) -> list[int]:
    ids = EnforcementAction.objects.filter(
        kind=ActionKind.WARNING, status=ActionStatus.APPLIED, escalated_at__isnull=True, remediation_deadline__lte=now
    ).exclude(case__status=Case.Status.CLOSED).order_by("remediation_deadline", "pk").values_list("pk", flat=True)
    return list(ids[:limit] if limit is not None else ids)


def escalate_overdue_warnings(*, now: datetime | None = None, limit: int | None = None) -> list[EnforcementAction]:
    """A warning whose remediation deadline passed with the case still open climbs one rung (the ``limit``
    earliest past their deadline)."""
    now = now or timezone.now()
    escalated = []
    for warning_id in _overdue_warnings(now, limit):
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
    # True when another sweep held the lock: this one did nothing.
    skipped: bool = field(default=False)


@contextlib.contextmanager
def sweep_lock() -> Iterator[bool]:
    """Hold the sweep's lock for the block, without waiting: yields False when another sweep holds it.

    On PostgreSQL a session-level advisory lock (released at the end, or by the server if the process dies);
    elsewhere an exclusive ``flock`` on ``VAR_DIR/sweep.lock`` (released when the file closes)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [SWEEP_LOCK_KEY])
            held = cursor.fetchone()[0]
        try:
            yield held
        finally:
            if held:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [SWEEP_LOCK_KEY])
        return
    path = settings.VAR_DIR / "sweep.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _not_handed_over_since(due_field: str, now: datetime):
    """Never handed to a task since it fell due (``due_field``), or handed over longer ago than the back-off."""
    backoff = timedelta(seconds=settings.ENFORCEMENT["SWEEP_REQUEUE_BACKOFF_SECONDS"])
    return Q(requeued_at__isnull=True) | Q(requeued_at__lt=F(due_field)) | Q(requeued_at__lte=now - backoff)


def _stuck_actions(now: datetime, limit: int) -> list[int]:
    """Scheduled actions not applied within the grace: their message was lost (or is still queued)."""
    grace = timedelta(seconds=settings.ENFORCEMENT["SWEEP_GRACE_SECONDS"])
    return list(
        EnforcementAction.objects.filter(status=ActionStatus.SCHEDULED, scheduled_at__lte=now - grace)
        .filter(_not_handed_over_since("scheduled_at", now))
        .order_by("scheduled_at", "pk").values_list("pk", flat=True)[:limit]
    )


def _expiring_actions(now: datetime, limit: int) -> list[int]:
    return list(
        EnforcementAction.objects.filter(status=ActionStatus.APPLIED, expires_at__lte=now)
        .filter(_not_handed_over_since("expires_at", now))
        .order_by("expires_at", "pk").values_list("pk", flat=True)[:limit]
    )


def _hand_over(task: str, ids: list[int], now: datetime, *extra) -> list[int]:
    """Send ``ids`` to ``task`` a chunk a message and stamp each chunk sent; returns the ids sent.

    Stamped after the send: a chunk the broker refused stays unstamped for the next run, and a stamp that
    failed after a send only means the ids may be sent once more (the tasks are idempotent)."""
    size = settings.ENFORCEMENT["SWEEP_CHUNK_SIZE"]
    sent = []
    for start in range(0, len(ids), size):
        chunk = ids[start:start + size]
        if not queue.enqueue(task, chunk, *extra):
            continue
        EnforcementAction.objects.filter(pk__in=chunk).update(requeued_at=now)
        sent.extend(chunk)
    return sent


def sweep(*, now: datetime | None = None, dry_run: bool = False) -> SweepReport:
    """Recover lost work: re-enqueue due actions and emails, expire and escalate what is due.

    At most one run at a time: a run that finds another one running does nothing (``skipped``)."""
    now = now or timezone.now()
    with sweep_lock() as held:
        if not held:
            log.info("another sweep is running; this one does nothing")
            return SweepReport([], [], [], [], skipped=True)
        return _sweep(now, dry_run)


def _sweep(now: datetime, dry_run: bool) -> SweepReport:
    grace = timedelta(seconds=settings.ENFORCEMENT["SWEEP_GRACE_SECONDS"])
    batch = settings.ENFORCEMENT["SWEEP_BATCH_SIZE"]
    stuck = _stuck_actions(now, batch)
    expiring = _expiring_actions(now, batch)
    pending_mail = notifications.stuck_ids(now=now, grace=grace)
    # Escalation proposes an action per warning here, in the sweep: a chunk's worth a run (warnings are few).
    escalation_limit = min(batch, settings.ENFORCEMENT["SWEEP_CHUNK_SIZE"])
    if dry_run:
        return SweepReport(stuck, expiring, _overdue_warnings(now, escalation_limit), pending_mail)
    requeued = _hand_over(APPLY_CHUNK_TASK, stuck, now)
    expired = _hand_over(EXPIRE_CHUNK_TASK, expiring, now, now.isoformat())
    escalated = [action.pk for action in escalate_overdue_warnings(now=now, limit=escalation_limit)]
    for notification_id in pending_mail:
        queue.enqueue(SEND_TASK, notification_id)
    return SweepReport(requeued, expired, escalated, pending_mail, detectors_recheck())
