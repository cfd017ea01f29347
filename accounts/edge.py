"""The edge store the ingest path reads: each key's effective state, published on commit.

This module is the seam; the Redis-backed store fills it in.
"""

from django.db import transaction


def publish_account_on_commit(account_id: int) -> None:
    transaction.on_commit(lambda: None)
