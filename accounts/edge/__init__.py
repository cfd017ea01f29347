"""The edge store the ingest path reads: each key's effective state, published on commit.

One record per key, found by the SHA-256 of its token, carrying its status, its per-key and
per-IP limits and its ``state_version``. A write carries the version it was read at and
never replaces a newer one (compare-and-set), so publishes may arrive late, twice, or out of
order. The database is the truth: ``rebuild()`` (``manage.py publish_key_states``) rewrites the
store from it, and a periodic task republishes recent changes in case a message was lost.

- ``store``: the interface every backend implements, the key record, the verdict and the bucket arithmetic
  (``decide``, ``bucket_used``: what ``lua/check.lua`` does inside Redis); the refusal windows the gate
  counts in (``refusal_windows``) and the sightings of server keys in web pages (``BrowserSighting``), which
  the store records and enforcement reads.
- ``redis_store``: ``RedisEdgeStore`` (``settings.EDGE_STORE_URL``, by default ``REDIS_URL``), its Lua scripts in
  ``lua/``; ``redis_cluster_store``: ``RedisClusterEdgeStore``, the same on Redis Cluster (``redis+cluster://``).
- ``sqlite_store``: ``SQLiteEdgeStore``, one SQLite file under ``VAR_DIR`` (the quick start, no Redis).
- ``current_store``: which of the two this process uses (``get_store``, ``use_store``).
- ``publishing``: from the database to the store (on commit, from the worker, the rebuild).

Callers import from here: ``from accounts import edge`` then ``edge.get_store()``, ``edge.publish_keys(...)``.
"""

from accounts.edge.current_store import get_store, use_store
from accounts.edge.publishing import (
    RebuildReport,
    publish_account_on_commit,
    publish_keys,
    publish_keys_on_commit,
    rebuild,
)
from accounts.edge.redis_cluster_store import RedisClusterEdgeStore
from accounts.edge.redis_store import RedisEdgeStore
from accounts.edge.sqlite_store import SQLiteEdgeStore
from accounts.edge.store import (
    NOT_BUILT,
    BrowserSighting,
    EdgeNotBuilt,
    EdgeStore,
    EdgeUnavailable,
    KeyRecord,
    RefusalWindows,
    Verdict,
    normalise_ip,
    refusal_windows,
)

__all__ = [
    "NOT_BUILT",
    "BrowserSighting",
    "EdgeNotBuilt",
    "EdgeStore",
    "EdgeUnavailable",
    "KeyRecord",
    "RebuildReport",
    "RedisClusterEdgeStore",
    "RedisEdgeStore",
    "RefusalWindows",
    "SQLiteEdgeStore",
    "Verdict",
    "get_store",
    "normalise_ip",
    "publish_account_on_commit",
    "publish_keys",
    "publish_keys_on_commit",
    "rebuild",
    "refusal_windows",
    "use_store",
]
