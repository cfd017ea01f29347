"""A database that is down answers 503 with Retry-After on every page and route, never a 500 traceback:
JSON in the API's error shape under /api/, a short plain page elsewhere. (The API's own exception handler
does the same for errors inside its views; the gate needs no database at all.)"""

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse

from enforcement.api.exceptions import API_PREFIX, UNAVAILABLE_RETRY_AFTER, error_body

log = logging.getLogger(__name__)


class DatabaseOutageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        log.warning("answered 503, the database is unavailable: %s", exception)
        if request.path.startswith(API_PREFIX):
            response = JsonResponse(
                error_body("unavailable", "A datastore this request needs is unavailable; retry shortly."),
                status=503,
            )
        else:
            response = HttpResponse("The console's database is unavailable; retry in a moment.\n", status=503,
                                    content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
        return response
