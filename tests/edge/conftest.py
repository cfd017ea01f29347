"""Every edge test runs against both backends: real Redis when REDIS_URL is set (CI sets it), and the
embedded SQLite file. Each Redis test works in a namespace of its own and deletes only that namespace.

A test on Redis carries ``pytest.mark.redis``: without Redis it is skipped, or fails under
``CI_REQUIRE_SERVICES=1`` (``tests/required_services.py``), before these fixtures run."""

import uuid

import pytest

from accounts import edge


def _redis(settings) -> edge.RedisEdgeStore:
    assert settings.REDIS_URL, "a test that uses the Redis store must be marked pytest.mark.redis"
    return edge.RedisEdgeStore(settings.REDIS_URL, namespace=f"test-edge-{uuid.uuid4().hex[:12]}:")


def _use(backend: edge.EdgeStore):
    backend.mark_built()  # as after a rebuild: tests that need an unbuilt store clear it
    edge.use_store(backend)
    yield backend
    edge.use_store(None)
    backend.clear()


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.redis), "sqlite"])
def store(request, settings, tmp_path):
    backend = _redis(settings) if request.param == "redis" else edge.SQLiteEdgeStore(tmp_path / "edge.sqlite3")
    yield from _use(backend)


@pytest.fixture
def redis_store(settings):
    yield from _use(_redis(settings))
