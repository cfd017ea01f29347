"""Throttling of the API itself: a fixed-window counter per caller, kept in the Django cache.

DRF's ``SimpleRateThrottle`` keeps every request's timestamp in one cache entry, which
grows with the rate; a counter per window is one atomic increment however generous the
limit. Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (env: ``API_THROTTLE_RATE``,
``API_ANON_THROTTLE_RATE``); a view may name another rate with ``throttle_scope``.
"""

import logging
import time

from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.exceptions import Throttled
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from enforcement.api.principals import principal_of

log = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """``"6000/min"`` -> (6000, 60); None or "" -> no limit."""
    if not rate:
        return None
    count, period = rate.split("/")
    return int(count), PERIODS[period.strip()[0]]


class PrincipalRateThrottle(BaseThrottle):
    """Per service token or staff member; unauthenticated callers (and bad tokens) per client address.

    The client address is ``REMOTE_ADDR`` unless ``TRUSTED_PROXY_COUNT`` proxies stand in front
    (DRF's ``NUM_PROXIES``): a client cannot rotate ``X-Forwarded-For`` to get a fresh budget.
    A cache that is down lets requests through (logged): throttling is a courtesy, the API is not."""

    timer = time.time

    def allow_request(self, request, view) -> bool:
        principal = principal_of(request)
        if principal is None:
            return self.allow(rate_name="anonymous", ident=f"ip:{self.get_ident(request)}")
        return self.allow(rate_name=getattr(view, "throttle_scope", None) or "principal", ident=principal)

    def allow(self, *, rate_name: str, ident: str) -> bool:
        rates = api_settings.DEFAULT_THROTTLE_RATES or {}
        parsed = parse_rate(rates.get(rate_name, rates.get("principal")))
        if parsed is None:
            return True
        limit, period = parsed
        now = self.timer()
        window = int(now // period)
        self.retry_after = period - (now - window * period)
        key = f"api-throttle:{rate_name}:{ident}:{period}:{window}"
        try:
            count = _count(key, period + 1)
        except Exception as exc:  # the cache is down: fail open
            log.warning("API throttle skipped, the cache is unavailable: %s", exc)
            return True
        return count <= limit

    def wait(self) -> float | None:
        return getattr(self, "retry_after", None)


def _count(key: str, timeout: int) -> int:
    """This window's requests so far, this one counted. On Redis one atomic round trip (SET NX with the
    expiry, then INCR, in a MULTI): Django's ``add`` and ``incr`` take three on every request after the first."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(backend, RedisCache):
        client = backend._cache.get_client(key, write=True)
        full_key = backend.make_and_validate_key(key)
        pipe = client.pipeline(transaction=True)
        pipe.set(full_key, 0, ex=timeout, nx=True)
        pipe.incr(full_key)
        return pipe.execute()[1]
    if cache.add(key, 1, timeout=timeout):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # the window expired between add and incr
        cache.add(key, 1, timeout=timeout)
        return 1


def throttle_unauthenticated(request) -> None:
    """Count a request that brings no valid credentials against its address; raise ``Throttled`` over the
    anonymous rate. Called before the 401, which DRF would otherwise answer before any throttle runs."""
    throttle = PrincipalRateThrottle()
    if not throttle.allow(rate_name="anonymous", ident=f"ip:{throttle.get_ident(request)}"):
        raise Throttled(wait=throttle.wait())
