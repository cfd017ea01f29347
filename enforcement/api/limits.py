"""The request-size guard of every route (the API, the GitHub endpoint, the admin): a body over
``API_MAX_BODY_BYTES`` is a 413 before anything reads or parses it.

A declared ``Content-Length`` over the limit is refused without reading a byte. A body of unknown
length (``Transfer-Encoding: chunked``, or HTTP/2 without a length) is read here, at most one byte past
the limit: over it, a 413; within it, the body is kept and its length set, so Django and DRF read it as
any other body. (Django's own WSGI request ignores a body without a length; a server that ends the
stream itself, such as gunicorn, says so with ``wsgi.input_terminated``, and only then is it read.
Under ASGI, Django has received the whole body before any middleware runs: there the 413 still comes
before parsing, but bounding what is received is the proxy's job, e.g. nginx's client_max_body_size.)
``DATA_UPLOAD_MAX_MEMORY_SIZE`` is set to the same limit, and a ``RequestDataTooBig`` that still
surfaces is answered 413 too (``enforcement.api.exceptions``).
"""

import io

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest

from enforcement.api.exceptions import payload_too_large_response

CHUNK_BYTES = 64 * 1024


class RequestSizeLimitMiddleware:
    """Placed before anything that reads the body (the CSRF check reads the admin's forms)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.API_MAX_BODY_BYTES
        declared = declared_length(request)
        if declared is not None:
            if declared > limit:
                return payload_too_large_response(request)
        else:
            stream = unmeasured_body_stream(request)
            if stream is not None:
                body = read_at_most(stream, limit)
                if body is None:
                    return payload_too_large_response(request)
                request._stream = io.BytesIO(body)
                request.META["CONTENT_LENGTH"] = str(len(body))
        return self.get_response(request)


def declared_length(request) -> int | None:
    """The ``Content-Length`` the client sent; None without one. A malformed one counts as 0, as Django
    reads it (nothing of the body is read)."""
    raw = request.META.get("CONTENT_LENGTH")
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        return 0


def unmeasured_body_stream(request):
    """Where a body without a declared length can be read from, or None where it cannot be (or is not)."""
    if isinstance(request, ASGIRequest):
        return request._stream  # the ASGI handler has received the whole body already
    environ = getattr(request, "environ", {})
    if environ.get("wsgi.input_terminated") and "wsgi.input" in environ:
        return environ["wsgi.input"]
    return None


def read_at_most(stream, limit: int) -> bytes | None:
    """The rest of ``stream`` if it is at most ``limit`` bytes, else None (having read ``limit + 1``)."""
    chunks, size = [], 0
    while size <= limit:
        chunk = stream.read(min(CHUNK_BYTES, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    return None
