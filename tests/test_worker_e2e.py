"""End to end with a real Celery worker process: nobody calls a task by hand.

Each test runs twice: on the configured broker (CELERY_BROKER_URL: Redis in CI, else the embedded filesystem
broker) and on RabbitMQ (the broker ``E2E_AMQP_URL`` names; ``.ci/run`` sets it, skipped when unset). Messages
go to a queue of this run's own, so a broker shared with other installations is not disturbed.
"""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from accounts.models import APIKey
from config.celery import app as celery_app
from enforcement import services, tasks
from enforcement.actors import SYSTEM, Actor
from enforcement.models import EnforcementAction
from enforcement.services import service_token_create
from lib import queue
from tests.factories import AccountFactory, APIKeyFactory
from tests.processes import stop

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
ROOT = Path(__file__).resolve().parent.parent


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _reset_producers() -> None:
    """Make the test process's Celery app connect and route afresh (after its broker URL and queue changed):
    its connection pool, and its AMQP helper, which holds the queues and producers built from the old ones."""
    celery_app._pool = None  # kombu keeps the pool per URL (closing it would close it for the next user too)
    celery_app.__dict__.pop("amqp", None)


@pytest.fixture(params=["configured", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def broker(request):
    """The broker URL the test process and the worker share, and a queue of this run's own on it."""
    if request.param == "configured":
        url = settings.CELERY_BROKER_URL
    else:
        url = os.environ.get("E2E_AMQP_URL")
        if not url:
            pytest.skip("E2E_AMQP_URL is not set (.ci/run sets it to the local RabbitMQ)")
    queue_name = f"e2e-{os.getpid()}-{request.param}"
    names = ("broker_url", "broker_read_url", "broker_write_url", "task_default_queue")
    saved = {name: celery_app.conf[name] for name in names}
    celery_app.conf.update(broker_url=url, broker_read_url=url, broker_write_url=url, task_default_queue=queue_name)
    _reset_producers()
    yield url, queue_name
    try:
        if request.param == "rabbitmq":  # leave nothing behind on a shared server
            with celery_app.connection_for_write() as connection:
                connection.default_channel.queue_delete(queue_name)
    finally:
        celery_app.conf.update(saved)
        _reset_producers()


@pytest.fixture
def worker(broker):
    """A real `celery worker` process on the test database and the broker under test."""
    url, queue_name = broker
    celery_app.conf.task_always_eager = False
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": url,
        "CELERY_TASK_DEFAULT_QUEUE": queue_name,
        "VAR_DIR": str(settings.VAR_DIR),
        "EMAIL_URL": "locmem://",
        "SWEEP_GRACE_SECONDS": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "INFO",
         "--without-gossip", "--without-mingle", "--queues", queue_name,
         "--hostname", f"e2e-{os.getpid()}-{queue_name}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    log: list[str] = []
    ready = threading.Event()

    def read():
        for line in process.stdout:
            log.append(line)
            if " ready." in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(60):
        process.kill()
        pytest.fail("the worker did not start:\n" + "".join(log[-40:]))
    yield log
    stop(process)


def wait_for(condition, log, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail("timed out; worker log:\n" + "".join(log[-60:]))


@pytest.fixture
def account_with_keys():
    account = AccountFactory()
    for kind in ("publishable", "secret", "restricted"):
        APIKeyFactory(account=account, kind=kind)
    return account


@pytest.fixture
def trusted_reporter():
    token, _ = service_token_create(actor=SYSTEM, name="ids", scopes=["violations:write"], trusted=True)
    return Actor.for_token(token)


def suspended(account):
    return lambda: set(APIKey.objects.filter(account=account).values_list("status", flat=True)) == {"suspended"}


def test_critical_violation_ends_with_keys_suspended_by_the_worker(worker, account_with_keys, trusted_reporter):
    result = services.violation_report(
        actor=trusted_reporter, account=account_with_keys.public_id, rule="security-abuse", source="ids",
        external_id="dos-1", summary="SYN flood against the ingest edge from this key",
    )
    assert result.act_first_action is not None
    wait_for(suspended(account_with_keys), worker)
    action = EnforcementAction.objects.get(pk=result.act_first_action.pk)
    assert action.status == EnforcementAction.Status.APPLIED and action.attempts == 1


def test_lost_message_is_recovered_by_the_sweep(worker, account_with_keys, trusted_reporter, monkeypatch):
    monkeypatch.setattr(queue, "enqueue_on_commit", lambda task, *args: None)  # the broker loses the message
    result = services.violation_report(
        actor=trusted_reporter, account=account_with_keys.public_id, rule="spam-fraud", source="ids",
        external_id="farm-1", summary="click farm",
    )
    action_id = result.act_first_action.pk
    time.sleep(2)
    assert EnforcementAction.objects.get(pk=action_id).status == EnforcementAction.Status.SCHEDULED
    assert not suspended(account_with_keys)()
    tasks.sweep.delay()  # what beat sends every minute
    wait_for(suspended(account_with_keys), worker)
    assert EnforcementAction.objects.get(pk=action_id).status == EnforcementAction.Status.APPLIED
