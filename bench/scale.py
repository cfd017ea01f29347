#!/usr/bin/env python
"""Every console page and API list at a million cases: the data set of a large platform, built in SQL, then
the median time and the query count of each page.

    REDIS_URL=redis://127.0.0.1:6379/0 python bench/scale.py [--scale 1] [--runs 3] [--due 100000] [--reuse]
        [--no-sweep | --sweep-only] [--only TEXT ...]

At ``--scale 1`` (the default): 200k accounts, 600k keys, 1M cases of which 50k open, 3M violations, 1M actions,
5M audit events, 1M notifications; one account with 5,000 keys, one case with 2,000 violations, one account with
500 actions in force, and ``--due`` actions the sweep finds due (half stuck scheduled, half expiring). The database
(DATABASE_URL, default ``postgres://postgres@127.0.0.1:5432/enf_bench_scale``; its name must contain "bench") is
dropped and built again, unless ``--reuse`` finds it built. Rows are written by a few ``INSERT ... SELECT
generate_series`` statements with the secondary indexes dropped (made again after loading) and foreign-key
triggers off, then VACUUM ANALYZEd.

Prints the build time, then one line per operation, ``<operation>: <median> ms (<queries> queries)``: each page
through Django's test client in-process (a superuser; API lists with a service token), the median of ``--runs``
runs after one warm-up. Last, ``sweep: <n> due actions in <seconds> s`` (the sweep service, once). Target: every
operation under 300 ms, the sweep within 60 s.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.scratch import configure, drop_database, ensure_database  # noqa: E402

configure(database_url="postgres://postgres@127.0.0.1:5432/enf_bench_scale", var_dir="/tmp/var-bench-scale")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "0")
os.environ.setdefault("STAFF_2FA", "optional")

TABLES = ["accounts_account", "accounts_apikey", "enforcement_case", "enforcement_violation",
          "enforcement_enforcementaction", "enforcement_enforcementaction_keys", "enforcement_appeal",
          "enforcement_notification", "enforcement_auditevent"]
BIG_ACCOUNT, STANDING_ACCOUNT = 1, 2  # ids of the special rows; the big case is the newest
BIG_KEYS, BIG_CASE_VIOLATIONS, STANDING_ACTIONS = 5000, 2000, 500
BIG_ACCOUNT_ACTIONS, KEYS_PER_BIG_ACTION = 20, 100
STAFF = 10


# --------------------------------------------------------------------------- the data set


def sizes(scale: float, due: int) -> dict:
    n = {name: max(int(count * scale), minimum) for name, count, minimum in (
        ("accounts", 200_000, 100), ("keys", 600_000, BIG_KEYS + 300), ("cases", 1_000_000, 500),
        ("open", 50_000, 50), ("violations", 3_000_000, BIG_CASE_VIOLATIONS + 1000),
        ("actions", 1_000_000, 500), ("audit", 5_000_000, 1000), ("notifications", 1_000_000, 500),
    )}
    n["due"] = min(due, (min(n["actions"], n["cases"]) - n["open"]) // 2 * 2)
    return n


def build(n: dict) -> None:
    """The rows, by SQL alone (bar the staff users and the token, made by the services beforehand)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT id FROM enforcement_rule ORDER BY id")
        rules = [row[0] for row in cur.fetchall()]
        cur.execute("SELECT id FROM auth_user WHERE username LIKE 'bench-agent-%%' ORDER BY id")
        staff = [row[0] for row in cur.fetchall()]
        # Secondary indexes go, and come back once the rows are in (faster than keeping them up row by row).
        cur.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)", [TABLES])
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        cur.execute("SET session_replication_role = replica")  # no foreign-key triggers while loading
        cur.execute("SET maintenance_work_mem = '256MB'")
        params = {**n, "big_keys": BIG_KEYS, "big_case_v": BIG_CASE_VIOLATIONS, "rules": rules, "staff": staff,
                  "standing": STANDING_ACTIONS, "big_actions": BIG_ACCOUNT_ACTIONS, "per_action": KEYS_PER_BIG_ACTION}
        for label, statement in STATEMENTS:
            t0 = time.perf_counter()
            cur.execute(statement, params)
            print(f"  {label}: {cur.rowcount} rows, {time.perf_counter() - t0:.1f} s", flush=True)
        cur.execute("SET session_replication_role = DEFAULT")
        t0 = time.perf_counter()
        for _, definition in indexes:
            cur.execute(definition)
        print(f"  {len(indexes)} indexes: {time.perf_counter() - t0:.1f} s", flush=True)
        for table in TABLES:
            cur.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT COALESCE(MAX(id), 1) FROM "
                        f"{table}))", [table])
    from enforcement.services.detectors import tallies_rebuild

    t0 = time.perf_counter()
    tallies_rebuild()  # the reports' outcomes and the sources' tallies, as the services would have kept them
    print(f"  source tallies: {time.perf_counter() - t0:.1f} s", flush=True)
    with connection.cursor() as cur:
        t0 = time.perf_counter()
        cur.execute("VACUUM ANALYZE")  # as autovacuum leaves a live database: statistics, the visibility map
        print(f"  vacuum analyze: {time.perf_counter() - t0:.1f} s", flush=True)


