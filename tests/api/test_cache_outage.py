"""The cache's Redis (throttling, idempotency replays, the service-token cache) killed while the API serves:
requests still work, reads and writes alike; throttling and replays fail open."""

import pytest

from tests.faults.servers import PrivateRedis

pytestmark = pytest.mark.django_db


@pytest.fixture
def cache_redis(tmp_path, settings):
    redis = PrivateRedis(tmp_path / "cache-redis")
    redis.start()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": redis.url(0),
                                   "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}
    yield redis
    redis.kill()


def test_the_api_keeps_working_when_the_cache_dies(cache_redis, make_client, account, report):
    client = make_client("cases:read", "cases:write")
    case_id = report(account).violation.case_id
    assert client.get("/api/v1/cases/").status_code == 200  # the token is now cached, throttle counted

    cache_redis.kill()
    assert client.get("/api/v1/cases/").status_code == 200
    response = client.post(f"/api/v1/cases/{case_id}/comment/", {"body": "still here"}, format="json",
                           HTTP_IDEMPOTENCY_KEY="during-the-outage")
    assert response.status_code in (200, 201), response.content
    assert client.get(f"/api/v1/cases/{case_id}/").status_code == 200
