"""The gate records what the console reports, in the call that decides: each key's rate-limited refusals per
window with the addresses refused most, and the web origins a secret or restricted key was presented from
(both backends, same answers)."""

import pytest

from accounts import edge, gate
from accounts.edge.store import ORIGINS_PER_KEY, SIGHTING_TTL_MS, TOP_ADDRESSES
from accounts.tokens import generate_token, hash_token
from tests.edge.test_gate import NOW, publish

WINDOW = 600_000  # EDGE_ABUSE_WINDOW_SECONDS' default, in ms; NOW starts a window


@pytest.fixture
def token():
    return generate_token("secret")


def test_rate_limited_refusals_are_counted_per_key_and_window(store, token):
    publish(store, token, limit=2, ip_limit=100)
    answers = [gate.check(token, "198.51.100.1", now_ms=NOW + i) for i in range(5)]
    assert [a.reason for a in answers] == ["ok", "ok", "rate_limited", "rate_limited", "rate_limited"]
    sha = hash_token(token)
    assert store.refusal_counts(NOW) == {sha: 3}
    assert store.refusal_counts(NOW, hashes=[sha, "0" * 64]) == {sha: 3}
    assert store.refusal_counts(NOW, hashes=[]) == {}

    # The next window counts from nothing (the bucket has refilled: two pass, then one is refused).
    for i in range(3):
        gate.check(token, "198.51.100.1", now_ms=NOW + WINDOW + i)
    assert store.refusal_counts(NOW + WINDOW) == {sha: 1}
    assert store.refusal_counts(NOW) == {sha: 3}


def test_the_per_address_limit_counts_too(store, token):
    publish(store, token, limit=1000, ip_limit=1)
    gate.check(token, "192.0.2.1", now_ms=NOW)
    assert gate.check(token, "192.0.2.1", now_ms=NOW).reason == "rate_limited"
    assert store.refusal_counts(NOW) == {hash_token(token): 1}
    assert store.refused_addresses(hash_token(token), NOW) == [("192.0.2.1", 1)]


def test_passing_requests_and_refusals_by_status_are_not_counted(store, token):
    publish(store, token, limit=1000, ip_limit=100)
    for _ in range(3):
        assert gate.check(token, "192.0.2.1", now_ms=NOW).allowed
    suspended = generate_token("secret")
    publish(store, suspended, status="suspended")
    gate.check(suspended, "192.0.2.1", now_ms=NOW)
    gate.check(generate_token("secret"), "192.0.2.1", now_ms=NOW)  # unknown
    assert store.refusal_counts(NOW) == {}


def test_the_addresses_refused_most_are_kept_and_the_rest_make_room(store, token):
    """At most TOP_ADDRESSES per key and window; a newcomer takes the place (and count) of the least counted
    (Space-Saving), so an address refused often is never pushed out by many refused once."""
    publish(store, token, limit=0)  # every request refused
    for address, times in (("192.0.2.1", 6), ("192.0.2.2", 4)):
        for _ in range(times):
            gate.check(token, address, now_ms=NOW)
    for i in range(30):
        gate.check(token, f"198.51.100.{i}", now_ms=NOW)
    sha = hash_token(token)
    assert store.refusal_counts(NOW) == {sha: 40}
    assert store.refused_addresses(sha, NOW, limit=2) == [("192.0.2.1", 6), ("192.0.2.2", 4)]
    kept = store.refused_addresses(sha, NOW, limit=100)
    assert len(kept) == TOP_ADDRESSES
    assert sum(count for _, count in kept) == 40  # each newcomer inherits the count it displaced, plus one


def test_ipv6_refusals_are_counted_by_network(store, token):
    publish(store, token, limit=0)
    gate.check(token, "2001:db8:1:2::1", now_ms=NOW)
    gate.check(token, "2001:db8:1:2::ffff", now_ms=NOW)
    assert store.refused_addresses(hash_token(token), NOW) == [("2001:db8:1:2::/64", 2)]


def test_a_secret_key_from_a_web_page_is_remembered_with_its_origin(store, token):
    publish(store, token)
    assert gate.check(token, "192.0.2.1", origin="https://Shop.example.com/", now_ms=NOW).reason == "ok"
    gate.check(token, "192.0.2.1", origin="https://shop.example.com", now_ms=NOW + 5000)
    gate.check(token, "192.0.2.9", origin="http://localhost:3000", now_ms=NOW + 7000)
    gate.check(token, "192.0.2.1", now_ms=NOW + 9000)  # from a server: no origin
    sha = hash_token(token)
    assert store.browser_sightings() == [
        edge.BrowserSighting(sha, "http://localhost:3000", NOW + 7000, NOW + 7000, 1),
        edge.BrowserSighting(sha, "https://shop.example.com", NOW, NOW + 5000, 2),
    ]


