#!/usr/bin/env python
"""Violation ingest through the REST API, next to the raw rate of the same rows written by plain SQL.

    python bench/ingest.py [--clients 4] [--single 2000] [--batches 16] [--accounts 50] [--workers 4] [--rounds 4]

Against PostgreSQL, through gunicorn (started here on a free port, stopped at the end):
1. ``POST /api/v1/violations/``, one violation per request, ``--clients`` concurrent clients; and the raw
   rate of the same rows as single-row INSERT transactions at the same concurrency. Target: within 10x.
2. ``POST /api/v1/violations/batch/``, 500 per request, the same clients; and the raw rate of the same
   rows as one multi-row INSERT. Target: within 5x.
3. Queries per single report, counted in-process (first report of an account, a further one, a replay).

Each report is a new (source, external_id) for one of ``--accounts`` accounts, so each joins that
account's open case: the steady state of a detector. Django keeps its database connections
(``DB_CONN_MAX_AGE``) and API throttling is off, as an operator would run it.

Environment (defaults in brackets): DATABASE_URL [postgres://postgres@127.0.0.1:5432/enf_bench_api]
(created and migrated if missing: use a scratch database), VAR_DIR [/tmp/var-bench-api].
"""

import argparse
import http.client
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.scratch import configure, ensure_database  # noqa: E402

configure(database_url="postgres://postgres@127.0.0.1:5432/enf_bench_api", var_dir="/tmp/var-bench-api")
os.environ.setdefault("DB_CONN_MAX_AGE", "60")

RULES = ["rate-limit-overuse", "spam-fraud", "covert-tracking", "unlawful-use"]
TARGET_SINGLE, TARGET_BATCH = 10, 5


# --------------------------------------------------------------------------- setup


def setup(accounts: int, run: str) -> dict:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("bench/ingest.py measures PostgreSQL: set DATABASE_URL to a postgres:// database.")
    from accounts.models import Account
    from enforcement.actors import SYSTEM
    from enforcement.models import Rule
    from enforcement.services import service_token_create

    Account.objects.bulk_create(
        [Account(public_id=f"acct_b{run}{n:05d}", name=f"Bench {n}", email=f"bench{n}@example.com")
         for n in range(accounts)]
    )
    _, raw = service_token_create(actor=SYSTEM, name=f"bench-ingest-{run}", scopes=["violations:write"])
    return {
        "token": raw,
        "accounts": [f"acct_b{run}{n:05d}" for n in range(accounts)],
        "rules": {rule.code: rule.pk for rule in Rule.objects.filter(code__in=RULES)},
    }


def report(run: str, phase: str, n: int, accounts: list[str], rng: random.Random) -> dict:
    return {
        "account": rng.choice(accounts),
        "rule": rng.choice(RULES),
        "severity": "medium",
        "source": f"bench-{run}",
        "external_id": f"{phase}-{n}",
        "summary": f"Bench report {phase}-{n}: 1800 events/min from one IP, above the published limit.",
        "evidence": {"ip": f"203.0.113.{n % 250}", "events_per_minute": 1800, "window": "2026-01-01T00:00Z/PT5M"},
    }


