"""The edge store the ingest path reads: each key's effective state, published on commit.

One record per key, found by the SHA-256 of its token, carrying its status, its per-key and
per-IP limits and its ``state_version``. A write carries the version it was read at and
never replaces a newer one (compare-and-set), so publishes may arrive late, twice, or out of
order. The database is the truth: ``rebuild()`` (``manage.py publish_key_states``) rewrites the
store from it, and a periodic task republishes recent changes in case a message was lost.

Two backends behind one interface:

- ``RedisEdgeStore`` (when ``settings.REDIS_URL`` is set): a hash per key (``edge:key:<sha256>``:
  its state and its per-key bucket), a self-expiring string per (key, address) bucket, and an
  index from key prefix to token hash (so a key whose token hash changes leaves nothing stale).
  Publishing and the gate's decision are each one Lua script: a decision is one round trip (EVALSHA).
- ``SQLiteEdgeStore`` (the quick start, no Redis): one SQLite file under ``VAR_DIR`` in WAL
  mode. The web server, the worker and beat are separate processes and must all see the same
  store; the default local-memory cache is per process and the file cache cannot update
  atomically, while SQLite gives cross-process transactions (``BEGIN IMMEDIATE``) for free.

Rate limits are token buckets of ``limit`` requests refilled at ``limit`` per minute, kept as
the amount taken (``used``), clamped to the capacity. A lower limit (a throttle) therefore
bites at once, and a higher one (the throttle lifted) gives its headroom back at once.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.db import transaction

from accounts.models import APIKey, KeyStatus
from lib.queue import enqueue, enqueue_on_commit

log = logging.getLogger(__name__)

UNIT = 60_000  # one request, in "limit x milliseconds": a bucket refills `limit` units per millisecond
PUBLISH_CHUNK = 1000
REFUSED_STATUSES = (KeyStatus.SUSPENDED.value, KeyStatus.REVOKED.value)
RECORD_FIELDS = (
    "token_sha256", "prefix", "status", "rate_limit_per_minute", "ip_rate_limit_per_minute", "state_version"
)


class EdgeUnavailable(Exception):
    """The edge store cannot answer; the caller decides whether to fail open or closed."""


class EdgeNotBuilt(EdgeUnavailable):
    """The store lost its data and has not been rebuilt, so an unknown key proves nothing."""


@dataclass(frozen=True)
class KeyRecord:
    token_sha256: str
    prefix: str
    status: str
    rate_limit: int
    ip_rate_limit: int
    version: int

    @classmethod
    def from_row(cls, row: tuple) -> KeyRecord:
        sha, prefix, status, rate, ip_rate, version = row
        return cls(sha, prefix, status, int(rate), int(ip_rate), int(version))

    @classmethod
    def of(cls, key: APIKey) -> KeyRecord:
        return cls.from_row(tuple(getattr(key, name) for name in RECORD_FIELDS))


class Verdict(NamedTuple):
    """A decision as the store makes it (``accounts.gate.Decision`` is what callers see).

    A named tuple: it is made once per request on the hot path, and cheaply."""

    reason: str  # ok | throttled | rate_limited | suspended | revoked | unknown_key
    limit: int
    remaining: int
    retry_after_ms: int

    @property
    def allowed(self) -> bool:
        return self.reason in ("ok", "throttled")


@lru_cache(maxsize=65536)
def normalise_ip(ip: str) -> str:
    """The canonical text of an address (so ``::ffff:1.2.3.4``-style spellings share a bucket)."""
    address = ipaddress.ip_address(ip.strip())
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.compressed


# --------------------------------------------------------------------------- the bucket, in Python


def bucket_used(used: int, ts: int, limit: int, now: int) -> int:
    """What is still taken from a bucket at ``now`` (ms): refilled since ``ts``, clamped to capacity."""
    used = max(0, used - max(0, now - ts) * limit)
    return min(used, limit * UNIT)


def decide(
    status: str, limit: int, ip_limit: int, key_used: int, ip_used: int
) -> tuple[Verdict, bool]:
    """The gate's decision from a key's state and its two buckets (already refilled to now).

    Returns the verdict and whether one request is taken from both buckets. ``CHECK_LUA`` does
    the same arithmetic inside Redis; the tests run both backends through the same cases.
    """
    if status in REFUSED_STATUSES:
        return Verdict(status, 0, 0, 0), False
    waits = []
    for lim, used in ((limit, key_used), (ip_limit, ip_used)):
        if lim <= 0:
            waits.append((UNIT, lim))
        elif used + UNIT > lim * UNIT:
            waits.append((math.ceil((used + UNIT - lim * UNIT) / lim), lim))
        else:
            waits.append((0, lim))
    if any(wait for wait, _ in waits):
        wait, lim = max(waits, key=lambda w: w[0])
        return Verdict("rate_limited", lim, 0, wait), False
    key_left = (limit * UNIT - key_used - UNIT) // UNIT
    ip_left = (ip_limit * UNIT - ip_used - UNIT) // UNIT
    reason = "throttled" if status == KeyStatus.THROTTLED else "ok"
    if ip_left < key_left:
        return Verdict(reason, ip_limit, ip_left, 0), True
    return Verdict(reason, limit, key_left, 0), True


# --------------------------------------------------------------------------- the interface


class EdgeStore:
    """What every backend does. ``now_ms`` is for tests; by default the store's own clock is used."""

    def publish(self, records: Iterable[KeyRecord], *, force: bool = False) -> int:
        """Write records whose version is newer than the stored one (any version with ``force``).

        Returns how many were written."""
        raise NotImplementedError

    def get(self, token_sha256: str) -> KeyRecord | None:
        raise NotImplementedError

    def check(self, token_sha256: str, ip: str, *, now_ms: int | None = None) -> Verdict:
        raise NotImplementedError

    def stored_hashes(self) -> Iterator[list[str]]:
        """Every token hash in the store, in batches."""
        raise NotImplementedError

    def remove(self, hashes: list[str]) -> int:
        raise NotImplementedError

    def clear(self) -> None:
        """Forget everything (states, buckets, the built mark); a rebuild brings the states back."""
        raise NotImplementedError

    def mark_built(self) -> None:
        """Record that every key has been published (the end of a rebuild)."""
        raise NotImplementedError

    def is_built(self) -> bool:
        """False for a store that lost its data (a flush, a failover to an empty replica, a new file):
        then "unknown key" cannot be told from "not published yet", and the store says so."""
        raise NotImplementedError

    def ping(self) -> None:
        raise NotImplementedError


