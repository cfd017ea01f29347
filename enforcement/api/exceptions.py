"""One error shape for the whole API: ``{"error": {"code", "message", "fields"?}}``.

Used as DRF's ``EXCEPTION_HANDLER`` (every exception a view raises, the service layer's
included) and as Django's ``handler400``/``handler404``/``handler500`` for paths under ``/api/``,
so a mistyped URL, a request Django itself refuses or a crash outside a view answers in the same
shape. A 500 never carries a traceback; it is logged instead.
"""

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from enforcement.errors import ServiceError

log = logging.getLogger("enforcement.api")

API_PREFIX = "/api/"

# DRF's own codes, renamed where the service layer already has a word for the same thing.
CODE_FOR = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "parse_error",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"

    def __init__(self, detail=None, code=None):
        super().__init__(detail or payload_too_large_message(), code)


class BadRequest(exceptions.APIException):
    """A request Django refuses as it reads it (too many fields, a malformed multipart body ...)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = "The request is malformed."


def payload_too_large_message() -> str:
    return f"The request body is larger than the limit of {settings.API_MAX_BODY_BYTES} bytes."


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    error: dict = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def flatten_fields(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested validation detail as ``{"a.b": ["problem"], "items.2.c": [...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            out.update(flatten_fields(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(detail, list) and detail and all(not isinstance(item, dict | list) for item in detail):
        out[prefix or "non_field_errors"] = [str(item) for item in detail]
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if value:
                out.update(flatten_fields(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def _validation_message(fields: dict[str, list[str]]) -> str:
    if len(fields) == 1:
        name, problems = next(iter(fields.items()))
        if name == "non_field_errors":
            return problems[0]
        return f"{name}: {problems[0]}"
    return f"The request is not valid ({len(fields)} fields)."


UNAVAILABLE_RETRY_AFTER = 5


def exception_payload(exc: Exception) -> tuple[int, dict, dict]:
    """(status, body, headers) for any exception, in the one error shape."""
    headers: dict = {}
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is down or unreachable: a passing condition, not a bug; the client retries later.
        headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
        return 503, error_body("unavailable", "A datastore this request needs is unavailable; retry shortly."), headers
    if isinstance(exc, ServiceError):
        return exc.http_status, error_body(exc.code, exc.message, exc.fields), headers
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE, if the size guard missed it
        exc = PayloadTooLarge()
    elif isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        exc = BadRequest(f"Too many parameters (at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS}).")
    elif isinstance(exc, SuspiciousOperation):  # Django answers these 400 outside DRF's views too
        exc = BadRequest()
    if isinstance(exc, exceptions.APIException):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        code = next((c for cls, c in CODE_FOR.items() if isinstance(exc, cls)), None) or str(exc.default_code)
        precise = getattr(exc.detail, "code", None)
        if isinstance(precise, str) and precise != exc.default_code:
            code = precise  # raised with a more precise word than the class's, e.g. ParseError(code="too_deep")
        if isinstance(exc, exceptions.ValidationError):
            fields = flatten_fields(exc.detail)
            return exc.status_code, error_body(code, _validation_message(fields), fields), headers
        detail = exc.detail
        message = str(detail) if not isinstance(detail, dict | list) else str(exc.default_detail)
        return exc.status_code, error_body(code, message), headers
    return 500, error_body("server_error", "Something went wrong on our side; it has been logged."), headers


def exception_handler(exc, context):
    status_code, body, headers = exception_payload(exc)
    if status_code == 503:
        log.warning("answered 503: %s", exc)
    elif status_code >= 500:
        view = context.get("view")
        log.error("unhandled error in %s", type(view).__name__ if view else "API", exc_info=exc)
    set_rollback()
    return Response(body, status=status_code, headers=headers)


# --- Django's handlers: JSON under /api/, Django's own pages elsewhere ----------------------


def payload_too_large_response(request) -> HttpResponse:
    """413 for a body over ``API_MAX_BODY_BYTES``: the error shape under /api/, a plain page elsewhere."""
    message = payload_too_large_message()
    if request.path.startswith(API_PREFIX):
        return JsonResponse(error_body("payload_too_large", message), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    page = defaults.ERROR_PAGE_TEMPLATE % {"title": "Payload Too Large (413)", "details": message}
    return HttpResponse(page, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)


def handler400(request, exception=None):
    """Requests Django refuses itself (``SuspiciousOperation``): a body over the limit read outside a DRF view
    is a 413, as the size guard would have said."""
    if isinstance(exception, RequestDataTooBig):
        return payload_too_large_response(request)
    if request.path.startswith(API_PREFIX):
        return JsonResponse(error_body("bad_request", BadRequest.default_detail), status=status.HTTP_400_BAD_REQUEST)
    return defaults.bad_request(request, exception)


def handler404(request, exception=None):
    if request.path.startswith(API_PREFIX):
        return JsonResponse(error_body("not_found", "Not found."), status=status.HTTP_404_NOT_FOUND)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if request.path.startswith(API_PREFIX):
        return JsonResponse(
            error_body("server_error", "Something went wrong on our side; it has been logged."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return defaults.server_error(request)
