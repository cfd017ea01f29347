#!/usr/bin/env python
"""The metrics over a year of a million cases: the summary API and the admin's metrics page, over 30 and 365 days.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enforcement_metrics_bench python bench/metrics.py \\
        [--cases 1000000] [--rounds 5] [--keep] [--reuse]

The scratch database named by DATABASE_URL (its name must contain "bench") is dropped if it exists, created,
migrated and filled by SQL ``generate_series`` with a year of history ending now: ``--cases`` cases (one in
``ACCOUNTS_PER_CASE`` accounts each; the last thousand open), three violations a case (12 rules, 5 sources, one
in eleven dismissed), an action a case (warning, throttle, suspension or termination, proposed by one of ten staff
members minutes to hours after the opening, suspensions and terminations approved by another), a
``case.reviewed`` audit event for every other case, and an appeal for one action in twenty (one in two of them
overturned). At the default scale that is 1M cases, 3M violations, 1M actions, 0.5M audit events and 50,000
appeals; it builds in about 7 minutes on a loaded 2-core machine, and the first roll-up takes 3 to 4 more (the
script prints how long). ``--keep`` keeps the database and ``--reuse`` measures one kept from an earlier run
without building it again (rolling it up first if it has no roll-up).

Then the daily roll-up is built as beat would the first time (every day with data), timed, and timed again for
what beat does every ``METRICS_ROLLUP_INTERVAL_SECONDS`` (yesterday and today). Then, each the median of
``--rounds`` (the first, cold, not counted), with the number of SQL queries:
- ``GET /api/v1/metrics/summary/`` over the last 30 and 365 days (in-process: the view, the JSON);
- ``GET /admin/metrics/?days=30`` and ``?days=365`` as a lead (in-process: the view and the template).
Target: each under 300 ms. And, once, ``GET /api/v1/sources/`` (each source's record over all its reports).

Biases: the history is regular (evenly spread in time, few distinct rules and sources), so the roll-up has about
as many rows a day as it would in life but no more; in-process, so no network or WSGI server; the database cache
warm after the first round.
"""

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scratch import configure, drop_database, scratch_postgres  # noqa: E402

configure(database_url="postgres://postgres@127.0.0.1:5432/enforcement_metrics_bench",
          var_dir="/tmp/var-bench-metrics")

ACCOUNTS_PER_CASE = 5
OPEN_CASES = 1000
STAFF = 10
SOURCES = ["abuse-detector", "fraud-model", "github-secret-scanning", "gate", "manual"]
TARGET_MS = 300

