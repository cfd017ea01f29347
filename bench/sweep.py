#!/usr/bin/env python
"""Time one sweep over a backlog of 100,000 due actions: half scheduled and never applied (their messages lost),
half applied and past their expiry, built with SQL (``generate_series``) in a scratch PostgreSQL database.

    python bench/sweep.py [--actions 100000] [--database-url postgres://postgres@127.0.0.1:5432/enforcement_sweep_bench]

The database is dropped and built afresh (its name must contain "bench"). The sweep sends its chunks to a
private Redis this script starts (a real broker, nobody consuming; also the edge store and cache). Prints
``sweep: <n> due actions in <seconds> s`` (the target: within one sweep interval, 60 s), the next run's time
(nothing is sent again within the back-off), and what one worker process does with one chunk of each kind
(the tasks that apply and expire), in actions a second.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import scratch  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/enforcement_sweep_bench"

BUILD = """
INSERT INTO accounts_account (public_id, name, email, status, created_at, updated_at)
SELECT 'acct_sweep' || lpad(g::text, 10, '0'), 'Sweep ' || g, 'sweep' || g || '@example.com', 'active',
       now(), now()
FROM generate_series(1, %(accounts)s) AS g;

INSERT INTO enforcement_case (account_id, status, severity, severity_rank, needs_lead_review, opened_at,
                              resolution, updated_at)
SELECT id, 'open', 'high', 3, false, now() - interval '2 days', '', now() FROM accounts_account;

-- Half scheduled an hour ago and never applied (the message was lost), half throttles past their expiry;
-- the due times spread over the last hour so that "earliest due first" has an order to follow.
INSERT INTO enforcement_enforcementaction
    (account_id, case_id, kind, status, reason, act_first, overturned, requested_by_label, approved_by_label,
     created_at, scheduled_at, applied_at, expires_at, rate_limit_per_minute, attempts, last_error, updated_at,
     decided_under)
SELECT c.account_id, c.id,
       CASE WHEN g %% 2 = 0 THEN 'suspend' ELSE 'throttle' END,
       CASE WHEN g %% 2 = 0 THEN 'scheduled' ELSE 'applied' END,
       'bench', false, false, 'bench', '',
       now() - interval '2 hours', now() - interval '1 hour' + g * interval '30 ms',
       CASE WHEN g %% 2 = 0 THEN NULL ELSE now() - interval '2 hours' END,
       CASE WHEN g %% 2 = 0 THEN NULL ELSE now() - interval '1 hour' + g * interval '30 ms' END,
       CASE WHEN g %% 2 = 0 THEN NULL ELSE 10 END,
       0, '', now(), '{}'::jsonb
FROM generate_series(1, %(actions)s) AS g
JOIN enforcement_case c ON c.account_id = (SELECT min(id) FROM accounts_account) + (g %% %(accounts)s);
ANALYZE;
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=100_000, help="due actions (half lost applies, half expiries)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()

    from tests.faults.servers import PrivateRedis

    base = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    broker = PrivateRedis(base / "redis")
    broker.start()
    try:
        os.environ["CELERY_BROKER_URL"] = broker.url(1)
        os.environ["REDIS_URL"] = broker.url(0)  # the edge store, as in production
        os.environ["CACHE_URL"] = broker.url(2)
        os.environ["DATABASE_URL"] = args.database_url
        scratch.configure(database_url=args.database_url, var_dir=str(base / "var"))
        scratch.drop_database(args.database_url)
        scratch.ensure_database(args.database_url)
        run(args)
    finally:
        broker.kill()


def run(args) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from enforcement import services, tasks
    from enforcement.models import EnforcementAction

    call_command("migrate", verbosity=0)
    accounts = max(1, args.actions // 10)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(BUILD, {"accounts": accounts, "actions": args.actions})
    print(f"built {args.actions:,} due actions on {accounts:,} accounts in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    report = services.sweep()
    elapsed = time.perf_counter() - started
    handled = len(report.requeued_actions) + len(report.expired_actions)
    chunk = settings.ENFORCEMENT["SWEEP_CHUNK_SIZE"]
    print(f"sweep: {handled} due actions in {elapsed:.1f} s")
    print(f"  {len(report.requeued_actions):,} lost applies and {len(report.expired_actions):,} expiries handed to "
          f"tasks in chunks of {chunk} (SWEEP_BATCH_SIZE {settings.ENFORCEMENT['SWEEP_BATCH_SIZE']:,})")

    started = time.perf_counter()
    again = services.sweep()
    print(f"  the next run, within the back-off: {len(again.requeued_actions) + len(again.expired_actions)} sent "
          f"again in {time.perf_counter() - started:.2f} s")

    # What a worker then does with a chunk of each (in this process, on the same database).
    for task, ids in ((tasks.expire_actions, report.expired_actions[:chunk]),
                      (tasks.apply_actions, report.requeued_actions[:chunk])):
        started = time.perf_counter()
        task(ids)
        elapsed = time.perf_counter() - started
        print(f"  {task.name.rsplit('.', 1)[1]}: a chunk of {len(ids)} in {elapsed:.1f} s "
              f"({len(ids) / elapsed:,.0f} actions/s in one worker process)")
    left = EnforcementAction.objects.filter(status__in=["scheduled"]).count()
    print(f"  still scheduled after one chunk applied: {left:,} (the workers' queue)")


if __name__ == "__main__":
    main()
