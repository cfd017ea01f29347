"""The edge store on Redis Cluster (``EDGE_STORE_URL=redis+cluster://host:port[,host:port...]``).

The same records, buckets, counters and Lua as ``redis_store`` (a subclass), with every name of a key behind a
hash tag: a key's namespace is ``<ns>{<first TAG_HEX hex digits of its token hash>}:``, so its state, its
per-(key, IP) buckets (the per-IP limits are per key and address: there is no address-only limit to place
elsewhere), its refusal counters and top addresses, its web origins and the built mark ``check.lua`` reads all
share one slot, and a decision is still one EVALSHA on one master. The tag is a prefix of the hash rather than
the whole hash so that there are few of them (``16 ** TAG_HEX``, 256), which is what makes the cluster-wide reads cheap:

- the refusal counts of a window are one hash per tag (``<ns>{t}:refusals:<start>``: token hash -> count), which
  the detector reads with one pipelined HGETALL per tag, grouped by master;
- the keys seen from web origins are one set per tag (``<ns>{t}:exposed``), read the same way;
- the built mark is one per tag (``<ns>{t}:built``): a master that loses its data (a failover to an empty
  replica) loses the marks of its own slots only, and the gate says ``not_built`` for exactly the keys it lost;
  ``is_built`` wants every mark.

The prefix index (``<ns>{p}:prefix:<prefix>``, ``p`` from the SHA-256 of the prefix) cannot share a slot with
both the old and the new record of a key whose token hash changes, so a publish is three single-slot scripts,
each a compare-and-set on the version: claim the index (``claim_prefix.lua``; an older version stops there), write
the state (``write_state.lua``), and turn the record the index pointed to before into a tombstone
(``retire.lua``: the replacing version, no status, expiring after ``TOMBSTONE_TTL_MS``), so that a late copy of an
older publish can neither win the index nor bring the old record back. Each step is pipelined for a whole chunk
(one round trip per master per step).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from urllib.parse import unquote, urlsplit

from accounts.edge.redis_store import RedisEdgeStore, counting_spec, read_lua
from accounts.edge.store import PUBLISH_CHUNK, KeyRecord, chunks

SCHEME = "redis+cluster"
TAG_HEX = 2  # 256 tags: spread over every master, and few enough to read all in one pipeline (~10 ms)
TAGS = tuple(f"{n:0{TAG_HEX}x}" for n in range(16**TAG_HEX))
TOMBSTONE_TTL_MS = 7 * 24 * 3600 * 1000
CLAIM_PREFIX_LUA = read_lua("claim_prefix")
WRITE_STATE_LUA = read_lua("write_state")
RETIRE_LUA = read_lua("retire")
DROP_PREFIX_LUA = read_lua("drop_prefix")


def _eval(pipe, script: str, key: str, *args) -> None:
    """A one-key script in a cluster pipeline: EVAL with its text (a pipeline cannot load scripts on each
    master first), for publishing and removal, not the gate's hot path."""
    pipe.execute_command("EVAL", script, 1, key, *args)


