"""Throttling the API: per token or staff member, per address before authentication (bad tokens included),
X-Forwarded-For trusted only behind the proxies the operator declares, and a cache that is down fails open."""

import pytest
from django.conf import settings as django_settings

pytestmark = pytest.mark.django_db

URL = "/api/v1/cases/"


@pytest.fixture
def anonymous_rate(settings):
    """Three requests a minute per address before authentication."""
    settings.REST_FRAMEWORK = {
        **django_settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "anonymous": "3/min"},
    }
    return settings


def statuses(client, n, **headers):
    return [client.get(URL, **headers).status_code for _ in range(n)]


def test_requests_without_credentials_are_throttled_by_address(anonymous_rate, anon_client):
    assert statuses(anon_client, 5) == [401, 401, 401, 429, 429]


def test_guessing_tokens_costs_the_address_its_budget(anonymous_rate, anon_client):
    answers = statuses(anon_client, 5, HTTP_AUTHORIZATION="Bearer mmst_guessed-token")
    assert answers == [401, 401, 401, 429, 429]
    assert anon_client.get(URL, HTTP_AUTHORIZATION="Bearer mmst_guessed-token").json()["error"]["code"] == "throttled"


def test_a_rotating_x_forwarded_for_does_not_buy_a_fresh_budget(anonymous_rate, anon_client):
    answers = [anon_client.get(URL, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(5)]
    assert answers == [401, 401, 401, 429, 429]


def test_behind_a_declared_proxy_the_forwarded_address_counts(anonymous_rate, anon_client):
    anonymous_rate.REST_FRAMEWORK = {**anonymous_rate.REST_FRAMEWORK, "NUM_PROXIES": 1}
    answers = [anon_client.get(URL, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(5)]
    assert answers == [401] * 5  # five clients behind the proxy, one request each


def test_a_cache_that_is_down_lets_the_api_work(anonymous_rate, settings, full_client):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
                                   "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}
    assert full_client.get(URL).status_code == 200
    assert full_client.post("/api/v1/cases/0/comment/", {"body": "x"}, format="json",
                            HTTP_IDEMPOTENCY_KEY="k-1").status_code == 404


def test_the_window_counter_counts_each_request_once_and_expires_with_its_window():
    import uuid

    from django.core.cache import cache, caches
    from django.core.cache.backends.redis import RedisCache

    from enforcement.api.throttling import _count

    key = f"api-throttle:principal:test-{uuid.uuid4().hex}:60:1"
    assert [_count(key, 61) for _ in range(4)] == [1, 2, 3, 4]
    assert cache.get(key) == 4  # the same entry Django's cache reads
    backend = caches["default"]
    if isinstance(backend, RedisCache):  # the one-round-trip path: the window's expiry set with its first request
        ttl = backend._cache.get_client(key).ttl(backend.make_and_validate_key(key))
        assert 0 < ttl <= 61
    cache.delete(key)
    assert _count(key, 61) == 1
