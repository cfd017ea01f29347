"""Key states reach the edge store on commit, driven through the services, and can be rebuilt from the database."""

import uuid

import pytest
from django.core.management import call_command

from accounts import edge, gate
from accounts.models import KeyStatus
from accounts.tasks import republish_key_states
from accounts.tokens import generate_token, hash_token, prefix_of
from config.celery import app as celery_app
from enforcement import services
from enforcement.actors import SYSTEM
from enforcement.services import key_revoke, key_upsert
from tests.factories import AccountFactory, APIKeyFactory

pytestmark = pytest.mark.django_db

NOW = 1_800_000_000_000
IP = "203.0.113.10"


def open_case(account):
    result = services.violation_report(
        actor=SYSTEM, account=account, rule="key-exposure", source="test", external_id=uuid.uuid4().hex,
        summary="A key was pasted in a public forum.",
    )
    return result.violation.case


@pytest.fixture
def published_keys(store, keys):
    edge.publish_keys(key_ids=[k.pk for k in keys])
    return keys


def reasons(keys):
    return [gate.check(k.token, IP, now_ms=NOW).reason for k in keys]


def test_a_new_key_reaches_the_edge_when_its_transaction_commits(store, account, django_capture_on_commit_callbacks):
    token = generate_token("restricted")
    with django_capture_on_commit_callbacks(execute=True):
        key, created = key_upsert(
            actor=SYSTEM, prefix=prefix_of(token), account=account, kind="restricted",
            token_sha256=hash_token(token), rate_limit_per_minute=120, ip_rate_limit_per_minute=30,
        )
        assert gate.check(token, IP, now_ms=NOW).reason == "unknown_key"  # not before the commit
    assert created
    assert gate.check(token, IP, now_ms=NOW) == gate.Decision(True, "ok", 30, 29, 0)


def test_a_new_token_hash_replaces_the_old_one_at_the_edge(store, account, django_capture_on_commit_callbacks):
    old = generate_token("secret")
    new = prefix_of(old) + generate_token("secret")[16:]  # the same key (prefix), a corrected token hash
    for token in (old, new):
        with django_capture_on_commit_callbacks(execute=True):
            key_upsert(actor=SYSTEM, prefix=prefix_of(old), account=account, kind="secret",
                       token_sha256=hash_token(token), rate_limit_per_minute=1000, ip_rate_limit_per_minute=100)
    assert gate.check(new, IP, now_ms=NOW).reason == "ok"
    assert gate.check(old, IP, now_ms=NOW).reason == "unknown_key"


def test_a_throttle_lowers_the_limits_and_its_revert_restores_them(
    store, account, published_keys, as_agent, django_capture_on_commit_callbacks
):
    secret = published_keys[1]
    assert gate.check(secret.token, IP, now_ms=NOW - 60_000) == gate.Decision(True, "ok", 100, 99, 0)
    case = open_case(account)
    with django_capture_on_commit_callbacks(execute=True):
        action = services.action_propose(actor=as_agent, case_id=case.pk, kind="throttle", reason="Too many events",
                                         rate_limit_per_minute=30, ip_rate_limit_per_minute=5)
    action.refresh_from_db()
    assert action.status == "applied"

    # Per address: five, then refused with the throttle's limit.
    answers = [gate.check(secret.token, IP, now_ms=NOW) for _ in range(6)]
    assert [(d.reason, d.limit, d.remaining) for d in answers] == [
        ("throttled", 5, 4), ("throttled", 5, 3), ("throttled", 5, 2), ("throttled", 5, 1), ("throttled", 5, 0),
        ("rate_limited", 5, 0),
    ]
    # Per key: 30 in all (the one allowed a minute ago has refilled), whatever the addresses.
    allowed = [gate.check(secret.token, f"198.51.100.{i}", now_ms=NOW) for i in range(25)]
    assert all(d.allowed for d in allowed)
    assert gate.check(secret.token, "198.51.100.200", now_ms=NOW) == gate.Decision(False, "rate_limited", 30, 0, 2)

    with django_capture_on_commit_callbacks(execute=True):
        services.action_revert(actor=as_agent, action_id=action.pk, reason="Fixed their batching")
    decision = gate.check(secret.token, IP, now_ms=NOW)
    assert (decision.allowed, decision.reason, decision.limit) == (True, "ok", 100)
    assert gate.check(secret.token, "198.51.100.200", now_ms=NOW).allowed


