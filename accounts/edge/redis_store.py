"""The Redis edge store (``settings.EDGE_STORE_URL``, by default ``REDIS_URL``).

A hash per key (``edge:key:<sha256>``: its state and its per-key bucket), a self-expiring string per
(key, address) bucket, and an index from key prefix to token hash (so a key whose token hash changes
leaves nothing stale). Publishing and the gate's decision are each one Lua script (``lua/*.lua``,
read when this module is imported): a decision is one round trip (EVALSHA), counting included.

The detector's counters, written by ``lua/check.lua`` and expiring by themselves: a hash per window of each
key's refusals (``edge:refusals:<window start ms>``: token hash -> count), a sorted set per key and window of
the addresses refused most (``edge:refusals:<start>:<sha256>``), a hash per key of the web origins it was
presented from (``edge:origins:<sha256>``: origin -> ``first:last:requests``), and the set of those keys
(``edge:exposed``).

Every name a key's scripts touch starts with that key's namespace (``key_namespace``): the store's own on a
single Redis; on Redis Cluster (``redis_cluster_store``) the same plus a hash tag, so that a decision stays one
script on one slot.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from accounts.edge.store import (
    NOT_BUILT,
    ORIGINS_PER_KEY,
    PUBLISH_CHUNK,
    SIGHTING_TTL_MS,
    TOP_ADDRESSES,
    BrowserSighting,
    EdgeNotBuilt,
    EdgeStore,
    EdgeUnavailable,
    KeyRecord,
    Verdict,
    chunks,
    refusal_windows,
)

LUA_DIR = Path(__file__).resolve().parent / "lua"


def read_lua(name: str) -> str:
    """A script of ``lua/``, found beside this file wherever the package is installed."""
    return (LUA_DIR / f"{name}.lua").read_text(encoding="utf-8")


PUBLISH_LUA = read_lua("publish")
REMOVE_LUA = read_lua("remove")
CHECK_LUA = read_lua("check")
FORGET_SIGHTINGS_LUA = read_lua("forget_sightings")


@lru_cache(maxsize=64)
def counting_spec(length_ms: int, retention_ms: int, namespace: str) -> bytes:
    """``check.lua``'s counting argument, made once per setting (bytes: redis-py sends them as they are)."""
    return f"{length_ms}:{retention_ms}:{TOP_ADDRESSES}:{ORIGINS_PER_KEY}:{SIGHTING_TTL_MS}:{namespace}".encode()


