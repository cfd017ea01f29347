"""GET /metrics scraped as Prometheus text: the gate's decisions by reason, reports, actions applied and failed,
the edge store's publish lag and the task queue's depth, each after known events."""

import os
import subprocess
import sys
import time
import uuid

import pytest
from django.urls import reverse
from kombu import Connection
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from accounts import edge, gate
from accounts.tokens import generate_token
from enforcement import services
from lib import prom
from tests.factories import AccountFactory, APIKeyFactory, token_client

pytestmark = pytest.mark.django_db

GATE_URL = reverse("gate-check")


def client_with(*scopes):
    return token_client(f"prom-{uuid.uuid4().hex[:8]}", list(scopes))


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Every sample of ``/metrics``: {(name, sorted labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def delta(after, before, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_the_gates_decisions_are_counted_by_reason(store, account, keys):
    metrics_client, gate_client = client_with("audit:read"), client_with("gate:check")
    key = keys[1]
    store.publish([edge.KeyRecord(key.token_sha256, key.prefix, "active", 2, 100, key.state_version)])
    before = scrape(metrics_client)
    for _ in range(3):  # 2 allowed, then rate limited
        gate_client.post(GATE_URL, {"key": key.token, "ip": "203.0.113.5"}, format="json")
    gate_client.post(GATE_URL, {"key": generate_token("secret"), "ip": "203.0.113.5"}, format="json")
    after = scrape(metrics_client)
    assert delta(after, before, "millimetric_gate_decisions_total", reason="ok") == 2
    assert delta(after, before, "millimetric_gate_decisions_total", reason="rate_limited") == 1
    assert delta(after, before, "millimetric_gate_decisions_total", reason="unknown_key") == 1
    assert delta(after, before, "millimetric_gate_decisions_total", reason="suspended") == 0
    # Every reason the gate can give is a label, and one for the store not answering.
    assert set(gate.REASONS) | {"store_unavailable"} == set(prom.GATE_REASONS)

    edge.use_store(edge.RedisEdgeStore("redis://127.0.0.1:1/0"))  # nothing listens there
    try:
        assert gate_client.post(GATE_URL, {"key": key.token, "ip": "203.0.113.5"}, format="json").status_code == 503
        down = scrape(metrics_client)
    finally:
        edge.use_store(store)
    assert delta(down, after, "millimetric_gate_decisions_total", reason="store_unavailable") == 1
    assert down[("millimetric_edge_publish_lag_seconds", ())] == -1  # the store cannot be read either


def test_reports_and_actions_applied_and_failed(store, as_trusted_detector, as_lead, run_on_commit):
    client = client_with("audit:read")
    before = scrape(client)
    reports = [services.violation_report(actor=as_trusted_detector, account=AccountFactory(), rule="spam-fraud",
                                         severity="medium", source=source, external_id=f"{source}-{i}",
                                         summary="Seen.").violation
               for i, source in enumerate(["prom-a", "prom-a", "prom-a", "prom-b"])]
    run_on_commit(services.action_propose, actor=as_lead, case_id=reports[0].case_id, kind="throttle",
                  reason="confirmed", rate_limit_per_minute=10)
    failing = services.action_propose(actor=as_lead, case_id=reports[3].case_id, kind="suspend", reason="fraud")
    run_on_commit(services.action_record_failure, action_id=failing.pk, error="edge down", final=True)
    after = scrape(client)
    assert after[("millimetric_reports_total", (("source", "prom-a"),))] == 3
    assert after[("millimetric_reports_total", (("source", "prom-b"),))] == 1
    assert delta(after, before, "millimetric_actions_applied_total", kind="throttle") == 1
    assert delta(after, before, "millimetric_actions_applied_total", kind="suspend") == 0
    assert delta(after, before, "millimetric_actions_failed_total", kind="suspend") == 1


def test_the_edge_stores_publish_lag(store):
    client = client_with("audit:read")
    key = APIKeyFactory()  # changed in the database, its publication not run (no commit in this test)
    samples = scrape(client)
    assert samples[("millimetric_edge_keys_behind", ())] == 1
    assert samples[("millimetric_edge_publish_lag_seconds", ())] >= 0
    time.sleep(0.05)
    assert scrape(client)[("millimetric_edge_publish_lag_seconds", ())] > 0  # the oldest change ages
    edge.publish_keys(key_ids=[key.pk])
    samples = scrape(client)
    assert samples[("millimetric_edge_keys_behind", ())] == 0
    assert samples[("millimetric_edge_publish_lag_seconds", ())] == 0


@pytest.mark.redis
def test_the_task_queue_depth_on_a_real_redis_broker(settings):
    queue = f"metrics-test-{uuid.uuid4().hex[:8]}"
    broker = settings.REDIS_URL.rsplit("/", 1)[0] + "/1"
    settings.CELERY_BROKER_URL, settings.CELERY_BROKER_TRANSPORT_OPTIONS = broker, {}
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    client = client_with("audit:read")
    assert scrape(client)[("millimetric_task_queue_depth", (("queue", queue),))] == 0  # unknown: empty
    with Connection(broker) as connection:
        producer = connection.Producer()
        for n in range(3):
            producer.publish({"n": n}, routing_key=queue, declare=[connection.SimpleQueue(queue).queue])
        try:
            assert scrape(client)[("millimetric_task_queue_depth", (("queue", queue),))] == 3
        finally:
            connection.default_channel.queue_delete(queue)


def test_the_task_queue_depth_on_the_embedded_broker(settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://localhost/"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path),
                                                "control_folder": str(tmp_path / "control")}
    with Connection(settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS) as conn:
        conn.SimpleQueue("celery").put({"n": 1})
        conn.SimpleQueue("celery").put({"n": 2})
    assert scrape(client_with("audit:read"))[("millimetric_task_queue_depth", (("queue", "celery"),))] == 2


@pytest.mark.parametrize("broker", ["redis://127.0.0.1:1/0", "amqp://guest:guest@127.0.0.1:1//"])
def test_a_broker_that_is_down_leaves_metrics_answering_quickly(settings, broker):
    settings.CELERY_BROKER_URL, settings.CELERY_BROKER_TRANSPORT_OPTIONS = broker, {}
    client = client_with("audit:read")
    started = time.monotonic()
    samples = scrape(client)
    assert time.monotonic() - started < 3
    assert samples[("millimetric_task_queue_depth", (("queue", "celery"),))] == -1
    assert ("millimetric_open_cases", (("severity", "critical"),)) in samples  # the rest is there


def test_counters_of_several_processes_are_summed_in_multiprocess_mode(tmp_path, monkeypatch):
    code = "from lib import prom; prom.GATE['ok'].inc(2); prom.APPLIED['warning'].inc()"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):  # two gunicorn workers, each with its own counts
        subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=os.getcwd(), timeout=60)
    registry = CollectorRegistry()
    registry.register(prom.counters_collector(str(tmp_path)))
    assert registry.get_sample_value("millimetric_gate_decisions_total", {"reason": "ok"}) == 4
    assert registry.get_sample_value("millimetric_actions_applied_total", {"kind": "warning"}) == 2
    # /metrics reads the directory when the process runs in that mode.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    samples = scrape(client_with("audit:read"))
    assert samples[("millimetric_gate_decisions_total", (("reason", "ok"),))] == 4