def test_a_suspension_refuses_every_key_once_approved_and_its_revert_lets_them_back(
    store, account, published_keys, as_agent, as_lead, django_capture_on_commit_callbacks
):
    case = open_case(account)
    with django_capture_on_commit_callbacks(execute=True):
        action = services.action_propose(actor=as_agent, case_id=case.pk, kind="suspend", reason="Abuse")
    assert action.status == "awaiting_approval"
    assert reasons(published_keys) == ["ok", "ok", "ok"]

    with django_capture_on_commit_callbacks(execute=True):
        services.action_approve(actor=as_lead, action_id=action.pk)
    assert reasons(published_keys) == ["suspended", "suspended", "suspended"]

    with django_capture_on_commit_callbacks(execute=True):
        services.action_revert(actor=as_lead, action_id=action.pk, reason="Appeal accepted")
    assert reasons(published_keys) == ["ok", "ok", "ok"]


def test_the_edge_is_written_after_commit_not_inside_action_apply(
    store, account, as_lead, django_capture_on_commit_callbacks
):
    keys = [APIKeyFactory(account=account) for _ in range(40)]
    edge.publish_keys(account_id=account.pk)
    case = open_case(account)
    with django_capture_on_commit_callbacks(execute=False):
        action = services.action_propose(actor=as_lead, case_id=case.pk, kind="suspend", reason="Abuse")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.action_apply(action_id=action.pk)
        assert {k.status for k in account.keys.all()} == {KeyStatus.SUSPENDED}
    assert set(reasons(keys)) == {"ok"}  # nothing written to the edge by the call itself
    for callback in callbacks:
        callback()
    assert set(reasons(keys)) == {"suspended"}


def test_revoking_a_key_reaches_the_edge_at_once(store, account, published_keys, django_capture_on_commit_callbacks):
    secret = published_keys[1]
    with django_capture_on_commit_callbacks(execute=True):
        key_revoke(actor=SYSTEM, key_id=secret.pk, reason="Rolled by the customer")
    assert reasons(published_keys) == ["ok", "revoked", "ok"]


def test_a_stale_write_from_before_a_change_is_ignored(
    store, account, published_keys, as_lead, django_capture_on_commit_callbacks
):
    secret = published_keys[1]
    before = edge.KeyRecord.of(secret)
    case = open_case(account)
    with django_capture_on_commit_callbacks(execute=True):
        services.action_propose(actor=as_lead, case_id=case.pk, kind="suspend", reason="Abuse")
    secret.refresh_from_db()
    assert secret.state_version > before.version
    assert store.publish([before]) == 0  # a late task that read the key before the suspension
    assert gate.check(secret.token, IP, now_ms=NOW).reason == "suspended"
    assert store.get(secret.token_sha256).version == secret.state_version