# Open cases are the newest (the last ``open`` ids, one per account), the rest closed. Case c belongs to account
# ((cases - c) % accounts) + 1: the newest case (the big one, with the many violations) is account 1's (the many
# keys), the one before it account 2's (the many actions in force).
CASE_OPENED = ("(CASE WHEN {c} > %(cases)s - %(open)s THEN now() - make_interval(hours => ({c} %% 720)::int) "
               "ELSE now() - make_interval(days => 3 + ({c} %% 700)::int) END)")
ACCOUNT_OF = "((%(cases)s - ({c})) %% %(accounts)s + 1)"

STATEMENTS = [
    ("accounts", """
INSERT INTO accounts_account (id, public_id, name, email, status, created_at, updated_at)
SELECT i, 'acct_' || substr(md5(i::text), 1, 16), 'Company ' || i || ' ' || (ARRAY['Analytics','Labs','Media',
       'Retail','Health','Games'])[1 + i %% 6], 'ops' || i || '@company' || i || '.example', 'active',
       now() - make_interval(days => (i %% 1500)::int), now()
FROM generate_series(1, %(accounts)s) i"""),
    ("keys", """
INSERT INTO accounts_apikey (id, account_id, kind, prefix, token_sha256, label, base_rate_limit_per_minute,
       base_ip_rate_limit_per_minute, status, rate_limit_per_minute, ip_rate_limit_per_minute, state_version,
       revoked_reason, created_at, updated_at)
SELECT i, CASE WHEN i <= %(big_keys)s THEN 1 ELSE 2 + (i - %(big_keys)s - 1) %% (%(accounts)s - 1) END,
       (ARRAY['publishable','secret','restricted'])[1 + i %% 3],
       (ARRAY['pk_live_','sk_live_','rk_live_'])[1 + i %% 3] || lpad(to_hex(i), 8, '0'),
       md5(i::text) || md5((-i)::text), '', 1000, 100, 'active', 1000, 100, 1, '', now() - interval '30 days', now()
FROM generate_series(1, %(keys)s) i"""),
    ("cases", """
INSERT INTO enforcement_case (id, account_id, status, severity, severity_rank, review_due_at, assignee_id,
       needs_lead_review, opened_at, closed_at, resolution, updated_at)
SELECT c, """ + ACCOUNT_OF.format(c="c") + """,
       CASE WHEN c <= %(cases)s - %(open)s THEN 'closed' ELSE (ARRAY['open','open','open','open','open','open',
            'awaiting_customer','awaiting_approval','actioned','appealed'])[1 + c %% 10] END,
       (ARRAY['low','medium','high','critical'])[1 + c %% 4], c %% 4,
       CASE WHEN c <= %(cases)s - %(open)s OR c %% 10 = 8 THEN NULL
            ELSE now() + make_interval(hours => (c %% 200)::int - 50) END,
       CASE WHEN c > %(cases)s - %(open)s AND c %% 10 = 0
            THEN (%(staff)s::int[])[1 + (c / 10) %% cardinality(%(staff)s::int[])] END,
       c > %(cases)s - %(open)s AND c %% 97 = 0, """ + CASE_OPENED.format(c="c") + """,
       CASE WHEN c <= %(cases)s - %(open)s THEN """ + CASE_OPENED.format(c="c") + """ + interval '3 days' END,
       CASE WHEN c <= %(cases)s - %(open)s THEN 'Resolved.' ELSE '' END, now()
FROM generate_series(1, %(cases)s) c"""),
    ("violations", """
INSERT INTO enforcement_violation (id, case_id, account_id, api_key_id, rule_id, severity, source, external_id,
       source_trusted, reported_by, reporter_kind, observed_at, reported_at, summary, evidence, status,
       dismissed_reason)
SELECT v, c, """ + ACCOUNT_OF.format(c="c") + """, NULL,
       (%(rules)s::bigint[])[1 + v %% cardinality(%(rules)s::bigint[])],
       (ARRAY['low','medium','high','critical'])[1 + (v / 7) %% 4], 'bench-detector-' || v %% 5, 'v' || v, false,
       'token:bench-detector', 'token', opened + make_interval(secs => v %% 3600),
       opened + make_interval(secs => v %% 3600),
       'Bench report ' || v || ': 1800 events/min from one IP, above the published limit.',
       jsonb_build_object('ip', '203.0.113.' || v %% 250, 'events_per_minute', 1800 + v %% 100,
                          'window', '2026-01-01T00:00Z/PT5M'), 'open', ''
FROM (SELECT v, CASE WHEN v > %(violations)s - %(big_case_v)s THEN %(cases)s ELSE 1 + (v - 1) %% %(cases)s END AS c
      FROM generate_series(1, %(violations)s) v) s,
     LATERAL (SELECT """ + CASE_OPENED.format(c="s.c") + """ AS opened) o"""),
    # One action per case; the sweep's due ones (stuck scheduled, then expiring applied) are the oldest cases'.
    ("actions", """
INSERT INTO enforcement_enforcementaction (id, case_id, account_id, kind, status, reason, rate_limit_per_minute,
       expires_at, act_first, overturned, decided_under, requested_by_label, approved_by_label, created_at,
       scheduled_at, applied_at, ended_at, attempts, last_error, updated_at)
SELECT a, a, """ + ACCOUNT_OF.format(c="a") + """, kind,
       CASE WHEN a <= %(due)s / 2 THEN 'scheduled'
            WHEN a <= %(due)s THEN 'applied'
            WHEN a <= %(cases)s - %(open)s THEN (ARRAY['expired','reverted','expired','cancelled'])[1 + a %% 4]
            ELSE (ARRAY['cancelled','cancelled','cancelled','cancelled','cancelled','cancelled','applied',
                        'awaiting_approval','applied','applied'])[1 + a %% 10] END,
       'Bench: policy breach confirmed.', CASE WHEN kind = 'throttle' THEN 100 END,
       CASE WHEN a > %(due)s / 2 AND a <= %(due)s THEN now() - interval '1 hour' END, false, false, '{}'::jsonb,
       'bench-agent', '', created, CASE WHEN a <= %(due)s THEN now() - interval '2 hours' END,
       created, CASE WHEN a > %(due)s AND a <= %(cases)s - %(open)s THEN created + interval '2 days' END, 0, '',
       now()
FROM (SELECT a, (ARRAY['warning','throttle','suspend','terminate'])[1 + a %% 4] AS kind,
             """ + CASE_OPENED.format(c="a") + """ + interval '1 hour' AS created
      FROM generate_series(1, LEAST(%(actions)s, %(cases)s)) a) s"""),
    ("actions in force on one account (standing) and on the big account", """
INSERT INTO enforcement_enforcementaction (id, case_id, account_id, kind, status, reason, rate_limit_per_minute,
       act_first, overturned, decided_under, requested_by_label, approved_by_label, created_at, applied_at,
       attempts, last_error, updated_at)
SELECT %(cases)s + i, CASE WHEN i <= %(standing)s THEN %(cases)s - 1 ELSE %(cases)s END,
       CASE WHEN i <= %(standing)s THEN 2 ELSE 1 END,
       CASE WHEN i %% 2 = 0 THEN 'throttle' ELSE 'suspend' END, 'applied', 'Bench: in force.',
       CASE WHEN i %% 2 = 0 THEN 50 + i %% 50 END, false, false, '{}'::jsonb, 'bench-agent', '',
       now() - make_interval(mins => i), now() - make_interval(mins => i), 0, '', now()
FROM generate_series(1, %(standing)s + %(big_actions)s) i"""),
    ("action keys", """
INSERT INTO enforcement_enforcementaction_keys (enforcementaction_id, apikey_id)
SELECT %(cases)s + i, k.ids[1 + i %% cardinality(k.ids)] FROM generate_series(1, %(standing)s) i,
       (SELECT array_agg(id ORDER BY id) AS ids FROM accounts_apikey WHERE account_id = 2) k
UNION ALL
SELECT %(cases)s + %(standing)s + j, 1 + ((j - 1) * %(per_action)s + k) %% %(big_keys)s
FROM generate_series(1, %(big_actions)s) j, generate_series(0, %(per_action)s - 1) k"""),
    ("appeals", """
INSERT INTO enforcement_appeal (id, action_id, case_id, message, status, submitted_by_label, submitted_at,
       decided_by_label, decision_note, due_at)
SELECT a, a, a, 'We fixed it, please restore our keys.',
       CASE WHEN a > %(cases)s - %(open)s THEN 'pending' ELSE 'upheld' END,
       'customer', """ + CASE_OPENED.format(c="a") + """ + interval '1 day', '', '',
       """ + CASE_OPENED.format(c="a") + """ + interval '4 days'
FROM generate_series(1, LEAST(%(actions)s, %(cases)s)) a WHERE a %% 100 = 9"""),
    ("notifications", """
INSERT INTO enforcement_notification (id, event_key, template, audience, recipient, context, subject, status,
       attempts, last_error, message_id, created_at, sent_at, case_id, action_id, account_id)
SELECT n, 'bench:' || n, 'action_applied', 'customer', 'ops' || acct || '@company' || acct || '.example',
       '{}'::jsonb, 'Your API keys', CASE WHEN n %% 200 = 0 THEN 'failed' ELSE 'sent' END, 1,
       CASE WHEN n %% 200 = 0 THEN 'SMTP 550' ELSE '' END, '', created, CASE WHEN n %% 200 <> 0 THEN created END,
       c, CASE WHEN c <= %(actions)s THEN c END, acct
FROM (SELECT n, c, """ + ACCOUNT_OF.format(c="c") + """ AS acct, """ + CASE_OPENED.format(c="c") + """
             + interval '2 hours' AS created
      FROM (SELECT n, 1 + (n - 1) %% %(cases)s AS c FROM generate_series(1, %(notifications)s) n) s) t"""),
    ("audit events", """
INSERT INTO enforcement_auditevent (id, created_at, actor_type, actor_label, verb, target_type, target_id, before,
       after, note, case_id, account_id)
SELECT e, now() - make_interval(secs => (%(audit)s - e) * 12), CASE WHEN e %% 3 = 0 THEN 'system' ELSE 'user' END,
       CASE WHEN e %% 3 = 0 THEN 'system' ELSE 'bench-agent-' || e %% 10 END, verb, split_part(verb, '.', 1),
       c::text, CASE WHEN verb = 'case.assigned' THEN '{"assignee": null}'::jsonb END,
       CASE WHEN verb = 'case.assigned' THEN jsonb_build_object('assignee', 'bench-agent-' || e %% 10) END, '', c,
       """ + ACCOUNT_OF.format(c="c") + """
FROM (SELECT e, 1 + (e - 1) %% %(cases)s AS c, (ARRAY['case.opened','violation.reported','action.applied',
             'case.assigned','notification.sent'])[1 + e %% 5] AS verb
      FROM generate_series(1, %(audit)s) e) s"""),
]