@pytest.mark.parametrize("origin", [None, "", "null", "chrome-extension://abcdef", "https://exa mple.com",
                                    "https://shop.example.com/checkout", "ftp://files.example.com"])
def test_no_web_origin_no_sighting(store, token, origin):
    publish(store, token)
    assert gate.check(token, "192.0.2.1", origin=origin, now_ms=NOW).allowed
    assert store.browser_sightings() == []


def test_publishable_unknown_and_refused_keys_are_not_remembered(store):
    publishable, suspended = generate_token("publishable"), generate_token("restricted")
    publish(store, publishable)
    publish(store, suspended, status="suspended")
    for token in (publishable, suspended, generate_token("secret")):
        gate.check(token, "192.0.2.1", origin="https://shop.example.com", now_ms=NOW)
    assert store.browser_sightings() == []


def test_origins_are_remembered_up_to_a_cap_per_key(store, token):
    publish(store, token, limit=10_000)
    for i in range(ORIGINS_PER_KEY + 5):
        gate.check(token, "192.0.2.1", origin=f"https://site{i:02d}.example", now_ms=NOW + i)
    sightings = store.browser_sightings()
    assert len(sightings) == ORIGINS_PER_KEY
    assert sightings[0].origin == "https://site00.example"  # the first ones stay: they are the ones to report


def test_under_refuse_a_server_key_from_a_web_page_is_refused_and_still_remembered(store, token, settings):
    settings.EDGE_BROWSER_SECRET = "refuse"
    publish(store, token, limit=1, ip_limit=1)
    decision = gate.check(token, "192.0.2.1", origin="https://shop.example.com", now_ms=NOW)
    assert decision == gate.Decision(False, "wrong_key_type", 0, 0, 0)
    assert [s.origin for s in store.browser_sightings()] == ["https://shop.example.com"]
    # Nothing was taken from the buckets, and it is not a rate refusal: the server's own request passes.
    assert gate.check(token, "192.0.2.1", now_ms=NOW).allowed
    assert store.refusal_counts(NOW) == {}
    # A suspended key is refused as suspended, whatever the page.
    publish(store, token, status="suspended", version=2)
    assert gate.check(token, "192.0.2.1", origin="https://shop.example.com", now_ms=NOW).reason == "suspended"


def test_clear_forgets_the_counters_and_sightings(store, token):
    publish(store, token, limit=0)
    gate.check(token, "192.0.2.1", origin="https://shop.example.com", now_ms=NOW)
    store.clear()
    assert store.refusal_counts(NOW) == {}
    assert store.refused_addresses(hash_token(token), NOW) == []
    assert store.browser_sightings() == []


def test_the_windows_follow_the_settings(settings):
    settings.EDGE_ABUSE_WINDOW_SECONDS, settings.EDGE_SUSTAINED_MINUTES = 600, 60
    windows = edge.refusal_windows()
    assert (windows.length_ms, windows.sustained, windows.kept) == (600_000, 6, 10)
    assert windows.starts(NOW + 1) == [NOW - i * 600_000 for i in range(9, -1, -1)]
    settings.EDGE_ABUSE_WINDOW_SECONDS, settings.EDGE_SUSTAINED_MINUTES = 60, 5
    assert edge.refusal_windows().sustained == 5
    settings.EDGE_ABUSE_WINDOW_SECONDS = 3600  # longer than the run: one window over is sustained
    assert edge.refusal_windows().sustained == 1


@pytest.mark.redis
def test_the_counters_expire_by_themselves(redis_store, token):
    publish(redis_store, token, limit=0)
    gate.check(token, "192.0.2.1", origin="https://shop.example.com", now_ms=NOW)
    sha, client = hash_token(token), redis_store.client
    ns = redis_store.key_namespace(sha)
    retention = edge.refusal_windows().retention_ms
    assert retention - 5000 < client.pttl(f"{ns}refusals:{NOW}") <= retention
    assert retention - 5000 < client.pttl(f"{ns}refusals:{NOW}:{sha}") <= retention
    assert SIGHTING_TTL_MS - 5000 < client.pttl(f"{ns}origins:{sha}") <= SIGHTING_TTL_MS


@pytest.mark.redis
def test_a_key_whose_origins_expired_leaves_the_index(redis_store, token):
    publish(redis_store, token)
    gate.check(token, "192.0.2.1", origin="https://shop.example.com", now_ms=NOW)
    ns = redis_store.key_namespace(hash_token(token))
    redis_store.client.delete(f"{ns}origins:{hash_token(token)}")  # as its TTL would
    assert redis_store.browser_sightings() == []
    assert not redis_store.client.sismember(f"{ns}exposed", hash_token(token))