NOT_BUILT = "The edge store is empty or was flushed and has not been rebuilt: run manage.py publish_key_states."


# --------------------------------------------------------------------------- Redis

# KEYS: state hash (by token hash), prefix index. ARGV: version, status, limit, ip limit, prefix,
# token hash, namespace, force. The prefix index remembers which token hash a key was last
# published under, so a key whose token hash changed leaves no stale record behind.
# (The old record's name is computed in the script: a single Redis, not a cluster.)
PUBLISH_LUA = """
local version = tonumber(ARGV[1])
if ARGV[8] ~= '1' then
  local known = redis.call('HGET', KEYS[2], 'version')
  if known and tonumber(known) >= version then return 0 end
  known = redis.call('HGET', KEYS[1], 'version')
  if known and tonumber(known) >= version then return 0 end
end
local previous = redis.call('HGET', KEYS[2], 'sha')
if previous and previous ~= ARGV[6] then redis.call('DEL', ARGV[7] .. 'key:' .. previous) end
redis.call('HSET', KEYS[2], 'sha', ARGV[6], 'version', ARGV[1])
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'limit', ARGV[3], 'ip_limit', ARGV[4],
           'version', ARGV[1], 'prefix', ARGV[5])
return 1
"""

# KEYS: state hash, prefix index (found from the record). Drops a record and its index entry, unless the
# index has moved on to another token hash of the same key.
REMOVE_LUA = """
local prefix = redis.call('HGET', KEYS[1], 'prefix')
local removed = redis.call('DEL', KEYS[1])
if prefix then
  local index = ARGV[1] .. 'prefix:' .. prefix
  if redis.call('HGET', index, 'sha') == ARGV[2] then redis.call('DEL', index) end
end
return removed
"""