def prepare(args) -> tuple[dict, float | None]:
    """The database built (or reused); the build time in seconds (None when reused)."""
    import psycopg

    url = os.environ["DATABASE_URL"]
    n = sizes(args.scale, args.due)
    if args.reuse:
        try:
            with psycopg.connect(url) as conn:
                built = conn.execute("SELECT count(*) FROM enforcement_case").fetchone()[0] >= n["cases"]
        except psycopg.Error:
            built = False
        if built:
            setup_django()
            from django.core.management import call_command

            call_command("migrate", verbosity=0)  # indexes added since the build are made on the rows there
            rearm_sweep(n)
            return n, None
    drop_database(url)
    ensure_database(url)
    t0 = time.perf_counter()
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    make_staff()
    build(n)
    return n, time.perf_counter() - t0


def setup_django() -> None:
    import logging

    import django

    django.setup()
    from django.db import connection

    logging.getLogger("axes").setLevel(logging.WARNING)  # not a line per sign-in among the figures

    if connection.vendor != "postgresql":
        raise SystemExit("bench/scale.py measures PostgreSQL: set DATABASE_URL to a postgres:// database.")


def make_staff() -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from enforcement.actors import ROLE_AGENT

    users = get_user_model()
    agents = Group.objects.get(name=ROLE_AGENT)
    for i in range(STAFF):
        user = users.objects.create_user(f"bench-agent-{i}", f"agent{i}@millimetric.ai", is_staff=True)
        user.groups.add(agents)
    users.objects.create_superuser("bench-lead", "lead@millimetric.ai", None)


