"""The store this process uses: ``EDGE_STORE_URL`` (by default ``REDIS_URL``) names a Redis, or with
``redis+cluster://`` a Redis Cluster; without either, the SQLite file in ``VAR_DIR``."""

from __future__ import annotations

import threading
from pathlib import Path

from django.conf import settings

from accounts.edge.redis_cluster_store import RedisClusterEdgeStore, is_cluster_url
from accounts.edge.redis_store import RedisEdgeStore
from accounts.edge.sqlite_store import SQLiteEdgeStore
from accounts.edge.store import EdgeStore

_store: EdgeStore | None = None
_store_config: tuple | None = None
_override: EdgeStore | None = None
_lock = threading.Lock()


def get_store() -> EdgeStore:
    """The process's store, made again when the settings it was made from change."""
    global _store, _store_config
    if _override is not None:
        return _override
    url = settings.EDGE_STORE_URL
    config = (url, str(settings.VAR_DIR))
    if _store is None or _store_config != config:
        with _lock:
            if is_cluster_url(url):
                _store = RedisClusterEdgeStore(url)
            elif url:
                _store = RedisEdgeStore(url)
            else:
                _store = SQLiteEdgeStore(Path(settings.VAR_DIR) / "edge.sqlite3")
            _store_config = config
    return _store


def use_store(store: EdgeStore | None) -> None:
    """Point this process at another store (tests, benchmarks); None goes back to the default."""
    global _override
    _override = store
