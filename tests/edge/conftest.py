"""Every edge test runs against every backend: real Redis when REDIS_URL is set (CI sets it), a three-master
Redis Cluster the tests start (``tests/redis_cluster.py``, once per session), and the embedded SQLite file. Each
Redis test works in a namespace of its own and deletes only that namespace.

A test on Redis or the cluster carries ``pytest.mark.redis``: without Redis it is skipped, or fails under
``CI_REQUIRE_SERVICES=1`` (``tests/required_services.py``), before these fixtures run; so does a cluster test
on a machine without ``redis-server``."""

import os
import uuid

import pytest

from accounts import edge
from tests import redis_cluster


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory):
    """The URL of a three-master cluster started for this session, and stopped (killed) after it."""
    reason = redis_cluster.missing()
    if reason is not None:
        if os.environ.get("CI_REQUIRE_SERVICES") == "1":
            pytest.fail(f"needs a Redis Cluster, and CI_REQUIRE_SERVICES=1 forbids skipping: {reason}", pytrace=False)
        pytest.skip(f"needs a Redis Cluster: {reason}")
    cluster = redis_cluster.Cluster(tmp_path_factory.mktemp("redis-cluster"), redis_cluster.ports_from_env())
    cluster.start()
    yield cluster.url
    cluster.stop()


def _namespace() -> str:
    return f"test-edge-{uuid.uuid4().hex[:12]}:"


def _redis(settings) -> edge.RedisEdgeStore:
    assert settings.REDIS_URL, "a test that uses the Redis store must be marked pytest.mark.redis"
    return edge.RedisEdgeStore(settings.REDIS_URL, namespace=_namespace())


def _backend(kind: str, request, settings, tmp_path) -> edge.EdgeStore:
    if kind == "redis":
        return _redis(settings)
    if kind == "cluster":
        return edge.RedisClusterEdgeStore(request.getfixturevalue("redis_cluster_url"), namespace=_namespace())
    return edge.SQLiteEdgeStore(tmp_path / "edge.sqlite3")


def _use(backend: edge.EdgeStore):
    backend.mark_built()  # as after a rebuild: tests that need an unbuilt store clear it
    edge.use_store(backend)
    yield backend
    edge.use_store(None)
    backend.clear()


REDIS = pytest.param("redis", marks=pytest.mark.redis)
CLUSTER = pytest.param("cluster", marks=pytest.mark.redis)


@pytest.fixture(params=[REDIS, CLUSTER, "sqlite"])
def store(request, settings, tmp_path):
    yield from _use(_backend(request.param, request, settings, tmp_path))


@pytest.fixture(params=[REDIS, CLUSTER])
def redis_store(request, settings, tmp_path):
    yield from _use(_backend(request.param, request, settings, tmp_path))
