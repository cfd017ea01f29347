"""Publishing key states from the database to the edge store: on commit, from the worker, and the rebuild.

A write carries the ``state_version`` it was read at and never replaces a newer one (compare-and-set),
so publishes may arrive late, twice, or out of order. The database is the truth: ``rebuild()``
(``manage.py publish_key_states``) rewrites the store from it, and a periodic task republishes recent
changes in case a message was lost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from accounts.edge.current_store import get_store
from accounts.edge.store import RECORD_FIELDS, EdgeUnavailable, KeyRecord
from accounts.models import APIKey
from lib.queue import enqueue, enqueue_on_commit

log = logging.getLogger(__name__)


def _records(queryset, *, batch: int = 2000) -> Iterator[KeyRecord]:
    """Keyset pagination by primary key: no server-side cursor, one short query per batch."""
    last = 0
    while True:
        rows = list(queryset.filter(pk__gt=last).order_by("pk").values_list("pk", *RECORD_FIELDS)[:batch])
        for row in rows:
            yield KeyRecord.from_row(row[1:])
        if len(rows) < batch:
            return
        last = rows[-1][0]


def publish_keys(
    *,
    key_ids: Iterable[int] | None = None,
    account_id: int | None = None,
    changed_since: datetime | None = None,
    force: bool = False,
) -> int:
    """Publish keys' current state from the database; returns how many records were newer than the store's."""
    keys = APIKey.objects.all()
    if account_id is not None:
        keys = keys.filter(account_id=account_id)
    if key_ids is not None:
        keys = keys.filter(pk__in=list(key_ids))
    if changed_since is not None:
        keys = keys.filter(updated_at__gte=changed_since)
    return get_store().publish(_records(keys), force=force)


def publish_account_on_commit(account_id: int) -> None:
    """After commit, publish every key of an account, from a task: an account may have thousands of keys,
    and the transaction that changed them should not wait on the edge."""
    from accounts import tasks  # the tasks call this module's functions: imported when first needed

    enqueue_on_commit(tasks.publish_account_key_states, account_id)


def publish_keys_on_commit(key_ids: list[int]) -> None:
    """After commit, publish a few keys at once (a new key, a revoked one); if the store is down, leave it
    to a task with retries."""

    def publish() -> None:
        try:
            publish_keys(key_ids=key_ids)
        except EdgeUnavailable as exc:
            from accounts import tasks

            log.warning("publishing keys %s failed (%s); handing over to the worker", key_ids, exc)
            enqueue(tasks.publish_key_states, list(key_ids))

    transaction.on_commit(publish)


@dataclass
class RebuildReport:
    published: int
    unchanged: int
    removed: int


def rebuild(*, force: bool = False) -> RebuildReport:
    """Make the store agree with the database: publish every key, then drop records of keys that are gone.

    Without ``force`` a record newer than the database's is kept (it cannot normally exist);
    with ``force`` the database's version wins whatever the store holds (after restoring a backup).
    """
    store = get_store()
    total = APIKey.objects.count()
    published = store.publish(_records(APIKey.objects.all()), force=force)
    removed = 0
    for batch in store.stored_hashes():
        known = set(APIKey.objects.filter(token_sha256__in=batch).values_list("token_sha256", flat=True))
        removed += store.remove([sha for sha in batch if sha not in known])
    store.mark_built()
    return RebuildReport(published=published, unchanged=max(0, total - published), removed=removed)
