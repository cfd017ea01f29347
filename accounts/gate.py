"""The gate the ingest edge asks before accepting a request: may this key send, from this address?

It reads the edge store only (never the database): unknown, revoked and suspended keys are
refused with their reason; otherwise the key's per-key and per-(key, IP) token buckets each
give up one request, atomically, or the request is rate limited. A throttled key is allowed
at its reduced limit and says so (``reason="throttled"``).

The same call records what the console reports later: a rate-limited refusal is counted for its key and
window, and a secret or restricted key presented from a web page (the ``Origin`` the edge saw is
``http(s)://...``) is remembered with that origin. ``EDGE_BROWSER_SECRET=refuse`` also refuses it there
(``wrong_key_type``); ``report`` (the default) lets it through.
"""

import re
from typing import NamedTuple

from django.conf import settings

from accounts import edge
from accounts.tokens import hash_token, kind_of

REASONS = ("ok", "throttled", "rate_limited", "suspended", "revoked", "unknown_key", "wrong_key_type")
ALLOWED = frozenset({"ok", "throttled"})
MAX_TOKEN_LENGTH = 200
# A web page's origin as browsers serialise it: scheme, host (a name or an address) and an optional port.
_WEB_ORIGIN = re.compile(r"https?://(?:[a-z0-9](?:[a-z0-9.\-]{0,251}[a-z0-9])?|\[[0-9a-f:.]{2,45}\])(?::\d{1,5})?")


class Decision(NamedTuple):
    allowed: bool
    reason: str
    limit: int  # the binding limit, per minute: the key's or the address's, whichever has less left
    remaining: int
    retry_after: int  # seconds until one more request would pass (0 when allowed or not a matter of time)


def web_origin(origin: str | None) -> str | None:
    """``origin`` as recorded (lower case, no trailing slash) when it names a web page; None for no origin,
    ``null`` (a sandboxed or local page: nothing to tell the customer where), other schemes and garbage."""
    if not origin:
        return None
    origin = origin.strip().lower().removesuffix("/")
    return origin if _WEB_ORIGIN.fullmatch(origin) else None


def check(token: str, ip: str, *, origin: str | None = None, now_ms: int | None = None) -> Decision:
    """Decide one request. ``ip`` must be an IPv4 or IPv6 address (``ValueError`` otherwise); ``origin`` is the
    request's ``Origin`` header, if it had one.

    Raises ``accounts.edge.EdgeUnavailable`` when the store cannot be reached.
    """
    address = edge.normalise_ip(ip)
    kind = kind_of(token)
    if kind is None or len(token) > MAX_TOKEN_LENGTH:
        return Decision(False, "unknown_key", 0, 0, 0)
    seen_from = web_origin(origin) if origin and kind != "publishable" else None
    reason, limit, remaining, retry_after_ms = edge.get_store().check(
        hash_token(token), address, now_ms=now_ms, origin=seen_from,
        refuse_origin=seen_from is not None and settings.EDGE_BROWSER_SECRET == "refuse",
    )
    return Decision(reason in ALLOWED, reason, limit, remaining, -(-retry_after_ms // 1000))
