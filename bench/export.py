#!/usr/bin/env python
"""Time the audit CSV export's first row over 5,000,000 audit events (a year of them, built with SQL's
``generate_series`` in a scratch PostgreSQL database), through the admin view as an auditor downloads it.

    python bench/export.py [--events 5000000] [--database-url postgres://postgres@127.0.0.1:5432/enforcement_sweep_bench]

The database is dropped and built afresh (its name must contain "bench"). Prints the time to the first row
(target: under a second), the pace over the first rows, and that closing the download runs no further query.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import scratch  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/enforcement_sweep_bench"

# Inserting is what the audit log allows (its trigger refuses UPDATE and DELETE). Timestamps repeat (a thousand
# events share each second) so that the keyset's ties at equal times are exercised as well.
BUILD = """
INSERT INTO enforcement_auditevent (created_at, actor_type, actor_label, verb, target_type, target_id, note,
                                    before, after)
SELECT now() - interval '365 days' + (g / 1000) * interval '6307 ms',
       'system', 'system', (ARRAY['case.opened', 'violation.reported', 'action.applied', 'case.assigned'])[g %% 4 + 1],
       'case', (g %% 100000)::text, 'bench event ' || g, NULL, jsonb_build_object('status', 'open')
FROM generate_series(1, %(events)s) AS g;
ANALYZE enforcement_auditevent;
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="export-bench-"))
    for name in ("REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    os.environ["DATABASE_URL"] = args.database_url
    scratch.configure(database_url=args.database_url, var_dir=str(base / "var"))
    scratch.drop_database(args.database_url)
    scratch.ensure_database(args.database_url)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from tests.factories import UserFactory

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(BUILD, {"events": args.events})
    print(f"built {args.events:,} audit events in {time.perf_counter() - started:.1f} s")

    client = Client()
    client.force_login(UserFactory.create(username="bench-auditor", role="tns_auditor"))
    since = timezone.now() - timedelta(days=365, minutes=1)
    firsts = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        response = client.get("/admin/enforcement/auditevent/export/", {"created_at__gte": str(since)})
        assert response.status_code == 200, response.status_code
        stream = iter(response.streaming_content)
        next(stream)  # the header line
        first = next(stream)
        firsts.append(time.perf_counter() - started)
        assert first.split(b",")[0].isdigit()
        response.close()
    print(f"audit export first row: {statistics.median(firsts) * 1000:.0f} ms median of {args.rounds} "
          f"({args.events:,} events in the range)")

    response = client.get("/admin/enforcement/auditevent/export/", {"created_at__gte": str(since)})
    stream = iter(response.streaming_content)
    rows, started = 0, time.perf_counter()
    for _ in stream:
        rows += 1
        if rows > 200_000:
            break
    elapsed = time.perf_counter() - started
    with CaptureQueriesContext(connection) as queries:
        response.close()  # the client went away
        leftover = sum(1 for _ in stream)
    print(f"  then {rows - 1:,} rows in {elapsed:.1f} s ({(rows - 1) / elapsed:,.0f} rows/s); "
          f"closed: {len(queries)} queries and {leftover} rows after")


if __name__ == "__main__":
    main()
