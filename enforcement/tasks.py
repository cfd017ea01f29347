"""Celery is one more way in: each task takes an id, loads, and calls a service.

Tasks are idempotent (the services return early when there is nothing to do), acknowledged
late, retried with backoff, and enqueued on commit. A lost message is found by the sweep.
"""

import logging
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from accounts import edge
from enforcement import notifications, services, tokens
from enforcement.actors import Actor
from enforcement.errors import NotFound
from lib import queue

log = logging.getLogger(__name__)


def _backoff(retries: int) -> int:
    return min(2 ** retries * 5, 600)


@shared_task(bind=True, acks_late=True, max_retries=None, soft_time_limit=60, time_limit=90)
def apply_action(self, action_id: int) -> str:
    max_retries = settings.ENFORCEMENT["APPLY_MAX_RETRIES"]
    try:
        action = services.action_apply(action_id=action_id)
    except NotFound:
        return "missing"
    except Exception as exc:
        final = self.request.retries >= max_retries
        log.warning("applying action %s failed (try %s): %s", action_id, self.request.retries + 1, exc)
        services.action_record_failure(action_id=action_id, error=f"{type(exc).__name__}: {exc}", final=final)
        if final:
            return "failed"
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc
    return action.status


@shared_task(bind=True, acks_late=True, max_retries=None, soft_time_limit=60, time_limit=90)
def send_notification(self, notification_id: int) -> str:
    """Send one email. After a passing failure, try again when its backoff ends (the notice's own retry
    window decides when to stop; the sweep also sends notices whose retry message was lost)."""
    try:
        notification = notifications.notification_send(notification_id=notification_id)
    except notifications.SendDeferred as exc:
        countdown = max(1, int((exc.retry_at - timezone.now()).total_seconds()) + 1)
        raise self.retry(exc=exc, countdown=countdown) from exc
    return notification.status if notification else "skipped"


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def apply_actions(action_ids: list[int]) -> dict:
    """A chunk of scheduled actions the sweep found unapplied (their message lost or still queued): apply each.
    One that fails goes on alone through ``apply_action``, with its retries and its failure record."""
    outcome = {"done": 0, "missing": 0, "handed_on": 0}
    for action_id in action_ids:
        try:
            services.action_apply(action_id=action_id)
        except NotFound:
            outcome["missing"] += 1
            continue
        except Exception as exc:
            log.warning("applying action %s from the sweep failed: %s; it goes on alone", action_id, exc)
            queue.enqueue(apply_action, action_id)
            outcome["handed_on"] += 1
            continue
        outcome["done"] += 1  # applied now, or nothing to do (already applied, cancelled ...)
    return outcome


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def expire_actions(action_ids: list[int], as_of: str | None = None) -> dict:
    """A chunk of applied actions whose expiry passed by ``as_of`` (the sweep's time, ISO 8601; now if None):
    lift each (one that fails is left to a later sweep)."""
    now = datetime.fromisoformat(as_of) if as_of else None
    outcome = {"done": 0, "missing": 0, "failed": 0}
    for action_id in action_ids:
        try:
            services.action_expire(action_id=action_id, now=now)
        except NotFound:
            outcome["missing"] += 1
            continue
        except Exception:
            log.exception("expiring action %s failed; a later sweep tries again", action_id)
            outcome["failed"] += 1
            continue
        outcome["done"] += 1  # expired now, or nothing to do (not due, already lifted ...)
    return outcome


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def sweep() -> dict:
    report = services.sweep()
    return {
        "skipped": report.skipped,
        "requeued_actions": len(report.requeued_actions),
        "expired_actions": len(report.expired_actions),
        "escalated_actions": len(report.escalated_actions),
        "requeued_notifications": len(report.requeued_notifications),
        "restored_sources": len(report.restored_sources),
    }


@shared_task(acks_late=True, soft_time_limit=540, time_limit=600, expires=300)
def metrics_rollup() -> int:
    """The metrics' daily roll-up, every ``METRICS_ROLLUP_INTERVAL_SECONDS``: yesterday and today again (or, the
    first time, every day with data); idempotent, so a late, repeated or skipped run is harmless."""
    return len(services.metrics_rollup())


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def record_token_use() -> int:
    """When each service token was last used: noted in the cache per request, written here once a minute."""
    return tokens.record_token_use()


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300, expires=60)
def report_edge_findings() -> dict:
    """What the gate counted and saw (sustained refusals, server keys in web pages), reported under the source
    ``gate``; every ``EDGE_DETECTOR_INTERVAL_SECONDS``. A run that fails or is skipped is caught up by the next."""
    try:
        findings = services.edge_findings_report(actor=Actor.system(services.GATE_SOURCE))
    except edge.EdgeUnavailable as exc:
        log.warning("the edge's findings could not be read: %s", exc)
        return {"error": str(exc)}
    return {"reported": len(findings.reported), "known": findings.known, "failed": findings.failed}