def rearm_sweep(n: dict) -> None:
    """A reused database has had its due actions swept: make them due again, exactly ``--due`` of them (the
    oldest cases' actions; any others left due by an earlier build or run end as expired)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "UPDATE enforcement_enforcementaction SET status = 'expired', ended_at = now() WHERE id > %(due)s "
            "AND id <= %(cases)s - %(open)s AND (status = 'scheduled' OR (status = 'applied' AND expires_at <= "
            "now()))", n)
        cur.execute(
            "UPDATE enforcement_enforcementaction SET status = CASE WHEN id <= %(due)s / 2 THEN 'scheduled' "
            "ELSE 'applied' END, ended_at = NULL, expires_at = CASE WHEN id > %(due)s / 2 THEN now() - interval "
            "'1 hour' END, scheduled_at = now() - interval '2 hours' WHERE id <= %(due)s", n)


# --------------------------------------------------------------------------- measuring


def measure(label: str, fn, runs: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    fn()  # warm-up: caches, the plan, the pages read from disk
    times, queries = [], 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        queries = len(captured)
    print(f"{label}: {statistics.median(times):.0f} ms ({queries} queries)", flush=True)


def get(client, url: str):
    def run():
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"GET {url}: {response.status_code} {response.content[:300]!r}")
        return response
    return run


def first_csv_row(client, url: str):
    def run():
        response = client.get(url)
        assert response.status_code == 200 and response.streaming, response.status_code
        chunks = iter(response.streaming_content)
        lines = b""
        while lines.count(b"\n") < 2:  # the header, then the first row
            lines += next(chunks)
        response.close()
    return run


def operations(n: dict, client, api) -> list[tuple[str, object]]:
    from django.contrib.auth import get_user_model

    from accounts.models import Account, APIKey

    agent = get_user_model().objects.filter(username="bench-agent-3").values_list("pk", flat=True).get()
    some = Account.objects.get(pk=min(n["open"], n["accounts"]) // 2 + 1)  # an account with an open case
    big_case, typical_case = n["cases"], n["cases"] - n["open"] // 3  # both open
    key = APIKey.objects.filter(account=some).order_by("pk").first()
    standing = Account.objects.get(pk=STANDING_ACCOUNT)
    queue = "/admin/enforcement/case/"
    ops = [
        ("front page", "/admin/"),
        ("queue default", queue),
        ("queue status=all", f"{queue}?status=all"),
        ("queue status=closed", f"{queue}?status=closed"),
        ("queue status=awaiting_approval", f"{queue}?status=awaiting_approval"),
        ("queue severity=critical", f"{queue}?severity=critical"),
        ("queue rule=spam-fraud", f"{queue}?rule=spam-fraud"),
        ("queue rule=security-research status=all", f"{queue}?rule=security-research&status=all"),
        ("queue assignee=me", f"{queue}?assignee=me"),
        ("queue assignee=none", f"{queue}?assignee=none"),
        ("queue assignee=<agent>", f"{queue}?assignee={agent}"),
        ("queue overdue=yes", f"{queue}?overdue=yes"),
        ("queue overdue=no", f"{queue}?overdue=no"),
        ("queue overdue=reviewed", f"{queue}?overdue=reviewed"),
        ("queue awaiting=approval", f"{queue}?awaiting=approval"),
        ("queue awaiting=review", f"{queue}?awaiting=review"),
        ("queue appealed=pending", f"{queue}?appealed=pending"),
        ("queue appealed=any", f"{queue}?appealed=any"),
        ("queue search account id", f"{queue}?q={some.public_id}"),
        ("queue search account id prefix", f"{queue}?q={some.public_id[:9]}"),
        ("queue search email", f"{queue}?q={some.email}"),
        ("queue search email prefix", f"{queue}?q={some.email[:7]}"),
        ("queue search key prefix", f"{queue}?q={key.prefix}"),
        ("queue search case number", f"{queue}?q=%23{typical_case}"),
        ("queue search status=all email", f"{queue}?status=all&q={some.email}"),
        (f"case page ({BIG_CASE_VIOLATIONS} violations)", f"{queue}{big_case}/change/"),
        ("case page (typical)", f"{queue}{typical_case}/change/"),
        (f"account page ({BIG_KEYS} keys)", f"/admin/accounts/account/{BIG_ACCOUNT}/change/"),
        ("account page (typical)", f"/admin/accounts/account/{some.pk}/change/"),
        ("accounts list", "/admin/accounts/account/"),
        ("accounts search email", f"/admin/accounts/account/?q={some.email}"),
        ("accounts search email prefix", f"/admin/accounts/account/?q={some.email[:7]}"),
        ("accounts search name", f"/admin/accounts/account/?q={some.name.split()[1]}"),
        ("accounts search key prefix", f"/admin/accounts/account/?q={key.prefix}"),
        ("keys list", "/admin/accounts/apikey/"),
        ("keys search prefix", f"/admin/accounts/apikey/?q={key.prefix}"),
        ("violations list", "/admin/enforcement/violation/"),
        ("actions list", "/admin/enforcement/enforcementaction/"),
        ("approvals queue", "/admin/enforcement/enforcementaction/approvals/"),
        ("appeals list", "/admin/enforcement/appeal/"),
        ("appeals queue", "/admin/enforcement/appeal/queue/"),
        ("outbox list", "/admin/enforcement/notification/"),
        ("outbox failed", "/admin/enforcement/notification/?status__exact=failed"),
        ("audit list", "/admin/enforcement/auditevent/"),
        ("audit list search actor", "/admin/enforcement/auditevent/?q=bench-agent-3"),
        ("sources list", "/admin/enforcement/source/"),
        ("rules list", "/admin/enforcement/rule/"),
        ("metrics page", "/admin/metrics/"),
    ]
    measured = [(label, get(client, url)) for label, url in ops]
    today = datetime.now(UTC).date()  # the export needs a date range: the longest it allows, up to tomorrow
    year = f"?created_at__gte={today - timedelta(days=365)}&created_at__lt={today + timedelta(days=1)}"
    measured.append(("audit CSV export first row",
                     first_csv_row(client, "/admin/enforcement/auditevent/export/" + year)))
    api_ops = [
        ("api cases", "/api/v1/cases/"),
        ("api cases status=open", "/api/v1/cases/?status=open"),
        ("api cases status=closed", "/api/v1/cases/?status=closed"),
        ("api cases severity=critical", "/api/v1/cases/?severity=critical"),
        ("api cases overdue=true", "/api/v1/cases/?overdue=true"),
        ("api cases account", f"/api/v1/cases/?account={some.public_id}"),
        (f"api case detail ({BIG_CASE_VIOLATIONS} violations)", f"/api/v1/cases/{big_case}/"),
        ("api violations", "/api/v1/violations/"),
        ("api violations rule", "/api/v1/violations/?rule=spam-fraud"),
        ("api violations case", f"/api/v1/violations/?case={big_case}"),
        ("api actions", "/api/v1/actions/"),
        ("api actions status=applied", "/api/v1/actions/?status=applied"),
        ("api appeals", "/api/v1/appeals/"),
        ("api appeals status=pending", "/api/v1/appeals/?status=pending"),
        ("api audit-events", "/api/v1/audit-events/"),
        ("api audit-events case", f"/api/v1/audit-events/?case={typical_case}"),
        ("api statements", "/api/v1/statements/"),
        ("api statements export", "/api/v1/statements/export/"),
        ("api sources", "/api/v1/sources/"),
        ("api rules", "/api/v1/rules/"),
        ("api metrics summary", "/api/v1/metrics/summary/"),
        ("prometheus metrics", "/metrics"),
        (f"api standing ({STANDING_ACTIONS} actions in force)", f"/api/v1/accounts/{standing.public_id}/standing/"),
        (f"api standing ({BIG_KEYS} keys)", f"/api/v1/accounts/{Account.objects.get(pk=BIG_ACCOUNT).public_id}"
                                           "/standing/"),
    ]
    measured += [(label, get(api, url)) for label, url in api_ops]
    measured.append(("api cases second page", second_page(api, "/api/v1/cases/")))
    measured.append(("api audit-events second page", second_page(api, "/api/v1/audit-events/")))
    return measured


def second_page(api, url: str):
    first = api.get(url).json()
    next_url = first.get("next")
    if not next_url:
        raise SystemExit(f"{url}: no next page")
    return get(api, next_url.split("testserver", 1)[-1])


def run_sweep(n: dict) -> None:
    from enforcement import services

    t0 = time.perf_counter()
    report = services.sweep()
    seconds = time.perf_counter() - t0
    handled = len(report.requeued_actions) + len(report.expired_actions)
    print(f"sweep: {handled} due actions in {seconds:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1 = the full data set; 0.01 for a quick run")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per operation (after one warm-up)")
    parser.add_argument("--due", type=int, default=100_000, help="actions the sweep finds due")
    parser.add_argument("--reuse", action="store_true", help="keep the database if it is already built")
    parser.add_argument("--no-sweep", action="store_true", help="leave the sweep out")
    parser.add_argument("--sweep-only", action="store_true", help="the sweep alone, no pages")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="only the operations whose name contains TEXT (repeatable), e.g. --only sources")
    args = parser.parse_args()

    n, seconds = prepare(args)
    sizes_text = ", ".join(f"{value:,} {name}" for name, value in n.items())
    if seconds is None:
        print(f"build: reused ({sizes_text})")
    else:
        print(f"build: {seconds:.0f} s ({sizes_text})")

    from django.contrib.auth import get_user_model
    from django.test import Client
    from rest_framework.test import APIClient

    from enforcement.actors import SYSTEM
    from enforcement.models import ServiceToken, Source
    from enforcement.services import service_token_create

    for i in range(5):  # the detectors' sources, as their first reports would have registered them
        Source.objects.get_or_create(name=f"bench-detector-{i}")

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-lead"))
    _, raw = service_token_create(actor=SYSTEM, name=f"bench-scale-{time.time_ns()}",
                                  scopes=list(ServiceToken.Scope.values))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    for label, fn in [] if args.sweep_only else operations(n, client, api):
        if not args.only or any(text in label for text in args.only):
            measure(label, fn, args.runs)
    if not args.no_sweep:
        run_sweep(n)


if __name__ == "__main__":
    main()
