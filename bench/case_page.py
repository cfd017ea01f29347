#!/usr/bin/env python
"""The case page of a 2,000-violation case, and the queue's search, saved-view counts and case flow at a
million cases.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enforcement_casebench python bench/case_page.py \\
        [--violations 2000] [--accounts 200000] [--cases 1000000] [--rounds 5] [--keep]

The scratch database named by DATABASE_URL (its name must contain "bench") is dropped if it exists, created,
migrated and filled: ``--accounts`` accounts with a key each ("Company <hash>" names), ``--cases`` cases (one
open per account, the rest closed), and one account, "Nimbus Labs 40", whose open case holds ``--violations``
violations (with evidence) and an audit event each. It is dropped at the end unless ``--keep``.

Then, the median of ``--rounds``, in-process (the view, the template, no network), as a lead:
1. GET the case page of the big case (the page, its queries, the rows rendered, its size).
2. The raw baseline: the big case's violations and audit events fetched (what any page of it reads).
3. Queue searches: a partial name ("nimbus"), an id without "acct_", a key prefix's start, a case number.
4. The front page with five saved views, each counted (bounded at 1,000).
5. The case page opened from a view (``_changelist_filters``): its previous and next case.

Biases: generated names share no trigrams with the searched ones (a real customer base has more near-misses);
a warm database cache after the first round (the medians favour it); in-process, so no WSGI server.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scratch import configure, drop_database, median_seconds, scratch_postgres  # noqa: E402

configure(database_url="postgres://postgres@127.0.0.1:5432/enforcement_casebench", var_dir="/tmp/var-bench-case")
os.environ.setdefault("STAFF_2FA", "optional")  # the bench signs a lead in without a device


class QueryTimer:
    """Every query the block runs, with its time (``execute_wrapper``: whatever the request does with the
    connection's query log)."""

    def __init__(self, connection):
        self.connection, self.times = connection, []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.times.append(time.perf_counter() - started)

    def __enter__(self):
        self._wrapper = self.connection.execute_wrapper(self)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        self._wrapper.__exit__(*exc)

    def __len__(self):
        return len(self.times)


def build(accounts: int, cases: int, violations: int):
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Account
    from enforcement import services
    from enforcement.actors import SYSTEM
    from enforcement.models import AuditEvent, Rule, Violation
    from tests.factories import APIKeyFactory

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_account (public_id, name, email, status, created_at, updated_at) "
            "SELECT 'acct_gen' || lpad(g::text, 12, '0'), 'Company ' || md5(g::text), "
            "'ops' || g || '@' || substr(md5(g::text), 1, 8) || '.example', 'active', now(), now() "
            "FROM generate_series(1, %s) g", [accounts])
        cursor.execute(
            "INSERT INTO accounts_apikey (account_id, kind, prefix, token_sha256, label, base_rate_limit_per_minute,"
            " base_ip_rate_limit_per_minute, status, rate_limit_per_minute, ip_rate_limit_per_minute, state_version,"
            " revoked_reason, created_at, updated_at) "
            "SELECT id, 'secret', 'sk_live_' || lpad(to_hex(id), 8, 'x'), md5('t' || id::text) || md5(id::text),"
            " '', 1000, 100, 'active', 1000, 100, 1, '', now(), now() FROM accounts_account")
        # One open case per account, then closed ones round-robin over the accounts, deadlines spread over a week.
        cursor.execute(
            "INSERT INTO enforcement_case (account_id, status, severity, severity_rank, review_due_at,"
            " needs_lead_review, opened_at, resolution, updated_at) "
            "SELECT a.id, CASE WHEN g <= %(accounts)s THEN (ARRAY['open','awaiting_customer','actioned'])[1 + g %% 3]"
            " ELSE 'closed' END, (ARRAY['low','medium','high','critical'])[1 + g %% 4], g %% 4,"
            " CASE WHEN g %% 5 = 0 THEN NULL ELSE now() + ((g %% 10080) - 2000) * interval '1 minute' END,"
            " false, now() - (g %% 90) * interval '1 day', '', now() "
            "FROM generate_series(1, %(cases)s) g JOIN accounts_account a ON a.id = 1 + (g - 1) %% %(accounts)s",
            {"accounts": accounts, "cases": cases})
        cursor.execute("ANALYZE")
    nimbus = Account.objects.create(public_id="acct_nimbus40q7x2k9", name="Nimbus Labs 40",
                                    email="ops@nimbus40.example")
    key = APIKeyFactory(account=nimbus, kind="secret")
    first = services.violation_report(actor=SYSTEM, account=nimbus, rule="spam-fraud", severity="high",
                                      source="bench", external_id="bench-0", summary="Click farm, first report.",
                                      api_key=key, evidence={"asn": 64500, "rate": 40000})
    case = first.violation.case
    rules = list(Rule.objects.filter(code__in=["spam-fraud", "covert-tracking", "secrets-in-events"]))
    now = timezone.now()
    rows = [Violation(account=nimbus, api_key=key, rule=rules[n % 3], case=case, severity=["high", "medium"][n % 2],
                      source="bench", external_id=f"bench-{n}", reported_by="bench", observed_at=now,
                      summary=f"Report {n}: pattern seen on {n % 40} pages.", status="open",
                      evidence={"sample": f"row {n}", "ip": "203.0.113.9", "pages": list(range(n % 12))})
            for n in range(1, violations)]
    Violation.objects.bulk_create(rows, batch_size=1000)
    ids = list(Violation.objects.filter(case=case).exclude(pk=first.violation.pk).values_list("pk", flat=True))
    AuditEvent.objects.bulk_create([
        AuditEvent(actor_type="system", actor_label="bench", verb="violation.reported", target_type="violation",
                   target_id=str(pk), case=case, account=nimbus, after={"rule": "bench", "severity": "high"})
        for pk in ids], batch_size=1000)
    return case, key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--violations", type=int, default=2000)
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    url = scratch_postgres("bench/case_page.py")
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # responses keep their template context (the counts below read it)
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from enforcement import services
    from enforcement.actors import Actor
    from enforcement.models import AuditEvent, Violation
    from tests.factories import UserFactory

    try:
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        case, key = build(args.accounts, args.cases, args.violations)
        print(f"setup: {time.perf_counter() - started:.1f} s")
        lead = UserFactory(username="bench.lead", is_superuser=True)
        client = Client()
        client.force_login(lead)
        page = f"/admin/enforcement/case/{case.pk}/change/"

        def get(url, params=None):
            response = client.get(url, params or {})
            assert response.status_code == 200, (url, response.status_code)
            return response

        with QueryTimer(connection) as queries:
            response = get(page)
        page_s, response = median_seconds(lambda: get(page), args.rounds)
        html = response.content.decode()
        raw_s, _ = median_seconds(lambda: (list(Violation.objects.filter(case=case).values_list()),
                                           list(AuditEvent.objects.filter(case=case).values_list())), args.rounds)
        print(f"database: {connection.vendor} {connection.pg_version // 10000}, rounds: {args.rounds} (medians); "
              f"{args.accounts:,} accounts, {args.cases:,} cases")
        timeline_rows, violation_rows = html.count('<li class="tl-'), html.count('<details class="violation"')
        print(f"case page, {args.violations:,} violations: {page_s * 1000:.0f} ms, {len(queries)} queries, "
              f"{timeline_rows} timeline rows and {violation_rows} violations rendered, {len(html) / 1024:.0f} KiB")
        print(f"raw fetch of its violations and audit events: {raw_s * 1000:.0f} ms "
              f"(page / raw: {page_s / raw_s:.1f}x)")

        queue = "/admin/enforcement/case/"
        for label, term in [("partial name", "nimbus"), ("id without acct_", "nimbus40"),
                            ("key prefix start", key.prefix[:11]), ("case number", f"#{case.pk}"),
                            ("no match", "zeppelin")]:
            with QueryTimer(connection) as queries:
                found = len(get(queue, {"q": term}).context["cl"].result_list)
            seconds, _ = median_seconds(lambda term=term: get(queue, {"q": term}), args.rounds)
            slowest = max(queries.times) * 1000
            print(f"queue search, {label} ({term!r}): {seconds * 1000:.0f} ms, {found} found, "
                  f"{len(queries)} queries, slowest {slowest:.1f} ms")

        actor = Actor.for_user(lead)
        for name, query in [("Open", ""), ("High", "severity=high"), ("Overdue", "overdue=yes"),
                            ("Nimbus", "q=nimbus"), ("Critical unassigned", "assignee=none&severity=critical")]:
            services.saved_view_save(actor=actor, name=name, query=query, shared=True)
        front_s, response = median_seconds(lambda: get("/admin/"), args.rounds)
        counts = {tile["view"].name: tile["count"] for tile in response.context["view_tiles"]}
        print(f"front page with 5 saved views counted: {front_s * 1000:.0f} ms; counts {counts}")
        flow_s, response = median_seconds(lambda: get(page, {"_changelist_filters": "severity=high"}), args.rounds)
        print(f"case page opened from a view (previous and next case): {flow_s * 1000:.0f} ms; "
              f"next {response.context['flow']['next_id']}")
    finally:
        connection.close()
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
