"""Health for load balancers and orchestrators: ``/healthz`` (the process serves) and ``/readyz`` (it can do
its work: PostgreSQL, the broker, the edge store and the cache all answer). Neither needs credentials, and
neither says more than which dependency failed and how (no URLs, no secrets)."""

import re

from celery import current_app
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts import edge
from enforcement import notifications

RETRY_AFTER_SECONDS = 5
_CREDENTIALS = re.compile(r"//[^/@\s]*@")


def _problem(exc: Exception) -> str:
    """The error in a line, with any credentials in a URL cut out."""
    return _CREDENTIALS.sub("//***@", f"{type(exc).__name__}: {exc}")[:200]


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)


def _edge_store() -> None:
    edge.get_store().ping()


def _cache() -> None:
    cache.set("readyz", "1", timeout=5)
    if cache.get("readyz") != "1":
        raise RuntimeError("the cache did not keep a value")


CHECKS = {"database": _database, "broker": _broker, "edge_store": _edge_store, "cache": _cache}


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    checks = {}
    for name, check in CHECKS.items():
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = _problem(exc)
    ready = all(result == "ok" for result in checks.values())
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    if checks["database"] == "ok":
        stuck = notifications.stuck_customer_notices()
        if stuck:  # not a reason to take this instance out of rotation, but someone must look
            body["warnings"] = [f"{stuck} customer notice(s) unsent for over "
                                f"{int(notifications.STUCK_AFTER.total_seconds() // 60)} minutes"]
    response = JsonResponse(body, status=200 if ready else 503)
    if not ready:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