def test_publish_key_states_rebuilds_the_store_after_a_flush(
    store, as_lead, django_capture_on_commit_callbacks, capsys
):
    active, suspended, revoked = AccountFactory(), AccountFactory(), AccountFactory()
    active_key, suspended_key, revoked_key = (APIKeyFactory(account=a) for a in (active, suspended, revoked))
    with django_capture_on_commit_callbacks(execute=True):
        services.action_propose(actor=as_lead, case_id=open_case(suspended).pk, kind="suspend", reason="Abuse")
        key_revoke(actor=SYSTEM, key_id=revoked_key.pk, reason="Leaked")
    gone = generate_token("secret")  # a key the database no longer has
    store.publish([edge.KeyRecord(hash_token(gone), prefix_of(gone), "active", 10, 10, 1)])

    store.clear()
    keys = [active_key, suspended_key, revoked_key]
    with pytest.raises(edge.EdgeNotBuilt):  # "unknown" would be a lie: the store knows nothing
        gate.check(active_key.token, IP)

    store.publish([edge.KeyRecord(hash_token(gone), prefix_of(gone), "active", 10, 10, 1)])
    call_command("publish_key_states")
    assert reasons(keys) == ["ok", "suspended", "revoked"]
    assert gate.check(gone, IP, now_ms=NOW).reason == "unknown_key"
    assert "3 key state(s) published, 0 already current, 1 stale record(s) removed" in capsys.readouterr().out

    call_command("publish_key_states")
    assert "0 key state(s) published, 3 already current, 0 stale record(s) removed" in capsys.readouterr().out


def test_a_lost_publish_is_recovered_by_the_periodic_republish(
    store, account, published_keys, as_lead, django_capture_on_commit_callbacks
):
    case = open_case(account)
    with django_capture_on_commit_callbacks(execute=False):
        action = services.action_propose(actor=as_lead, case_id=case.pk, kind="suspend", reason="Abuse",
                                         key_prefixes=[published_keys[0].prefix])
    with django_capture_on_commit_callbacks(execute=False) as lost:
        services.action_apply(action_id=action.pk)
    assert lost  # the publish message that never reaches the worker
    assert reasons(published_keys) == ["ok", "ok", "ok"]

    assert republish_key_states(window_seconds=900) == {"published": 1}
    assert reasons(published_keys) == ["suspended", "ok", "ok"]
    assert republish_key_states(window_seconds=None) == {"published": 0, "unchanged": 3, "removed": 0}


def test_the_beat_schedule_names_real_tasks(settings):
    entries = list(settings.CELERY_BEAT_SCHEDULE.values())
    assert {"accounts.tasks.republish_key_states", "enforcement.tasks.report_edge_findings"} <= {
        e["task"] for e in entries
    }
    celery_app.loader.import_default_modules()
    assert all(entry["task"] in celery_app.tasks for entry in entries)


def test_a_flushed_store_answers_what_it_knows_and_the_periodic_task_rebuilds_it(
    store, account, published_keys, django_capture_on_commit_callbacks
):
    other = APIKeyFactory()
    edge.publish_keys(key_ids=[other.pk])
    store.clear()
    with django_capture_on_commit_callbacks(execute=True):  # a key revoked after the flush is published
        key_revoke(actor=SYSTEM, key_id=published_keys[1].pk, reason="Leaked")
    assert reasons(published_keys) == ["ok", "revoked", "ok"]
    with pytest.raises(edge.EdgeNotBuilt):
        gate.check(other.token, IP, now_ms=NOW)

    report = republish_key_states(window_seconds=900)  # the beat's minutely run
    assert report == {"published": 1, "unchanged": 3, "removed": 0}  # a full rebuild, not the window
    assert gate.check(other.token, IP, now_ms=NOW).reason == "ok"
    assert gate.check(generate_token("secret"), IP, now_ms=NOW).reason == "unknown_key"


def test_a_flushed_store_is_rebuilt_by_the_quick_check_and_a_built_one_is_left_alone(store, published_keys, caplog):
    from accounts.tasks import rebuild_edge_store_if_lost

    assert rebuild_edge_store_if_lost() is None  # built: nothing to do, no database read
    store.clear()
    with pytest.raises(edge.EdgeNotBuilt):
        gate.check(published_keys[0].token, IP, now_ms=NOW)
    report = rebuild_edge_store_if_lost()
    assert report["published"] == 3 and report["seconds"] >= 0
    assert "edge store rebuilt in" in caplog.text
    assert gate.check(published_keys[0].token, IP, now_ms=NOW).reason == "ok"
