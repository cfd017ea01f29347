"""/healthz and /readyz: what a load balancer asks. Each dependency down is named; no secret is shown."""

import pytest
from django.test import Client

from accounts import edge
from config.celery import app as celery_app

pytestmark = pytest.mark.django_db

DEAD = "redis://:s3cret-password@127.0.0.1:1/0"  # nothing listens on port 1


def test_healthz_answers_while_the_process_serves():
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_is_200_when_every_dependency_answers():
    response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok", "edge_store": "ok",
                                                         "cache": "ok"}}


def test_readyz_names_what_is_down_with_503_and_retry_after(settings, monkeypatch):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": DEAD,
                                   "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}
    monkeypatch.setattr(celery_app.conf, "broker_url", DEAD)
    monkeypatch.setenv("CELERY_BROKER_URL", DEAD)  # Celery reads the environment before its own settings
    edge.use_store(edge.RedisEdgeStore(DEAD))
    response = Client().get("/readyz")
    assert response.status_code == 503 and response["Retry-After"]
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["database"] == "ok"
    for name in ("broker", "edge_store", "cache"):
        assert body["checks"][name] != "ok", name
    assert "s3cret" not in response.content.decode()
