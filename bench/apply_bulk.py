#!/usr/bin/env python
"""Time suspending an account with 10,000 keys through `action_apply`, against one raw SQL UPDATE.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enf_bench python bench/apply_bulk.py [--keys 10000] [--rounds 5]

The database named by DATABASE_URL is migrated and gets a bench account; use a scratch database.
Target: apply / raw <= 3.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models import Max

    from accounts.models import Account, APIKey
    from enforcement import services
    from enforcement.actors import SYSTEM, Actor
    from enforcement.models import Rule
    from lib import queue
    from tests.factories import UserFactory

    call_command("migrate", verbosity=0)
    queue.enqueue_on_commit = lambda task, *a: None  # time the service alone, not the broker
    lead_user = UserFactory.create(username=f"bench-lead-{time.time_ns()}", role="tns_lead")
    lead = Actor.for_user(lead_user)

    public_id = f"acct_bench{time.time_ns() % 10**12:012d}"
    account = Account.objects.create(public_id=public_id, name="Bench", email="bench@example.com")
    start = (APIKey.objects.aggregate(m=Max("id"))["m"] or 0) + 1
    APIKey.objects.bulk_create(
        [
            APIKey(account=account, kind="secret", prefix=f"sk_live_{(start + i) % 10**8:08d}",
                   token_sha256=f"{start + i:064x}", base_rate_limit_per_minute=1000,
                   base_ip_rate_limit_per_minute=100)
            for i in range(args.keys)
        ],
        batch_size=2000,
    )
    rule = Rule.objects.get(code="secrets-in-events")
    case = services.violation_report(actor=SYSTEM, account=account, rule=rule, source="bench",
                                     external_id=public_id, summary="bench").violation.case

    apply_times, raw_times = [], []
    for _ in range(args.rounds):
        action = services.action_propose(actor=lead, case_id=case.pk, kind="suspend", reason="bench")
        t0 = time.perf_counter()
        services.action_apply(action_id=action.pk)
        apply_times.append(time.perf_counter() - t0)
        assert APIKey.objects.filter(account=account, status="suspended").count() == args.keys
        services.action_revert(actor=lead, action_id=action.pk, reason="bench")
        assert not APIKey.objects.filter(account=account, status="suspended").exists()

        t0 = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE accounts_apikey SET status = 'suspended', state_version = state_version + 1, "
                "state_changed_at = CURRENT_TIMESTAMP WHERE account_id = %s",
                [account.pk],
            )
            assert cursor.rowcount == args.keys
        raw_times.append(time.perf_counter() - t0)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE accounts_apikey SET status = 'active' WHERE account_id = %s", [account.pk])

    apply_ms = statistics.median(apply_times) * 1000
    raw_ms = statistics.median(raw_times) * 1000
    print(f"database: {connection.vendor}, keys: {args.keys}, rounds: {args.rounds} (medians)")
    print(f"action_apply (suspend account): {apply_ms:8.1f} ms")
    print(f"raw SQL UPDATE of the same rows: {raw_ms:8.1f} ms")
    print(f"ratio: {apply_ms / raw_ms:.2f} (target <= 3)")


if __name__ == "__main__":
    main()
