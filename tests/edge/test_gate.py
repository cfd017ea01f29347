"""The gate's decisions, read from the edge store alone (both backends, same answers)."""

import multiprocessing

import pytest

from accounts import edge, gate
from accounts.tokens import generate_token, hash_token, prefix_of

NOW = 1_800_000_000_000  # a fixed clock (ms), so the buckets do not refill while a test runs


def publish(store, token, *, status="active", limit=1000, ip_limit=100, version=1, force=False):
    record = edge.KeyRecord(hash_token(token), prefix_of(token), status, limit, ip_limit, version)
    return store.publish([record], force=force)


@pytest.fixture
def token():
    return generate_token("secret")


def test_unknown_key_is_refused(store):
    decision = gate.check(generate_token("secret"), "203.0.113.7", now_ms=NOW)
    assert decision == gate.Decision(False, "unknown_key", 0, 0, 0)


def test_a_string_that_is_not_a_key_is_refused_without_asking_the_store(store):
    assert gate.check("hello", "203.0.113.7").reason == "unknown_key"


@pytest.mark.parametrize("status", ["suspended", "revoked"])
def test_suspended_and_revoked_keys_are_refused_with_their_reason(store, token, status):
    publish(store, token, status=status)
    decision = gate.check(token, "203.0.113.7", now_ms=NOW)
    assert (decision.allowed, decision.reason) == (False, status)


def test_an_active_key_is_allowed_and_told_what_is_left(store, token):
    publish(store, token, limit=1000, ip_limit=100)
    decision = gate.check(token, "203.0.113.7", now_ms=NOW)
    assert decision == gate.Decision(True, "ok", 100, 99, 0)  # the address has less left than the key


def test_per_key_limit_at_the_boundary(store, token):
    publish(store, token, limit=5, ip_limit=100)
    answers = [gate.check(token, f"198.51.100.{i}", now_ms=NOW) for i in range(5)]
    assert [(d.allowed, d.limit, d.remaining) for d in answers] == [(True, 5, n) for n in (4, 3, 2, 1, 0)]

    sixth = gate.check(token, "198.51.100.99", now_ms=NOW)
    assert sixth == gate.Decision(False, "rate_limited", 5, 0, 12)  # one request refills every 60/5 = 12 s
    assert not gate.check(token, "198.51.100.99", now_ms=NOW + 11_999).allowed
    assert gate.check(token, "198.51.100.99", now_ms=NOW + 12_000).allowed
    assert not gate.check(token, "198.51.100.99", now_ms=NOW + 12_000).allowed


def test_per_ip_limit_at_the_boundary_leaves_other_addresses_alone(store, token):
    publish(store, token, limit=1000, ip_limit=3)
    answers = [gate.check(token, "192.0.2.1", now_ms=NOW) for _ in range(3)]
    assert [(d.allowed, d.limit, d.remaining) for d in answers] == [(True, 3, 2), (True, 3, 1), (True, 3, 0)]

    assert gate.check(token, "192.0.2.1", now_ms=NOW) == gate.Decision(False, "rate_limited", 3, 0, 20)
    assert gate.check(token, "192.0.2.2", now_ms=NOW) == gate.Decision(True, "ok", 3, 2, 0)
    # The per-key bucket counted only the requests that passed: 3 + 1 of 1000.
    assert gate.check(token, "192.0.2.3", now_ms=NOW).allowed


def test_address_spellings_share_one_bucket(store, token):
    publish(store, token, ip_limit=1)
    assert gate.check(token, "2001:db8::1", now_ms=NOW).allowed
    assert gate.check(token, "2001:0db8:0000::0001", now_ms=NOW).reason == "rate_limited"
    assert gate.check(token, "192.0.2.9", now_ms=NOW).allowed
    assert gate.check(token, "::ffff:192.0.2.9", now_ms=NOW).reason == "rate_limited"


def test_ipv6_addresses_share_their_network_s_bucket(store, token, settings):
    """Rotating addresses inside one /64 (which a single subscriber holds) does not escape the per-IP limit."""
    publish(store, token, ip_limit=1)
    assert gate.check(token, "2001:db8:1:2::1", now_ms=NOW).allowed
    assert gate.check(token, "2001:db8:1:2:ffff:ffff:ffff:fffe", now_ms=NOW).reason == "rate_limited"
    assert gate.check(token, "2001:db8:1:3::1", now_ms=NOW).allowed  # the next /64 is someone else
    settings.EDGE_IPV6_PREFIX = 128  # an operator who wants every address apart
    assert gate.check(token, "2001:db8:1:2::2", now_ms=NOW).allowed