def query_counts(env: dict, run: str) -> dict:
    """Queries per single report, in-process: a first report of an account, a further one, a replay."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    from accounts.models import Account

    Account.objects.create(public_id=f"acct_q{run}", name="Bench queries", email="q@example.com")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {env['token']}")
    counts = {}
    rng = random.Random(7)
    for label, n in (("first of its account", 0), ("further", 1), ("replay", 1)):
        body = {**report(run, "queries", n, [f"acct_q{run}"], rng), "rule": "rate-limit-overuse"}
        with CaptureQueriesContext(connection) as queries:
            response = client.post("/api/v1/violations/", body, format="json")
        assert response.status_code in (200, 201), response.content
        counts[label] = len(queries)
    return counts


# --------------------------------------------------------------------------- the web server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--log-level", "warning", "--timeout", "120"],
        cwd=ROOT, env={**os.environ, "LOG_LEVEL": "WARNING"}, start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return server, port
        except OSError:
            time.sleep(0.2)
    stop(server)
    raise SystemExit("gunicorn did not come up")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


# --------------------------------------------------------------------------- clients


def _post_all(port: int, token: str, path: str, bodies: list, start, results) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    encoded = [json.dumps(body) for body in bodies]
    start.wait()
    for body in encoded:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        if response.status not in (200, 201):
            results.put(f"HTTP {response.status}: {payload[:300]!r}")
            return
        if path.endswith("batch/") and json.loads(payload)["failed"]:
            results.put(f"batch items failed: {payload[:300]!r}")
            return
    results.put(None)


def _insert_rows(dsn: str, rows: list[tuple], start, results) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        start.wait()
        for row in rows:
            with conn.cursor() as cur:
                cur.execute(INSERT + ROW, row)
            conn.commit()
    results.put(None)


def concurrently(target, shares: list, *args) -> float:
    """Run ``target(*args, share, start, results)`` in one process per share; seconds from start to last done."""
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    procs = [context.Process(target=target, args=(*args, share, start, results)) for share in shares]
    for proc in procs:
        proc.start()
    time.sleep(0.5)
    began = time.perf_counter()
    start.set()
    errors = [results.get() for _ in procs]
    elapsed = time.perf_counter() - began
    for proc in procs:
        proc.join()
    failed = [error for error in errors if error]
    if failed:
        raise SystemExit(f"a client failed: {failed[0]}")
    return elapsed


# --------------------------------------------------------------------------- raw SQL

COLUMNS = (
    "account_id, api_key_id, rule_id, case_id, severity, source, external_id, source_trusted, reported_by, "
    "observed_at, reported_at, summary, evidence, status, dismissed_at, dismissed_reason, reporter_kind"
)
INSERT = f"INSERT INTO enforcement_violation ({COLUMNS}) VALUES "
ROW = "(%s, NULL, %s, %s, %s, %s, %s, false, %s, now(), now(), %s, %s, 'open', NULL, '', 'token')"


def raw_rows(bodies: list[dict], env: dict, case_of: dict, phase: str) -> list[tuple]:
    return [
        (case_of[body["account"]][0], env["rules"][body["rule"]], case_of[body["account"]][1], body["severity"],
         body["source"], f"raw-{phase}-{body['external_id']}", "token:bench", body["summary"],
         json.dumps(body["evidence"]))
        for body in bodies
    ]


def open_cases(accounts: list[str]) -> dict:
    from enforcement.models import Case

    return {
        public_id: (account_id, case_id)
        for public_id, account_id, case_id in Case.objects.filter(account__public_id__in=accounts)
        .exclude(status="closed").values_list("account__public_id", "account_id", "pk")
    }


def multi_row_insert(dsn: str, rows: list[tuple]) -> float:
    """All the rows in one INSERT statement (its VALUES from arrays: a statement takes at most 65535 parameters)."""
    import psycopg

    statement = (
        f"INSERT INTO enforcement_violation ({COLUMNS}) SELECT a, NULL, r, c, s, src, e, false, rb, now(), now(), "
        "sm, ev::jsonb, 'open', NULL, '', 'token' FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], "
        "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) AS t(a, r, c, s, src, e, rb, sm, ev)"
    )
    columns = [list(column) for column in zip(*rows, strict=True)]
    with psycopg.connect(dsn) as conn:
        began = time.perf_counter()
        conn.execute(statement, columns)
        conn.commit()
        return time.perf_counter() - began


# --------------------------------------------------------------------------- main


def split(items: list, parts: int) -> list[list]:
    return [items[i::parts] for i in range(parts)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--single", type=int, default=2000, help="single reports in all")
    parser.add_argument("--batches", type=int, default=16, help="batch requests in all (500 reports each)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--rounds", type=int, default=4, help="API and raw SQL alternate this many times")
    args = parser.parse_args()

    dsn = os.environ["DATABASE_URL"]
    ensure_database(dsn)
    run = uuid.uuid4().hex[:8]
    env = setup(args.accounts, run)
    rng = random.Random(42)
    counts = query_counts(env, run)
    singles = [report(run, "single", n, env["accounts"], rng) for n in range(args.single)]
    batches = [
        {"violations": [report(run, f"batch{b}", n, env["accounts"], rng) for n in range(args.batch_size)]}
        for b in range(args.batches)
    ]
    batch_rows = [body for batch in batches for body in batch["violations"]]
    from django.db import connections

    connections.close_all()  # the clients are forked: they must not share this process's connection

    # The API and its raw counterpart alternate, round by round, so that whatever else the machine
    # is doing weighs on both sides alike.
    single_s = batch_s = raw_single_s = raw_multi_s = 0.0
    server, port = start_gunicorn(args.workers)
    try:
        # Warm every worker up (imports, connections) and open each account's case, outside the timing.
        warm = [{**report(run, "warm", n, env["accounts"], rng), "account": account}
                for n, account in enumerate(env["accounts"] * 2)]
        concurrently(_post_all, split(warm, args.clients), port, env["token"], "/api/v1/violations/")
        case_of = open_cases(env["accounts"])
        connections.close_all()
        for r in range(args.rounds):
            round_singles = singles[r::args.rounds]
            round_batches = batches[r::args.rounds]
            single_s += concurrently(
                _post_all, split(round_singles, args.clients), port, env["token"], "/api/v1/violations/"
            )
            raw_single_s += concurrently(
                _insert_rows, split(raw_rows(round_singles, env, case_of, "single"), args.clients), dsn
            )
            batch_s += concurrently(
                _post_all, split(round_batches, args.clients), port, env["token"], "/api/v1/violations/batch/"
            )
            round_rows = [body for batch in round_batches for body in batch["violations"]]
            raw_multi_s += multi_row_insert(dsn, raw_rows(round_rows, env, case_of, "multi"))
    finally:
        stop(server)

    api_single = args.single / single_s
    raw_single = args.single / raw_single_s
    api_batch = len(batch_rows) / batch_s
    raw_multi = len(batch_rows) / raw_multi_s
    single_ratio, batch_ratio = raw_single / api_single, raw_multi / api_batch
    print(f"PostgreSQL, gunicorn with {args.workers} sync workers, {args.clients} concurrent clients, "
          f"{args.accounts} accounts, {args.rounds} alternating rounds")
    print(f"single  API  POST /violations/        {api_single:9.0f} violations/s  ({args.single} requests)")
    print(f"single  raw  1-row INSERT transactions {raw_single:9.0f} rows/s")
    print(f"        ratio raw/API: {single_ratio:.1f}x (target <= {TARGET_SINGLE}x)")
    print(f"batch   API  POST /violations/batch/  {api_batch:9.0f} violations/s  "
          f"({args.batches} requests of {args.batch_size})")
    print(f"batch   raw  one multi-row INSERT     {raw_multi:9.0f} rows/s  "
          f"({len(batch_rows)} rows, one INSERT per round)")
    print(f"        ratio raw/API: {batch_ratio:.1f}x (target <= {TARGET_BATCH}x)")
    print("queries per single report (in-process): "
          + ", ".join(f"{label}: {count}" for label, count in counts.items()))


if __name__ == "__main__":
    main()
