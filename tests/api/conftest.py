"""Fixtures of the API tests: clients holding a service token with chosen scopes, or a staff session."""

import uuid

import pytest
from rest_framework.test import APIClient

from enforcement.models import ServiceToken
from enforcement.services import violation_report
from tests.factories import token_client

ALL_SCOPES = list(ServiceToken.Scope.values)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Staff users are made in most tests here; real password hashing would dominate their time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_cache_namespace(settings):
    """Throttle counters and idempotency records must not leak between tests: a key prefix per test
    (rather than clearing a cache that, with REDIS_URL set, may hold other tests' data)."""
    settings.CACHES = {name: {**config, "KEY_PREFIX": f"api-test-{uuid.uuid4().hex}"}
                       for name, config in settings.CACHES.items()}
    settings.API_IDEMPOTENCY_TTL_SECONDS = 300


@pytest.fixture
def make_client(db):
    """``make_client("cases:read", "cases:write")``: a client with a fresh token holding those scopes."""
    counter = iter(range(1000))

    def make(*scopes: str, trusted: bool = False) -> APIClient:
        return token_client(f"api-test-{next(counter)}", list(scopes), trusted=trusted)

    return make


@pytest.fixture
def full_client(make_client):
    return make_client(*ALL_SCOPES)


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def staff_client():
    """``staff_client(user)``: a logged-in session (CSRF checks on, as in a browser)."""

    def make(user) -> APIClient:
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(user)
        return client

    return make


@pytest.fixture
def report(as_trusted_detector):
    """``report(account, rule="spam-fraud", severity="medium", n=...)``: a violation by the service layer."""
    counter = iter(range(10_000))

    def make(account, rule: str = "spam-fraud", severity: str = "medium", actor=None, **extra):
        return violation_report(
            actor=actor or as_trusted_detector, account=account, rule=rule, severity=severity, source="fixture",
            external_id=f"fixture-{next(counter)}", summary="Seen by a fixture.", **extra,
        )

    return make