HISTORY_SQL = [
    # Accounts.
    """INSERT INTO accounts_account (public_id, name, email, status, created_at, updated_at)
       SELECT 'acct_mb' || lpad(g::text, 12, '0'), 'Bench ' || g, 'bench' || g || '@example.com', 'active', now(),
              now()
       FROM generate_series(1, %(accounts)s) g""",
    # Cases, ids 1..C, evenly over the year; the last OPEN_CASES still open (half of them due in the past).
    """INSERT INTO enforcement_case (id, account_id, status, severity, severity_rank, needs_lead_review, opened_at,
                                    closed_at, resolution, updated_at, review_due_at)
       SELECT g, %(first_account)s + g %% %(accounts)s,
              CASE WHEN g > %(cases)s - %(open)s THEN 'open' ELSE 'closed' END,
              (ARRAY['low', 'medium', 'high', 'critical'])[1 + g %% 4], g %% 4, false,
              %(t0)s + g * %(step)s * interval '1 second',
              CASE WHEN g <= %(cases)s - %(open)s
                   THEN %(t0)s + g * %(step)s * interval '1 second' + interval '1 hour' * (1 + g %% 48) END,
              '', now(),
              CASE WHEN g > %(cases)s - %(open)s
                   THEN %(t0)s + g * %(step)s * interval '1 second' + interval '1 hour' * (1 + g %% 3) END
       FROM generate_series(1, %(cases)s) g""",
    # Three violations a case, minutes apart.
    """INSERT INTO enforcement_violation (account_id, case_id, rule_id, severity, source, external_id, source_trusted,
                                         reported_by, reporter_kind, observed_at, reported_at, summary, evidence,
                                         status, dismissed_reason)
       SELECT %(first_account)s + ((v - 1) / 3 + 1) %% %(accounts)s, (v - 1) / 3 + 1,
              (%(rule_ids)s::bigint[])[1 + (((v - 1) / 3 + 1) * 7 + (v - 1) %% 3) %% %(rules)s],
              (ARRAY['low', 'medium', 'high', 'critical'])[1 + ((v - 1) / 3 + 1) %% 4],
              (%(sources)s::text[])[1 + ((v - 1) / 3 + 1) * ((v - 1) %% 3 + 1) %% 5], 'mb-' || v, false, 'bench',
              'token', ts, ts, 'Bench violation.', '{}'::jsonb,
              CASE WHEN v %% 11 = 0 THEN 'dismissed' ELSE 'open' END, ''
       FROM (SELECT v, %(t0)s + ((v - 1) / 3 + 1) * %(step)s * interval '1 second'
                       + ((v - 1) %% 3) * interval '7 minutes' AS ts
             FROM generate_series(1, 3 * %(cases)s) v) s""",
    # An action a closed case (ids as the cases'), proposed by staff; suspensions and terminations approved.
    """INSERT INTO enforcement_enforcementaction (id, case_id, account_id, kind, status, reason, act_first, overturned,
                                                 decided_under, requested_by_id, requested_by_label, approved_by_id,
                                                 approved_by_label, created_at, approved_at, applied_at, attempts,
                                                 last_error, updated_at)
       SELECT g, g, %(first_account)s + g %% %(accounts)s, kind,
              CASE WHEN g %% 40 = 0 THEN 'reverted' ELSE 'applied' END, 'Bench action.', false, g %% 40 = 0,
              jsonb_build_object('rules', jsonb_build_object(
                  (%(rule_codes)s::text[])[1 + (g * 7) %% %(rules)s], 1)),
              (%(staff)s::bigint[])[1 + g %% %(n_staff)s], 'bench',
              CASE WHEN approved THEN (%(staff)s::bigint[])[1 + (g + 1) %% %(n_staff)s] END, '',
              created, CASE WHEN approved THEN created + (g * 104729 %% 7200) * interval '1 second' END,
              created + CASE WHEN approved THEN (g * 104729 %% 7200) ELSE 0 END * interval '1 second', 0, '', now()
       FROM (SELECT g, (ARRAY['warning', 'throttle', 'suspend', 'terminate'])[1 + g %% 4] AS kind,
                    g %% 4 >= 2 AS approved,
                    %(t0)s + g * %(step)s * interval '1 second' + (g * 7919 %% 14400) * interval '1 second'
                        AS created
             FROM generate_series(1::bigint, %(cases)s - %(open)s) g) s""",
    # A case.reviewed event for every other closed case, with the deadline in force.
    """INSERT INTO enforcement_auditevent (created_at, actor_type, actor_user_id, actor_label, verb, target_type,
                                          target_id, case_id, account_id, before, after, note)
       SELECT opened + (g * 31 %% 3600) * interval '1 second', 'user',
              (%(staff)s::bigint[])[1 + g %% %(n_staff)s], 'bench', 'case.reviewed', 'case', g::text, g,
              %(first_account)s + g %% %(accounts)s,
              jsonb_build_object('review_due_at', to_char((opened + interval '1 hour') AT TIME ZONE 'UTC',
                                                          'YYYY-MM-DD"T"HH24:MI:SS"+00:00"')),
              '{"review_due_at": null}'::jsonb, ''
       FROM (SELECT g, %(t0)s + g * %(step)s * interval '1 second' AS opened
             FROM generate_series(2::bigint, %(cases)s - %(open)s, 2) g) s""",
    # An appeal for one action in twenty, decided a day after it was applied.
    """INSERT INTO enforcement_appeal (action_id, case_id, message, status, submitted_by_label, submitted_at,
                                      decided_by_id, decided_by_label, decided_at, decision_note)
       SELECT a.id, a.case_id, 'Bench appeal.', CASE WHEN a.id %% 40 = 0 THEN 'overturned' ELSE 'upheld' END, 'bench',
              a.applied_at + interval '1 hour', (%(staff)s::bigint[])[1 + (a.id + 3) %% %(n_staff)s], 'bench',
              a.applied_at + interval '1 day', ''
       FROM enforcement_enforcementaction a WHERE a.id %% 20 = 0""",
]