def test_a_bad_address_is_a_value_error(store, token):
    with pytest.raises(ValueError):
        gate.check(token, "not-an-ip")


def test_a_throttled_key_is_allowed_at_its_lower_limit_and_says_so(store, token):
    publish(store, token, limit=1000, ip_limit=100, version=1)
    for _ in range(20):
        assert gate.check(token, "192.0.2.1", now_ms=NOW).allowed
    publish(store, token, status="throttled", limit=60, ip_limit=10, version=2)
    # Twenty already taken from this address is over the new limit of ten: refused at once.
    assert gate.check(token, "192.0.2.1", now_ms=NOW).reason == "rate_limited"
    decision = gate.check(token, "192.0.2.2", now_ms=NOW)
    assert (decision.allowed, decision.reason, decision.limit, decision.remaining) == (True, "throttled", 10, 9)

    publish(store, token, status="active", limit=1000, ip_limit=100, version=3)
    # Lifted: the headroom comes back at once, no waiting for a refill.
    decision = gate.check(token, "192.0.2.1", now_ms=NOW)
    assert (decision.allowed, decision.reason, decision.limit, decision.remaining) == (True, "ok", 100, 79)


def test_an_older_version_never_overwrites_a_newer_one(store, token):
    assert publish(store, token, status="suspended", version=5) == 1
    assert publish(store, token, status="active", version=4) == 0
    assert publish(store, token, status="active", version=5) == 0
    assert gate.check(token, "192.0.2.1", now_ms=NOW).reason == "suspended"
    assert store.get(hash_token(token)).version == 5

    assert publish(store, token, status="active", version=6) == 1
    assert gate.check(token, "192.0.2.1", now_ms=NOW).reason == "ok"
    # A forced write (a database restored from a backup) wins whatever the version.
    assert publish(store, token, status="revoked", version=2, force=True) == 1
    assert gate.check(token, "192.0.2.1", now_ms=NOW).reason == "revoked"


def test_a_new_token_hash_for_the_same_key_replaces_the_old_record(store, token):
    publish(store, token, version=1)
    rolled = prefix_of(token) + generate_token("secret")[16:]
    store.publish([edge.KeyRecord(hash_token(rolled), prefix_of(token), "active", 1000, 100, 2)])
    assert gate.check(rolled, "192.0.2.1", now_ms=NOW).allowed
    assert gate.check(token, "192.0.2.1", now_ms=NOW).reason == "unknown_key"
    # ... and a late write of the old hash does not bring it back.
    assert publish(store, token, version=1) == 0
    assert gate.check(token, "192.0.2.1", now_ms=NOW).reason == "unknown_key"


def test_refused_keys_leave_no_bucket_behind(store, token):
    publish(store, token, status="suspended")
    gate.check(token, "192.0.2.1", now_ms=NOW)
    gate.check(generate_token("secret"), "192.0.2.1", now_ms=NOW)
    if isinstance(store, edge.RedisEdgeStore):
        names = set(store.client.scan_iter(match=f"{store.namespace}*rl:*"))
        assert store.client.hget(f"{store.key_namespace(hash_token(token))}key:{hash_token(token)}", "used") is None
    else:
        names = {row[0] for row in store._conn().execute("SELECT name FROM bucket")}
    assert names == set()


def _take(count: int, token: str, results) -> None:
    results.put(sum(gate.check(token, "192.0.2.1", now_ms=NOW).allowed for _ in range(count)))


def test_concurrent_processes_never_exceed_the_limit(store, token):
    """Four processes race for 25 requests: exactly 25 pass (the check is atomic across processes)."""
    publish(store, token, limit=25, ip_limit=25)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_take, args=(20, token, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    passed = sum(results.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    assert passed == 25


@pytest.mark.redis
def test_the_gate_survives_redis_losing_its_scripts(redis_store, token):
    publish(redis_store, token)
    redis_store.client.script_flush()  # what a Redis restart does
    assert gate.check(token, "192.0.2.1", now_ms=NOW).allowed
    assert gate.check(token, "192.0.2.1", now_ms=NOW).remaining == 98