# KEYS: state hash, per-(key, IP) bucket, built mark. ARGV: now in ms, or '' for the server clock.
# The per-key bucket lives in the state hash itself (fields used, ts), the per-address one in a string
# "used:ts" that expires once full again: five commands in all. Mirrors ``decide`` and ``bucket_used``.
# Returns {reason, limit, remaining, retry_after_ms}.
CHECK_LUA = """
local state = redis.call('HMGET', KEYS[1], 'status', 'limit', 'ip_limit', 'used', 'ts')
local status = state[1]
if not status then
  if redis.call('EXISTS', KEYS[3]) == 0 then return {'not_built', 0, 0, 0} end
  return {'unknown_key', 0, 0, 0}
end
if status == 'suspended' or status == 'revoked' then return {status, 0, 0, 0} end
local UNIT = 60000
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local limit, ip_limit = tonumber(state[2]), tonumber(state[3])
local function refill(used, ts, lim)
  if not used then return 0, now end
  used = tonumber(used) - math.max(0, now - tonumber(ts)) * lim
  if used < 0 then used = 0 end
  if used > lim * UNIT then used = lim * UNIT end
  return used, math.max(tonumber(ts), now)
end
local key_used, key_ts = refill(state[4], state[5], limit)
local ip_used, ip_ts = 0, now
local ip_state = redis.call('GET', KEYS[2])
if ip_state then
  local used, ts = string.match(ip_state, '^(%d+):(%d+)$')
  ip_used, ip_ts = refill(used, ts, ip_limit)
end
local function wait_of(lim, used)
  if lim <= 0 then return UNIT end
  if used + UNIT > lim * UNIT then return math.ceil((used + UNIT - lim * UNIT) / lim) end
  return 0
end
local key_wait, ip_wait = wait_of(limit, key_used), wait_of(ip_limit, ip_used)
if key_wait > 0 or ip_wait > 0 then
  if ip_wait > key_wait then return {'rate_limited', ip_limit, 0, ip_wait} end
  return {'rate_limited', limit, 0, key_wait}
end
key_used, ip_used = key_used + UNIT, ip_used + UNIT
redis.call('HSET', KEYS[1], 'used', string.format('%.0f', key_used), 'ts', string.format('%.0f', key_ts))
redis.call('SET', KEYS[2], string.format('%.0f:%.0f', ip_used, ip_ts), 'PX', math.ceil(ip_used / ip_limit) + 1000)
local reason = 'ok'
if status == 'throttled' then reason = 'throttled' end
local key_left = math.floor((limit * UNIT - key_used) / UNIT)
local ip_left = math.floor((ip_limit * UNIT - ip_used) / UNIT)
if ip_left < key_left then return {reason, ip_limit, ip_left, 0} end
return {reason, limit, key_left, 0}
"""


