"""What every edge store is: the interface, the record of a key's state, and the bucket arithmetic.

Rate limits are token buckets of ``limit`` requests refilled at ``limit`` per minute, kept as
the amount taken (``used``), clamped to the capacity. A lower limit (a throttle) therefore
bites at once, and a higher one (the throttle lifted) gives its headroom back at once.

The edge is also a detector: in the same call that decides, the store counts each key's rate-limited
refusals per window of ``EDGE_ABUSE_WINDOW_SECONDS`` (with the addresses refused most, by Space-Saving:
at most ``TOP_ADDRESSES`` kept, the least counted giving its place to a newcomer), and remembers each web
origin a secret or restricted key was presented from. Enforcement reads them (``refusal_counts``,
``refused_addresses``, ``browser_sightings``) and decides what they mean; the edge only records.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import islice
from typing import NamedTuple

from django.conf import settings

from accounts.models import APIKey, KeyStatus

UNIT = 60_000  # one request, in "limit x milliseconds": a bucket refills `limit` units per millisecond
PUBLISH_CHUNK = 1000
REFUSED_STATUSES = (KeyStatus.SUSPENDED.value, KeyStatus.REVOKED.value)
RECORD_FIELDS = (
    "token_sha256", "prefix", "status", "rate_limit_per_minute", "ip_rate_limit_per_minute", "state_version"
)
NOT_BUILT = "The edge store is empty or was flushed and has not been rebuilt: run manage.py publish_key_states."
# What the detector's counters keep (``lua/check.lua`` has the same numbers): the addresses counted per key and
# window, the origins remembered per key, and for how long an origin is remembered after it was last seen.
TOP_ADDRESSES = 20
ORIGINS_PER_KEY = 20
SIGHTING_TTL_MS = 7 * 24 * 3600 * 1000


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

    reason: str  # ok | throttled | rate_limited | suspended | revoked | unknown_key | wrong_key_type
    limit: int
    remaining: int
    retry_after_ms: int

    @property
    def allowed(self) -> bool:
        return self.reason in ("ok", "throttled")


@lru_cache(maxsize=65536)
def normalise_ip(ip: str, *, ipv6_prefix: int | None = None) -> str:
    """The per-IP bucket an address counts against: an IPv4 address itself (``::ffff:1.2.3.4``-style spellings
    share its bucket), an IPv6 address by its network of ``ipv6_prefix`` bits (``EDGE_IPV6_PREFIX``, default
    64): one subscriber commonly holds a whole /64, and would otherwise get 2**64 buckets."""
    address = ipaddress.ip_address(ip.strip())
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address):
        return address.compressed
    if ipv6_prefix is None:
        ipv6_prefix = getattr(settings, "EDGE_IPV6_PREFIX", 64)
    return ipaddress.ip_network(f"{address}/{ipv6_prefix}", strict=False).compressed


# --------------------------------------------------------------------------- the bucket, in Python


def bucket_used(used: int, ts: int, limit: int, now: int) -> int:
    """What is still taken from a bucket at ``now`` (ms): refilled since ``ts``, clamped to capacity."""
    used = max(0, used - max(0, now - ts) * limit)
    return min(used, limit * UNIT)


def decide(
    status: str, limit: int, ip_limit: int, key_used: int, ip_used: int
) -> tuple[Verdict, bool]:
    """The gate's decision from a key's state and its two buckets (already refilled to now).

    Returns the verdict and whether one request is taken from both buckets. ``lua/check.lua`` does
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


# --------------------------------------------------------------------------- the refusal windows


@dataclass(frozen=True)
class RefusalWindows:
    """How refusals are counted: in fixed windows of ``length_ms`` (aligned on the epoch), of which the store
    keeps the last ``kept`` (the current one included): enough for ``sustained`` complete windows in a row, the
    window before them (to tell where a run starts), the current one, and one more should the reader be late."""

    length_ms: int
    sustained: int  # complete windows in a row that make abuse sustained
    kept: int

    @property
    def retention_ms(self) -> int:
        """How long a window's counters live after their last write (relative, so a test's clock works too)."""
        return (self.kept + 1) * self.length_ms

    def start(self, now_ms: int) -> int:
        return now_ms // self.length_ms * self.length_ms

    def starts(self, now_ms: int) -> list[int]:
        """The starts of the windows kept at ``now_ms``, oldest first, the current one last."""
        current = self.start(now_ms)
        return [current - i * self.length_ms for i in range(self.kept - 1, -1, -1)]


@cache
def _refusal_windows(window_seconds: int, sustained_minutes: int) -> RefusalWindows:
    sustained = max(1, math.ceil(sustained_minutes * 60 / window_seconds))
    return RefusalWindows(window_seconds * 1000, sustained, sustained + 4)


def refusal_windows() -> RefusalWindows:
    """The windows as the settings make them (``EDGE_ABUSE_WINDOW_SECONDS``, ``EDGE_SUSTAINED_MINUTES``)."""
    return _refusal_windows(settings.EDGE_ABUSE_WINDOW_SECONDS, settings.EDGE_SUSTAINED_MINUTES)


class BrowserSighting(NamedTuple):
    """A secret or restricted key presented from a web page's origin: when first and last, how many times."""

    token_sha256: str
    origin: str
    first_seen_ms: int
    last_seen_ms: int
    requests: int


def chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


# --------------------------------------------------------------------------- the interface


class EdgeStore:
    """What every backend does. ``now_ms`` is for tests; by default the store's own clock is used."""

    def publish(self, records: Iterable[KeyRecord], *, force: bool = False) -> int:
        """Write records whose version is newer than the stored one (any version with ``force``).

        Returns how many were written."""
        raise NotImplementedError

    def get(self, token_sha256: str) -> KeyRecord | None:
        raise NotImplementedError

    def get_many(self, hashes: list[str]) -> dict[str, KeyRecord | None]:
        """``get`` of many keys in a few round trips: each hash to its record, or None if not published."""
        return {sha: self.get(sha) for sha in hashes}

    def check(
        self, token_sha256: str, ip: str, *, now_ms: int | None = None, origin: str | None = None,
        refuse_origin: bool = False,
    ) -> Verdict:
        """Decide one request and take it from both buckets if it passes; count it if it is rate limited.

        ``origin``: the web origin a secret or restricted key was presented from (the gate passes it only for
        those); it is remembered for an active or throttled key, which ``refuse_origin`` refuses
        (``wrong_key_type``) instead of deciding on its buckets."""
        raise NotImplementedError

    def refusal_counts(self, window_start_ms: int, *, hashes: list[str] | None = None) -> dict[str, int]:
        """Rate-limited refusals per token hash in the window starting at ``window_start_ms`` (only the keys
        refused at least once; of ``hashes`` alone, if given)."""
        raise NotImplementedError

    def refused_addresses(self, token_sha256: str, window_start_ms: int, *, limit: int = 10) -> list[tuple[str, int]]:
        """The addresses (as the per-IP buckets group them) refused most for a key in a window, with their
        counts, most first. Approximate beyond ``TOP_ADDRESSES`` addresses (Space-Saving: a count may be
        overstated by at most the smallest count kept)."""
        raise NotImplementedError

    def browser_sightings(self) -> list[BrowserSighting]:
        """Every (key, web origin) remembered: seen within ``SIGHTING_TTL_MS``."""
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
