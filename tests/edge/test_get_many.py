"""``get_many``: the batched read of key states (the account page's "at the edge" column), on both stores."""

from accounts import edge


def test_get_many_answers_as_get_for_each(store):
    records = [edge.KeyRecord(f"{i:064x}", f"sk_live_{i:08d}", "active", 100 + i, 10, 1) for i in range(1, 2600)]
    store.publish(records[:2500])  # more than one chunk, and some never published
    wanted = [r.token_sha256 for r in reversed(records)] + ["f" * 64]
    many = store.get_many(wanted)
    assert list(many) == wanted
    assert many == {sha: store.get(sha) for sha in wanted}
    assert sum(record is not None for record in many.values()) == 2500
    assert store.get_many([]) == {}
