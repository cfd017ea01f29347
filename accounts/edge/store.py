"""What every edge store is: the interface, the record of a key's state, and the bucket arithmetic.

Rate limits are token buckets of ``limit`` requests refilled at ``limit`` per minute, kept as
the amount taken (``used``), clamped to the capacity. A lower limit (a throttle) therefore
bites at once, and a higher one (the throttle lifted) gives its headroom back at once.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
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
