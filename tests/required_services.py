"""Tests that need a real service say so with a marker; without the service they skip, in CI they fail.

``pytest.mark.postgres``, ``pytest.mark.redis`` and ``pytest.mark.browser`` (declared in pyproject.toml)
name what a test needs. ``tests/conftest.py`` calls ``require_services`` before the test's fixtures run:
when a service is not configured or cannot be reached, the test is skipped with the reason; under
``CI_REQUIRE_SERVICES=1`` (``.ci/run`` sets it along with every URL) it fails with the reason instead,
so that CI can never pass by skipping the very tests it exists to run.
"""

import functools
import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def _postgres_missing() -> str | None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return f"DATABASE_URL does not name a PostgreSQL database (the tests run on {connection.vendor})"
    # A PostgreSQL that is configured but down is not checked here: creating the test database fails
    # first, and loudly, for every test that uses the database.
    return None


@functools.cache
def _redis_missing() -> str | None:
    import redis
    from django.conf import settings

    if not settings.REDIS_URL:
        return "REDIS_URL is not set"
    try:
        with redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2) as client:
            client.ping()
    except (redis.RedisError, OSError) as exc:  # the URL itself is not shown: it may hold a password
        return f"the Redis named by REDIS_URL cannot be reached ({exc})"
    return None


@functools.cache
def _rabbitmq_missing() -> str | None:
    """RabbitMQ as a broker is checked when ``E2E_AMQP_URL`` names one (``.ci/run`` sets it); unset, the test
    skips (a developer's machine without RabbitMQ), set but unreachable, it fails in CI like any service."""
    url = os.environ.get("E2E_AMQP_URL")
    if not url:
        return None
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:  # the URL itself is not shown: it may hold a password
        return f"the RabbitMQ named by E2E_AMQP_URL cannot be reached ({type(exc).__name__}: {exc})"
    return None


@functools.cache
def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Chromium not found at {CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements-dev.txt)"
    return None


# marker -> (what the test needs, why it is missing or None)
SERVICES = {
    "postgres": ("PostgreSQL", _postgres_missing),
    "redis": ("Redis", _redis_missing),
    "browser": ("headless Chromium", _browser_missing),
    "rabbitmq": ("RabbitMQ", _rabbitmq_missing),
}


def require_services(item: pytest.Item) -> None:
    """Skip a test whose marked services are not all there, or fail it under ``CI_REQUIRE_SERVICES=1``."""
    for marker, (service, why_missing) in SERVICES.items():
        if item.get_closest_marker(marker) is None:
            continue
        reason = why_missing()
        if reason is None:
            continue
        if os.environ.get("CI_REQUIRE_SERVICES") == "1":
            pytest.fail(f"needs {service}, and CI_REQUIRE_SERVICES=1 forbids skipping: {reason}", pytrace=False)
        pytest.skip(f"needs {service}: {reason}")