def build_history(cases: int) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.utils import timezone

    from enforcement.actors import ROLE_LEAD
    from enforcement.models import Rule

    now = timezone.now()
    lead_group = Group.objects.get(name=ROLE_LEAD)
    staff = []
    for n in range(STAFF):
        user = get_user_model().objects.create_user(f"bench.staff{n}", f"staff{n}@example.com", "x", is_staff=True)
        user.groups.add(lead_group)
        staff.append(user.pk)
    rules = list(Rule.objects.order_by("pk").values_list("pk", "code"))
    accounts = max(OPEN_CASES + 1, cases // ACCOUNTS_PER_CASE)
    params = {
        "accounts": accounts, "cases": cases, "open": OPEN_CASES, "t0": now - timedelta(days=365),
        "step": 365 * 86400 / cases, "rule_ids": [pk for pk, _ in rules], "rule_codes": [code for _, code in rules],
        "rules": len(rules), "sources": SOURCES, "staff": staff, "n_staff": len(staff),
    }
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(HISTORY_SQL[0], params)
        cursor.execute("SELECT min(id) FROM accounts_account WHERE public_id LIKE 'acct_mb%%'")
        params["first_account"] = cursor.fetchone()[0]
        for sql in HISTORY_SQL[1:]:
            cursor.execute(sql, params)
            print(f"  {sql.split()[2]}: {cursor.rowcount:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
        for table in ("enforcement_case", "enforcement_enforcementaction"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        cursor.execute("ANALYZE")
    print(f"history: {cases:,} cases, {3 * cases:,} violations, {cases - OPEN_CASES:,} actions over 365 days; "
          f"{accounts:,} accounts, {STAFF} staff")


def measure(fn, rounds: int) -> tuple[float, int, object]:
    """Median milliseconds of ``rounds`` calls after a first (cold) one, and the queries of one call."""
    from django.db import connection

    queries = []  # counted as they are sent (the request signals clear Django's own query log)

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        result = fn()
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings), len(queries), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--reuse", action="store_true", help="measure the database kept by an earlier --keep run")
    args = parser.parse_args()

    url = scratch_postgres("bench/metrics.py", reuse=args.reuse)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone
    from rest_framework.test import APIClient

    from enforcement import services
    from enforcement.actors import SYSTEM
    from enforcement.models import Case, DailyFigure, EnforcementAction, Source, Violation

    try:
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        if not args.reuse:
            build_history(args.cases)
            print(f"setup: {time.perf_counter() - started:.0f} s")
        if not DailyFigure.objects.exists():
            started = time.perf_counter()
            days = services.metrics_rollup()
            print(f"roll-up of every day with data ({len(days)} days, as beat's first run): "
                  f"{time.perf_counter() - started:.0f} s, {DailyFigure.objects.count():,} rows")
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE enforcement_dailyfigure")  # as autovacuum would, after such a batch
        print(f"database: {connection.vendor} {connection.pg_version // 10000}; {Case.objects.count():,} cases, "
              f"{Violation.objects.count():,} violations, {EnforcementAction.objects.count():,} actions; "
              f"rounds: {args.rounds} (medians)")
        beat_ms, beat_queries, _ = measure(services.metrics_rollup, args.rounds)
        print(f"roll-up of yesterday and today (beat, every 5 min): {beat_ms:.0f} ms ({beat_queries} queries)")

        _, raw = services.service_token_create(actor=SYSTEM, name=f"bench-metrics-{time.time_ns()}",
                                               scopes=["audit:read"])
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        staff = Client()
        staff.force_login(get_user_model().objects.get(username="bench.staff0"))
        now = timezone.now()
        figures = {}
        for days in (30, 365):
            since = (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

            def summary(since=since):
                response = api.get(f"/api/v1/metrics/summary/?since={since}")
                assert response.status_code == 200, response.content[:300]
                return response.json()

            def page(days=days):
                response = staff.get(f"/admin/metrics/?days={days}")
                assert response.status_code == 200, response.content[:300]
                return response

            ms, queries, body = measure(summary, args.rounds)
            figures[f"GET /api/v1/metrics/summary/ ({days} days)"] = (ms, queries)
            print(f"GET /api/v1/metrics/summary/ ({days} days): {ms:.0f} ms ({queries} queries); "
                  f"{body['reports']['total']:,} reports, {body['review']['reviewed']:,} first reviews, "
                  f"{body['actions']['by_kind']}")
            ms, queries, _ = measure(page, args.rounds)
            figures[f"GET /admin/metrics/ ({days} days)"] = (ms, queries)
            print(f"GET /admin/metrics/?days={days}: {ms:.0f} ms ({queries} queries)")
        slowest = max(ms for ms, _ in figures.values())
        print(f"slowest: {slowest:.0f} ms (target < {TARGET_MS} ms)")

        # Not a metrics page, but the detectors' record is read beside them: every report's outcome, counted.
        for name in SOURCES:
            Source.objects.get_or_create(name=name, defaults={"reserved": True})
        _, raw = services.service_token_create(actor=SYSTEM, name=f"bench-sources-{time.time_ns()}",
                                               scopes=["cases:read"])
        reader = APIClient()
        reader.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        ms, queries, response = measure(lambda: reader.get("/api/v1/sources/"), 1)
        assert response.status_code == 200, response.content[:300]
        print(f"GET /api/v1/sources/ (every report's outcome, counted live): {ms:.0f} ms ({queries} queries)")
    finally:
        connection.close()
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
