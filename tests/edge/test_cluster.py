"""The edge store on a three-master Redis Cluster (``EDGE_STORE_URL=redis+cluster://...``). The behaviour tests
(test_gate, test_refusal_counting, test_publish, test_edge_findings) already run on the cluster through the
``store`` fixture; these are about the cluster itself: where the names land, one slot per script, a master that
loses its data, and choosing the store from the URL."""

import pytest
from django.core.management import call_command

from accounts import edge, gate
from accounts.edge.redis_cluster_store import TAGS, is_cluster_url, parse_cluster_url
from accounts.tokens import generate_token, hash_token
from tests.edge.test_gate import NOW, publish
from tests.factories import APIKeyFactory

pytestmark = pytest.mark.redis


@pytest.fixture
def cluster_store(request, redis_cluster_url):
    from tests.edge.conftest import _namespace, _use

    yield from _use(edge.RedisClusterEdgeStore(redis_cluster_url, namespace=_namespace()))


def names_by_master(store) -> dict[int, list[str]]:
    return {
        node.port: [name.decode() for name in store.client.scan_iter(match=f"{store.namespace}*", target_nodes=node)]
        for node in store.client.get_primaries()
    }


def test_the_cluster_has_three_masters_and_the_keys_spread_over_all_of_them(cluster_store):
    tokens = [generate_token("secret") for _ in range(60)]
    for token in tokens:
        publish(cluster_store, token)
    states = {port: [n for n in names if ":key:" in n] for port, names in names_by_master(cluster_store).items()}
    assert len(states) == 3
    assert all(len(found) >= 5 for found in states.values()), {port: len(f) for port, f in states.items()}
    assert sum(len(found) for found in states.values()) == 60
    assert all(gate.check(token, "192.0.2.1", now_ms=NOW).allowed for token in tokens)


def test_everything_a_decision_touches_lives_in_the_slot_of_the_key(cluster_store):
    token = generate_token("secret")
    sha = hash_token(token)
    publish(cluster_store, token, limit=1, ip_limit=1)
    for address in ("192.0.2.1", "192.0.2.1", "198.51.100.7"):
        gate.check(token, address, origin="https://shop.example.com", now_ms=NOW)
    assert cluster_store.refusal_counts(NOW) == {sha: 2}
    ns = cluster_store.key_namespace(sha)
    mine = [name for names in names_by_master(cluster_store).values() for name in names if name.startswith(ns)
            and ":prefix:" not in name]
    kinds = {name[len(ns):].split(":")[0] for name in mine}
    assert {"key", "rl", "refusals", "origins", "exposed", "built"} <= kinds
    assert {cluster_store.client.keyslot(name) for name in mine} == {cluster_store.client.keyslot(f"{ns}key:{sha}")}


def test_a_master_that_loses_its_data_makes_its_keys_not_built_and_a_rebuild_brings_them_back(
    cluster_store, account
):
    keys = [APIKeyFactory(account=account) for _ in range(30)]
    call_command("publish_key_states")
    assert all(gate.check(key.token, "192.0.2.1", now_ms=NOW).allowed for key in keys)

    lost = cluster_store.client.get_primaries()[0]
    cluster_store.client.flushall(target_nodes=lost)  # a failover to an empty replica, for its slots
    on_lost = [key for key in keys
               if cluster_store.client.get_node_from_key(cluster_store.key_namespace(key.token_sha256)) == lost]
    assert on_lost and len(on_lost) < len(keys)
    assert not cluster_store.is_built()
    for key in keys:
        if key in on_lost:
            with pytest.raises(edge.EdgeNotBuilt):
                gate.check(key.token, "192.0.2.1", now_ms=NOW)
        else:
            assert gate.check(key.token, "192.0.2.1", now_ms=NOW).allowed

    report = edge.rebuild()
    assert report.published == len(on_lost)  # the records the master lost, and nothing else
    assert cluster_store.is_built()
    assert all(gate.check(key.token, "192.0.2.1", now_ms=NOW).allowed for key in keys)


def test_a_removed_key_leaves_neither_record_nor_index_on_any_master(cluster_store):
    token = generate_token("secret")
    publish(cluster_store, token)
    assert cluster_store.remove([hash_token(token)]) == 1
    assert not [n for names in names_by_master(cluster_store).values() for n in names
                if ":key:" in n or ":prefix:" in n]
    assert gate.check(token, "192.0.2.1", now_ms=NOW).reason == "unknown_key"


def test_the_detector_reads_counts_from_every_master(cluster_store):
    tokens = [generate_token("secret") for _ in range(30)]
    for token in tokens:
        publish(cluster_store, token, limit=0)
        gate.check(token, "192.0.2.1", origin="https://shop.example.com", now_ms=NOW)
    counts = cluster_store.refusal_counts(NOW)
    assert counts == {hash_token(token): 1 for token in tokens}
    masters = {cluster_store.client.get_node_from_key(cluster_store.key_namespace(sha)).port for sha in counts}
    assert len(masters) == 3
    assert {s.token_sha256 for s in cluster_store.browser_sightings()} == set(counts)


def test_the_built_mark_is_one_per_tag():
    assert len(TAGS) == 256 and len(set(TAGS)) == 256


def test_the_store_is_chosen_from_edge_store_url(settings, redis_cluster_url):
    edge.use_store(None)
    settings.EDGE_STORE_URL = redis_cluster_url
    try:
        store = edge.get_store()
        assert isinstance(store, edge.RedisClusterEdgeStore)
        store.ping()
        settings.EDGE_STORE_URL = settings.REDIS_URL
        assert type(edge.get_store()) is edge.RedisEdgeStore
    finally:
        edge.use_store(None)


def test_cluster_urls():
    assert is_cluster_url("redis+cluster://a:1") and not is_cluster_url("redis://a:1") and not is_cluster_url(None)
    assert parse_cluster_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001") == (
        [("10.0.0.1", 7000), ("10.0.0.2", 7001)], None, None
    )
    assert parse_cluster_url("redis+cluster://edge:s%40cret@[::1]:7000") == ([("::1", 7000)], "edge", "s@cret")
    for bad in ("redis://h:1", "redis+cluster://h", "redis+cluster://h:port", "redis+cluster://:7000"):
        with pytest.raises(ValueError):
            parse_cluster_url(bad)