def is_cluster_url(url: str | None) -> bool:
    return bool(url) and url.lower().startswith(f"{SCHEME}://")


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], str | None, str | None]:
    """``redis+cluster://[user:password@]host:port[,host:port...]`` -> (nodes, username, password)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != SCHEME:
        raise ValueError(f"not a {SCHEME}:// URL")
    credentials, _, hosts = parts.netloc.rpartition("@")
    username = password = None
    if credentials:
        user, _, secret = credentials.partition(":")
        username, password = unquote(user) or None, unquote(secret) or None
    nodes = []
    for node in hosts.split(","):
        host, _, port = node.strip().rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{node.strip()!r} is not host:port")
        nodes.append((host, int(port)))
    return nodes, username, password


class RedisClusterEdgeStore(RedisEdgeStore):
    def __init__(self, url: str, *, namespace: str = "edge:"):
        import redis
        from redis.cluster import ClusterNode, RedisCluster
        from redis.maint_notifications import MaintNotificationsConfig

        nodes, username, password = parse_cluster_url(url)
        self.url = url
        self._redis_errors = (redis.RedisError, OSError)
        self._no_script = redis.exceptions.NoScriptError
        self.namespace = namespace
        self.client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes], username=username, password=password,
            socket_timeout=5, socket_connect_timeout=5, health_check_interval=30,
            # Off: its handler reads the socket once more after every reply (cluster maintenance push messages
            # of Redis Enterprise), which costs the gate a third of its time; MOVED replies still reroute.
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
        self._register_scripts()
        self._rerouted = (redis.exceptions.MovedError, redis.exceptions.AskError, redis.exceptions.TryAgainError,
                          redis.exceptions.ClusterDownError, redis.exceptions.ConnectionError)
        self._tag_namespaces = tuple(f"{namespace}{{{tag}}}:" for tag in TAGS)

    # ------------------------------------------------------------------ names

    def key_namespace(self, sha: str) -> str:
        return f"{self.namespace}{{{sha[:TAG_HEX]}}}:"

    def _counting_spec(self, windows, ns: str) -> bytes:
        # One cached head for every tag, the key's namespace after it (the cache would hold 4096 of them).
        return counting_spec(windows.length_ms, windows.retention_ms, "") + ns.encode()

    def _prefix_key(self, prefix: str) -> str:
        tag = hashlib.sha256(prefix.encode()).hexdigest()[:TAG_HEX]
        return f"{self.namespace}{{{tag}}}:prefix:{prefix}"

    def _per_tag(self, command: str, suffix: str) -> list:
        """One command on the same name under every tag, pipelined (one round trip per master)."""
        pipe = self.client.pipeline()
        for ns in self._tag_namespaces:
            getattr(pipe, command)(f"{ns}{suffix}")
        return pipe.execute()

    def _evalsha_check(self, keys_and_args: tuple):
        """The gate's EVALSHA straight to the master that serves the key's slot, through that master's plain client
        (the cluster client's own routing costs as much Python time as the round trip). A moved slot, a failover or a
        lost connection goes through the cluster client instead, which follows the redirection and refreshes its
        map of the slots."""
        client = self.client
        try:
            node = client.nodes_manager.get_node_from_slot(client.keyslot(keys_and_args[0]))
            return node.redis_connection.evalsha(self._check.sha, 3, *keys_and_args)
        except self._rerouted:
            return client.evalsha(self._check.sha, 3, *keys_and_args)

    # ------------------------------------------------------------------ publishing

    def publish(self, records: Iterable[KeyRecord], *, force: bool = False) -> int:
        written = 0
        flag = "1" if force else "0"
        with self._unavailable():
            for chunk in chunks(records, PUBLISH_CHUNK):
                pipe = self.client.pipeline()
                for r in chunk:
                    _eval(pipe, CLAIM_PREFIX_LUA, self._prefix_key(r.prefix), r.version, r.token_sha256, flag)
                claimed = [(r, previous) for r, previous in zip(chunk, pipe.execute(), strict=True) if previous != 0]
                if not claimed:
                    continue
                pipe = self.client.pipeline()
                for r, _ in claimed:
                    _eval(pipe, WRITE_STATE_LUA, self._state_key(r.token_sha256), r.version, r.status,
                          r.rate_limit, r.ip_rate_limit, r.prefix, flag)
                written += sum(int(x) for x in pipe.execute())
                replaced = [(r, previous.decode()) for r, previous in claimed
                            if previous and previous.decode() != r.token_sha256]
                if replaced:
                    pipe = self.client.pipeline()
                    for r, previous in replaced:
                        _eval(pipe, RETIRE_LUA, self._state_key(previous), r.version, flag, TOMBSTONE_TTL_MS)
                    pipe.execute()
        return written

    def remove(self, hashes: list[str]) -> int:
        """Drop the records of keys that no longer exist, then their prefix index entries (another slot)."""
        if not hashes:
            return 0
        with self._unavailable():
            pipe = self.client.pipeline()
            for sha in hashes:
                pipe.hget(self._state_key(sha), "prefix")
                pipe.delete(self._state_key(sha))
            answers = pipe.execute()
            prefixes = [(sha, prefix.decode()) for sha, prefix in zip(hashes, answers[::2], strict=True) if prefix]
            if prefixes:
                pipe = self.client.pipeline()
                for sha, prefix in prefixes:
                    _eval(pipe, DROP_PREFIX_LUA, self._prefix_key(prefix), sha)
                pipe.execute()
        return sum(int(x) for x in answers[1::2])

    # ------------------------------------------------------------------ what the detector reads

    def refusal_counts(self, window_start_ms: int, *, hashes: list[str] | None = None) -> dict[str, int]:
        with self._unavailable():
            if hashes is None:
                counts = {}
                for found in self._per_tag("hgetall", f"refusals:{window_start_ms}"):
                    counts.update((sha.decode(), int(count)) for sha, count in found.items())
                return counts
            if not hashes:
                return {}
            pipe = self.client.pipeline()
            for sha in hashes:
                pipe.hget(self._refusals_key(window_start_ms, self.key_namespace(sha)), sha)
            answers = pipe.execute()
        return {sha: int(count) for sha, count in zip(hashes, answers, strict=True) if count is not None}

    def _exposed_hashes(self) -> list[bytes]:
        return [sha for members in self._per_tag("smembers", "exposed") for sha in members]

    # ------------------------------------------------------------------ the whole store

    def stored_hashes(self) -> Iterator[list[str]]:
        with self._unavailable():
            names = self.client.scan_iter(match=f"{self.namespace}{{*}}:key:*", count=1000)  # every master
            for chunk in chunks(names, 1000):
                yield [name.decode().rpartition(":key:")[2] for name in chunk]

    def clear(self) -> None:
        with self._unavailable():
            for chunk in chunks(self.client.scan_iter(match=f"{self.namespace}*", count=1000), 1000):
                pipe = self.client.pipeline()
                for name in chunk:
                    pipe.unlink(name)
                pipe.execute()

    def mark_built(self) -> None:
        stamp = str(int(time.time()))
        with self._unavailable():
            pipe = self.client.pipeline()
            for ns in self._tag_namespaces:
                pipe.set(f"{ns}built", stamp)
            pipe.execute()

    def is_built(self) -> bool:
        """Every tag's mark is there: a master that lost its slots' data makes the whole store unbuilt."""
        with self._unavailable():
            return all(self._per_tag("exists", "built"))

    def ping(self) -> None:
        with self._unavailable():
            self.client.ping(target_nodes=self.client.ALL_NODES)