class RedisEdgeStore(EdgeStore):
    def __init__(self, url: str, *, namespace: str = "edge:"):
        import redis

        self._redis_errors = (redis.RedisError, OSError)
        self._no_script = redis.exceptions.NoScriptError
        self.url = url
        self.namespace = namespace
        self._built_key = f"{namespace}built"
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30)
        self._register_scripts()

    def _register_scripts(self) -> None:
        self._publish = self.client.register_script(PUBLISH_LUA)
        self._check = self.client.register_script(CHECK_LUA)
        self._remove = self.client.register_script(REMOVE_LUA)
        self._forget_sightings = self.client.register_script(FORGET_SIGHTINGS_LUA)

    @contextmanager
    def _unavailable(self):
        try:
            yield
        except self._redis_errors as exc:
            raise EdgeUnavailable(f"Redis: {exc}") from exc

    def key_namespace(self, sha: str) -> str:
        """The start of every name that belongs to a key (its state, buckets, counters, origins)."""
        return self.namespace

    def _state_key(self, sha: str) -> str:
        return f"{self.key_namespace(sha)}key:{sha}"

    def publish(self, records: Iterable[KeyRecord], *, force: bool = False) -> int:
        written = 0
        with self._unavailable():
            for chunk in chunks(records, PUBLISH_CHUNK):
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

    STATE_FIELDS = ("prefix", "status", "limit", "ip_limit", "version")

    def get(self, token_sha256: str) -> KeyRecord | None:
        with self._unavailable():
            values = self.client.hmget(self._state_key(token_sha256), *self.STATE_FIELDS)
        return self._record(token_sha256, values)

    def get_many(self, hashes: list[str]) -> dict[str, KeyRecord | None]:
        found: dict[str, KeyRecord | None] = {}
        with self._unavailable():
            for chunk in chunks(hashes, PUBLISH_CHUNK):  # one pipelined round trip per chunk
                pipe = self.client.pipeline(transaction=False)
                for sha in chunk:
                    pipe.hmget(self._state_key(sha), *self.STATE_FIELDS)
                found.update((sha, self._record(sha, values)) for sha, values in zip(chunk, pipe.execute(),
                                                                                     strict=True))
        return found

    @staticmethod
    def _record(token_sha256: str, values: list) -> KeyRecord | None:
        if values[0] is None:
            return None
        prefix, status, *numbers = (v.decode() for v in values)
        return KeyRecord.from_row((token_sha256, prefix, status, *numbers))

    def check(
        self, token_sha256: str, ip: str, *, now_ms: int | None = None, origin: str | None = None,
        refuse_origin: bool = False,
    ) -> Verdict:
        # The hot path: EVALSHA straight on the client (the script is loaded again only if Redis lost it).
        windows = refusal_windows()
        ns = self.key_namespace(token_sha256)
        keys_and_args = (
            f"{ns}key:{token_sha256}", f"{ns}rl:{token_sha256}:{ip}", f"{ns}built",
            "" if now_ms is None else now_ms, self._counting_spec(windows, ns),
        )
        if origin is not None:
            keys_and_args += (origin, "1" if refuse_origin else "0")
        try:
            try:
                answer = self._evalsha_check(keys_and_args)
            except self._no_script:
                answer = self._check(keys=keys_and_args[:3], args=keys_and_args[3:])
        except self._redis_errors as exc:
            raise EdgeUnavailable(f"Redis: {exc}") from exc
        reason, limit, remaining, wait = answer.split(b":")
        if reason == b"not_built":
            raise EdgeNotBuilt(NOT_BUILT)
        return Verdict(reason.decode(), int(limit), int(remaining), int(wait))

    def _evalsha_check(self, keys_and_args: tuple):
        return self.client.evalsha(self._check.sha, 3, *keys_and_args)

    def _counting_spec(self, windows, ns: str) -> bytes:
        return counting_spec(windows.length_ms, windows.retention_ms, ns)

    def _refusals_key(self, window_start_ms: int, ns: str | None = None) -> str:
        return f"{ns or self.namespace}refusals:{window_start_ms}"

    def refusal_counts(self, window_start_ms: int, *, hashes: list[str] | None = None) -> dict[str, int]:
        name = self._refusals_key(window_start_ms)
        with self._unavailable():
            if hashes is None:
                return {sha.decode(): int(count) for sha, count in self.client.hgetall(name).items()}
            if not hashes:
                return {}
            counts = self.client.hmget(name, hashes)
        return {sha: int(count) for sha, count in zip(hashes, counts, strict=True) if count is not None}

    def refused_addresses(self, token_sha256: str, window_start_ms: int, *, limit: int = 10) -> list[tuple[str, int]]:
        with self._unavailable():
            top = self.client.zrevrange(
                f"{self._refusals_key(window_start_ms, self.key_namespace(token_sha256))}:{token_sha256}",
                0, limit - 1, withscores=True,
            )
        return [(address.decode(), int(count)) for address, count in top]

    def _exposed_hashes(self) -> list[bytes]:
        """The keys seen from a browser (the index of their ``origins:`` hashes)."""
        return list(self.client.smembers(f"{self.namespace}exposed"))

    def browser_sightings(self) -> list[BrowserSighting]:
        sightings = []
        with self._unavailable():
            hashes = sorted(sha.decode() for sha in self._exposed_hashes())
            for chunk in chunks(hashes, 500):
                pipe = self.client.pipeline(transaction=False)
                for sha in chunk:
                    pipe.hgetall(f"{self.key_namespace(sha)}origins:{sha}")
                for sha, origins in zip(chunk, pipe.execute(), strict=True):
                    ns = self.key_namespace(sha)
                    if not origins:  # expired: forget the key until it is seen again
                        self._forget_sightings(keys=[f"{ns}origins:{sha}", f"{ns}exposed"], args=[sha])
                    for origin, seen in sorted(origins.items()):
                        first, last, requests = (int(n) for n in seen.split(b":"))
                        sightings.append(BrowserSighting(sha, origin.decode(), first, last, requests))
        return sightings

    def stored_hashes(self) -> Iterator[list[str]]:
        start = len(self.namespace) + len("key:")
        with self._unavailable():
            names = self.client.scan_iter(match=f"{self.namespace}key:*", count=1000)
            for chunk in chunks(names, 1000):
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
            for chunk in chunks(self.client.scan_iter(match=f"{self.namespace}*", count=1000), 1000):
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