class RedisEdgeStore(EdgeStore):
    def __init__(self, url: str, *, namespace: str = "edge:"):
        import redis

        self._redis_errors = (redis.RedisError, OSError)
        self._no_script = redis.exceptions.NoScriptError
        self.namespace = namespace
        self._built_key = f"{namespace}built"
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30)
        self._publish = self.client.register_script(PUBLISH_LUA)
        self._check = self.client.register_script(CHECK_LUA)
        self._remove = self.client.register_script(REMOVE_LUA)

    @contextmanager
    def _unavailable(self):
        try:
            yield
        except self._redis_errors as exc:
            raise EdgeUnavailable(f"Redis: {exc}") from exc

    def _state_key(self, sha: str) -> str:
        return f"{self.namespace}key:{sha}"

    def publish(self, records: Iterable[KeyRecord], *, force: bool = False) -> int:
        written = 0
        with self._unavailable():
            for chunk in _chunks(records, PUBLISH_CHUNK):
                pipe = self.client.pipeline(transaction=False)
                for r in chunk:
                    self._publish(
                        keys=[self._state_key(r.token_sha256), f"{self.namespace}prefix:{r.prefix}"],
                        args=[r.version, r.status, r.rate_limit, r.ip_rate_limit, r.prefix, r.token_sha256,
                              self.namespace, "1" if force else "0"],
                        client=pipe,
                    )
                written += sum(int(x) for x in pipe.execute())
        return written

    def get(self, token_sha256: str) -> KeyRecord | None:
        with self._unavailable():
            values = self.client.hmget(
                self._state_key(token_sha256), "prefix", "status", "limit", "ip_limit", "version"
            )
        if values[0] is None:
            return None
        prefix, status, *numbers = (v.decode() for v in values)
        return KeyRecord.from_row((token_sha256, prefix, status, *numbers))

    def check(self, token_sha256: str, ip: str, *, now_ms: int | None = None) -> Verdict:
        # The hot path: EVALSHA straight on the client (the script is loaded again only if Redis lost it).
        keys_and_args = (
            f"{self.namespace}key:{token_sha256}", f"{self.namespace}rl:{token_sha256}:{ip}", self._built_key,
            "" if now_ms is None else now_ms,
        )
        try:
            try:
                reason, limit, remaining, wait = self.client.evalsha(self._check.sha, 3, *keys_and_args)
            except self._no_script:
                reason, limit, remaining, wait = self._check(keys=keys_and_args[:3], args=keys_and_args[3:])
        except self._redis_errors as exc:
            raise EdgeUnavailable(f"Redis: {exc}") from exc
        if reason == b"not_built":
            raise EdgeNotBuilt(NOT_BUILT)
        return Verdict(reason.decode(), limit, remaining, wait)

    def stored_hashes(self) -> Iterator[list[str]]:
        start = len(self.namespace) + len("key:")
        with self._unavailable():
            names = self.client.scan_iter(match=f"{self.namespace}key:*", count=1000)
            for chunk in _chunks(names, 1000):
                yield [name.decode()[start:] for name in chunk]

    def remove(self, hashes: list[str]) -> int:
        """Drop the records of keys that no longer exist, with their prefix index entries."""
        if not hashes:
            return 0
        with self._unavailable():
            pipe = self.client.pipeline(transaction=False)
            for sha in hashes:
                self._remove(keys=[self._state_key(sha)], args=[self.namespace, sha], client=pipe)
            return sum(int(x) for x in pipe.execute())

    def clear(self) -> None:
        with self._unavailable():
            for chunk in _chunks(self.client.scan_iter(match=f"{self.namespace}*", count=1000), 1000):
                self.client.unlink(*chunk)

    def mark_built(self) -> None:
        with self._unavailable():
            self.client.set(self._built_key, str(int(time.time())))

    def is_built(self) -> bool:
        with self._unavailable():
            return bool(self.client.exists(self._built_key))

    def ping(self) -> None:
        with self._unavailable():
            self.client.ping()


