"""The cache is a convenience, never a dependency: a call to it that fails (the cache's Redis down or hung)
is logged and answers None, and the caller carries on as if the cache had nothing."""

import logging

log = logging.getLogger(__name__)


def quietly(operation, *args, **kwargs):
    """``operation(*args, **kwargs)`` (e.g. ``cache.set``), or None when the cache cannot answer."""
    try:
        return operation(*args, **kwargs)
    except Exception as exc:
        log.warning("cache unavailable (%s): %s", getattr(operation, "__name__", operation), exc)
        return None
