"""``Idempotency-Key`` on POSTs: a retried request with the same key gets the first answer.

The first answer (status and body, errors below 500 included) is kept in the Django cache
(Redis in deployment) for ``API_IDEMPOTENCY_TTL_SECONDS``, keyed by the caller (token or
staff member), the method, the path and the key. While the first request is still running,
a retry is told so (409). Reusing a key for a different body is refused (409), so a client
bug cannot silently get someone else's answer. Server errors are not kept: retrying one runs
the request again.

A cache that is down fails open: the request runs as if it carried no key (logged). The services
are idempotent where it matters (reports per source and external id, approvals, transitions), so
a retry then changes nothing more; only the byte-for-byte replay of the first answer is lost.
"""

import functools
import hashlib
import json
import logging

from django.conf import settings
from django.core.cache import cache
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from enforcement.api.principals import principal_of
from enforcement.errors import Conflict, ValidationFailed
from lib.cache import quietly

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
LOCK_SECONDS = 120


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


def _ttl() -> int:
    return getattr(settings, "API_IDEMPOTENCY_TTL_SECONDS", 24 * 3600)


def _fingerprint(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, cls=JSONEncoder).encode()).hexdigest()


def _replay(record: dict, fingerprint: str) -> Response:
    if record["fingerprint"] != fingerprint:
        raise IdempotencyConflict(
            f"This {HEADER} was already used for a different request body; use a new key for a new request."
        )
    return Response(record["data"], status=record["status"], headers={REPLAYED_HEADER: "true"})


def idempotent(handler):
    """Decorate a view's POST handler (``post``, ``create`` or a POST ``@action``)."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
            raise ValidationFailed(
                f"The {HEADER} header is not valid.",
                fields={HEADER: [f"1 to {MAX_KEY_LENGTH} printable ASCII characters."]},
            )
        scope = "\n".join([principal_of(request) or "-", request.method, request.path, key])
        record_key = "api-idempotency:" + hashlib.sha256(scope.encode()).hexdigest()
        lock_key = record_key + ":running"
        fingerprint = _fingerprint(request.data)
        try:
            record = cache.get(record_key)
            if record is None and not cache.add(lock_key, 1, timeout=LOCK_SECONDS):
                raise IdempotencyConflict(f"A request with this {HEADER} is still running; retry in a moment.")
        except IdempotencyConflict:
            raise
        except Exception as exc:  # the cache is down: run the request, without a replay record
            log.warning("%s not honoured, the cache is unavailable: %s", HEADER, exc)
            return handler(view, request, *args, **kwargs)
        if record is not None:
            return _replay(record, fingerprint)
        try:
            record = cache.get(record_key)
            if record is not None:
                return _replay(record, fingerprint)
            try:
                response = handler(view, request, *args, **kwargs)
            except Exception as exc:
                response = view.handle_exception(exc)
            if response.status_code < 500:
                data = json.loads(json.dumps(response.data, cls=JSONEncoder))
                quietly(cache.set, record_key,
                         {"fingerprint": fingerprint, "status": response.status_code, "data": data}, timeout=_ttl())
            return response
        finally:
            quietly(cache.delete, lock_key)

    wrapper.idempotent = True
    return wrapper