# --------------------------------------------------------------------------- SQLite (embedded)

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS key_state (
    sha TEXT PRIMARY KEY, prefix TEXT NOT NULL, status TEXT NOT NULL,
    rate_limit INTEGER NOT NULL, ip_rate_limit INTEGER NOT NULL, version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS key_state_prefix ON key_state (prefix);
CREATE TABLE IF NOT EXISTS bucket (name TEXT PRIMARY KEY, used INTEGER NOT NULL, ts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SQLiteEdgeStore(EdgeStore):
    """One file shared by every process; each write is its own ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=20, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SQLITE_SCHEMA)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _write(self, work: Callable[[sqlite3.Connection], object]):
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result
        except sqlite3.Error as exc:
            raise EdgeUnavailable(f"SQLite edge store {self.path}: {exc}") from exc

    def publish(self, records: Iterable[KeyRecord], *, force: bool = False) -> int:
        def write(conn, chunk) -> int:
            written = 0
            for r in chunk:
                if not force:
                    known = conn.execute(
                        "SELECT MAX(version) FROM key_state WHERE sha = ? OR prefix = ?", (r.token_sha256, r.prefix)
                    ).fetchone()[0]
                    if known is not None and known >= r.version:
                        continue
                conn.execute("DELETE FROM key_state WHERE prefix = ? AND sha <> ?", (r.prefix, r.token_sha256))
                conn.execute(
                    "INSERT OR REPLACE INTO key_state VALUES (?, ?, ?, ?, ?, ?)",
                    (r.token_sha256, r.prefix, r.status, r.rate_limit, r.ip_rate_limit, r.version),
                )
                written += 1
            return written

        return sum(self._write(lambda conn, c=chunk: write(conn, c)) for chunk in _chunks(records, PUBLISH_CHUNK))

    def get(self, token_sha256: str) -> KeyRecord | None:
        try:
            row = self._conn().execute(
                "SELECT sha, prefix, status, rate_limit, ip_rate_limit, version FROM key_state WHERE sha = ?",
                (token_sha256,),
            ).fetchone()
        except sqlite3.Error as exc:
            raise EdgeUnavailable(f"SQLite edge store {self.path}: {exc}") from exc
        return KeyRecord.from_row(row) if row else None

    def check(self, token_sha256: str, ip: str, *, now_ms: int | None = None) -> Verdict:
        # Refusals read only; only a request that may pass takes the write lock.
        record = self.get(token_sha256)
        if record is None:
            if not self.is_built():
                raise EdgeNotBuilt(NOT_BUILT)
            return Verdict("unknown_key", 0, 0, 0)
        if record.status in REFUSED_STATUSES:
            return Verdict(record.status, 0, 0, 0)
        now = int(time.time() * 1000) if now_ms is None else now_ms
        key_bucket, ip_bucket = f"rl:{token_sha256}", f"rl:{token_sha256}:{ip}"

        def work(conn) -> Verdict:
            row = conn.execute(
                "SELECT status, rate_limit, ip_rate_limit FROM key_state WHERE sha = ?", (token_sha256,)
            ).fetchone()
            if row is None:
                return Verdict("unknown_key", 0, 0, 0)
            status, limit, ip_limit = row
            stored = dict.fromkeys((key_bucket, ip_bucket), (0, now))
            for name, used, ts in conn.execute(
                "SELECT name, used, ts FROM bucket WHERE name IN (?, ?)", (key_bucket, ip_bucket)
            ):
                stored[name] = (used, ts)
            key_used = bucket_used(*stored[key_bucket], limit, now)
            ip_used = bucket_used(*stored[ip_bucket], ip_limit, now)
            verdict, take = decide(status, limit, ip_limit, key_used, ip_used)
            if take:
                conn.executemany(
                    "INSERT OR REPLACE INTO bucket VALUES (?, ?, ?)",
                    [(key_bucket, key_used + UNIT, max(stored[key_bucket][1], now)),
                     (ip_bucket, ip_used + UNIT, max(stored[ip_bucket][1], now))],
                )
            if random.random() < 0.001:
                # A bucket untouched for a minute is full again: the same as no row at all.
                conn.execute("DELETE FROM bucket WHERE ts < ?", (now - UNIT,))
            return verdict

        return self._write(work)

    def stored_hashes(self) -> Iterator[list[str]]:
        last = ""
        while True:
            rows = self._conn().execute(
                "SELECT sha FROM key_state WHERE sha > ? ORDER BY sha LIMIT 1000", (last,)
            ).fetchall()
            if not rows:
                return
            batch = [sha for (sha,) in rows]
            last = batch[-1]
            yield batch

    def remove(self, hashes: list[str]) -> int:
        def work(conn) -> int:
            return conn.executemany("DELETE FROM key_state WHERE sha = ?", [(h,) for h in hashes]).rowcount

        return self._write(work) if hashes else 0

    def clear(self) -> None:
        self._write(lambda conn: [conn.execute(f"DELETE FROM {table}") for table in ("key_state", "bucket", "meta")])

    def mark_built(self) -> None:
        self._write(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO meta VALUES ('built', ?)", (str(int(time.time())),)
        ))

    def is_built(self) -> bool:
        try:
            return self._conn().execute("SELECT 1 FROM meta WHERE name = 'built'").fetchone() is not None
        except sqlite3.Error as exc:
            raise EdgeUnavailable(f"SQLite edge store {self.path}: {exc}") from exc

    def ping(self) -> None:
        self.get("0" * 64)


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


# --------------------------------------------------------------------------- which store

_store: EdgeStore | None = None
_store_config: tuple | None = None
_override: EdgeStore | None = None
_lock = threading.Lock()


def get_store() -> EdgeStore:
    """The process's store: Redis when ``REDIS_URL`` is set, else the SQLite file in ``VAR_DIR``."""
    global _store, _store_config
    if _override is not None:
        return _override
    config = (settings.REDIS_URL, str(settings.VAR_DIR))
    if _store is None or _store_config != config:
        with _lock:
            if settings.REDIS_URL:
                _store = RedisEdgeStore(settings.REDIS_URL)
            else:
                _store = SQLiteEdgeStore(Path(settings.VAR_DIR) / "edge.sqlite3")
            _store_config = config
    return _store


def use_store(store: EdgeStore | None) -> None:
    """Point this process at another store (tests, benchmarks); None goes back to the default."""
    global _override
    _override = store


# --------------------------------------------------------------------------- publishing from the database


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
    from accounts import tasks

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
