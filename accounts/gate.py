"""The gate the ingest edge asks before accepting a request: may this key send, from this address?

It reads the edge store only (never the database): unknown, revoked and suspended keys are
refused with their reason; otherwise the key's per-key and per-(key, IP) token buckets each
give up one request, atomically, or the request is rate limited. A throttled key is allowed
at its reduced limit and says so (``reason="throttled"``).
"""

from typing import NamedTuple

from accounts import edge
from accounts.tokens import hash_token, kind_of

REASONS = ("ok", "throttled", "rate_limited", "suspended", "revoked", "unknown_key")
ALLOWED = frozenset({"ok", "throttled"})
MAX_TOKEN_LENGTH = 200


class Decision(NamedTuple):
    allowed: bool
    reason: str
    limit: int  # the binding limit, per minute: the key's or the address's, whichever has less left
    remaining: int
    retry_after: int  # seconds until one more request would pass (0 when allowed or not a matter of time)


def check(token: str, ip: str, *, now_ms: int | None = None) -> Decision:
    """Decide one request. ``ip`` must be an IPv4 or IPv6 address (``ValueError`` otherwise).

    Raises ``accounts.edge.EdgeUnavailable`` when the store cannot be reached.
    """
    address = edge.normalise_ip(ip)
    if kind_of(token) is None or len(token) > MAX_TOKEN_LENGTH:
        return Decision(False, "unknown_key", 0, 0, 0)
    reason, limit, remaining, retry_after_ms = edge.get_store().check(hash_token(token), address, now_ms=now_ms)
    return Decision(reason in ALLOWED, reason, limit, remaining, -(-retry_after_ms // 1000))
