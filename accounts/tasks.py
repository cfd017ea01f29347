"""Publishing key states to the edge store, from the worker.

Each task reads the keys' current state from the database and writes it with compare-and-set
on ``state_version``, so running one twice, late, or out of order changes nothing it should not.
A lost message is covered by ``republish_key_states`` (beat): recent changes every minute, and a
full rebuild from time to time.
"""

import logging
import time
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from accounts import edge

log = logging.getLogger(__name__)

_RETRY = {
    "autoretry_for": (edge.EdgeUnavailable,),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "max_retries": 10,
    "acks_late": True,
}


@shared_task(**_RETRY)
def publish_account_key_states(account_id: int) -> int:
    return edge.publish_keys(account_id=account_id)


@shared_task(**_RETRY)
def publish_key_states(key_ids: list[int]) -> int:
    return edge.publish_keys(key_ids=key_ids)


@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1900, expires=60)
def rebuild_edge_store_if_lost() -> dict | None:
    """Every ``EDGE_REBUILD_CHECK_SECONDS``: a store that lost its data (flushed, failed over to an empty
    replica) answers 503 for every key until rebuilt, so rebuild it at once, and log how long it took."""
    store = edge.get_store()
    if store.is_built():
        return None
    started = time.monotonic()
    log.warning("the edge store is empty or was flushed: rebuilding it from the database")
    report = edge.rebuild()
    log.warning("edge store rebuilt in %.1f s: %d published, %d removed", time.monotonic() - started,
                report.published, report.removed)
    return {"published": report.published, "removed": report.removed, "seconds": time.monotonic() - started}


@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1900)
def republish_key_states(window_seconds: int | None = 900) -> dict:
    """Republish keys changed within the window (``None``: every key, and drop records of deleted keys).

    A store that lost its data (flushed, failed over to an empty replica) is rebuilt whole, whatever the window.
    """
    if window_seconds is not None and not edge.get_store().is_built():
        log.warning("the edge store is empty or was flushed: rebuilding it from the database")
        window_seconds = None
    if window_seconds is None:
        report = edge.rebuild()
        return {"published": report.published, "unchanged": report.unchanged, "removed": report.removed}
    published = edge.publish_keys(changed_since=timezone.now() - timedelta(seconds=window_seconds))
    if published:
        log.warning("republished %d key state(s) newer than the edge store's", published)
    return {"published": published}
