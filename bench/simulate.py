#!/usr/bin/env python
"""Policy simulation over 100,000 decisions, next to the raw fetch of the same rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enforcement_simbench python bench/simulate.py \\
        [--decisions 100000] [--accounts 20000] [--rounds 3] [--keep]

The scratch database named by DATABASE_URL (its name must contain "bench") is dropped if it exists, created,
migrated and filled with one rule's history: ``--decisions`` violations of covert-tracking over the last 90
days spread over ``--accounts`` accounts, two violations a case, half of the cases actioned (an applied,
expired or overturned action a few hours after their first violation, naming it in ``decided_under`` nine times
in ten: strikes for what follows), and older actioned cases 91 to 180 days back that only a longer strike window
reaches. It is dropped at the end unless ``--keep``.

Then, the median of ``--rounds``:
1. ``services.policy_simulate`` of {"medium": "suspend"} with a 180-day strike window (so both policies count
   strikes, in different windows: the costly case). Target: 100,000 decisions in under 5 s.
2. The raw baseline: the violations' rows alone, fetched as the simulation fetches them (``values_list``).
3. ``POST /api/v1/rules/covert-tracking/simulate/`` in-process (the view, the serializer, the JSON).

Biases: one rule's history only (other rules' rows are not there to be skipped); the accounts' strikes are
few, as they are in life, so the windows the bisection slices are short; a warm database cache after the first
round (the medians favour it); in-process, so no network or WSGI server in (3).
"""

import argparse
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scratch import configure, drop_database, median_seconds, scratch_postgres  # noqa: E402

configure(database_url="postgres://postgres@127.0.0.1:5432/enforcement_simbench", var_dir="/tmp/var-bench-simulate")

RULE = "covert-tracking"
PROPOSAL = {"ladder_overrides": {"medium": "suspend"}, "strike_window_days": 180}
TARGET_SECONDS = 5.0
SEVERITIES = (["low"] * 3) + (["medium"] * 4) + (["high"] * 2) + ["critical"]
KIND_FOR = {"low": "warning", "medium": "warning", "high": "throttle", "critical": "suspend"}


def build_history(decisions: int, accounts: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Account
    from enforcement.models import Case, EnforcementAction, Rule, Violation

    rng = random.Random(16)
    now = timezone.now()
    rule = Rule.objects.get(code=RULE)
    Account.objects.bulk_create(
        [Account(public_id=f"acct_sim{n:011d}", name=f"Bench {n}", email=f"bench{n}@example.com")
         for n in range(accounts)], batch_size=5000,
    )
    account_ids = list(Account.objects.order_by("pk").values_list("pk", flat=True))

    # Each account's violations in time order, two to a case.
    times = sorted((now - timedelta(seconds=rng.uniform(60, 89.5 * 86400)), rng.choice(account_ids))
                   for _ in range(decisions))
    per_account: dict[int, list] = {}
    for at, account_id in times:
        per_account.setdefault(account_id, []).append(at)
    case_plan = []  # (account id, first violation's time, [violation times])
    for account_id, ats in per_account.items():
        case_plan += [(account_id, ats[i], ats[i:i + 2]) for i in range(0, len(ats), 2)]
    older_plan = [(account_id, now - timedelta(days=rng.uniform(91, 180)), [])
                  for account_id in account_ids if rng.random() < 0.3]
    plan = case_plan + older_plan
    cases = Case.objects.bulk_create(
        [Case(account_id=account_id, status=Case.Status.CLOSED, severity="medium") for account_id, _, _ in plan],
        batch_size=5000,
    )

    violations, case_violations = [], []
    for case, (account_id, _, ats) in zip(cases, plan, strict=True):
        case_violations.append([Violation(
            account_id=account_id, rule=rule, case=case, severity=rng.choice(SEVERITIES), source="bench",
            external_id=f"sim-{len(violations) + n}", source_trusted=rng.random() < 0.5, reported_by="bench",
            observed_at=at, summary="Bench violation.",
        ) for n, at in enumerate(ats)])
        violations += case_violations[-1]
    Violation.objects.bulk_create(violations, batch_size=5000)

    # Half of the cases actioned a few hours after their first violation, on it; one action in ten without
    # the violations it was decided on, as actions were recorded before ``decided_under``.
    actions = []
    for case, (account_id, first_at, _), decided_on in zip(cases, plan, case_violations, strict=True):
        if decided_on and rng.random() < 0.5:
            continue
        status = rng.choice(["applied", "applied", "expired", "reverted"])
        named = [decided_on[0].pk] if decided_on and rng.random() < 0.9 else []
        actions.append(EnforcementAction(
            case=case, account_id=account_id, kind=KIND_FOR[decided_on[0].severity if decided_on else "medium"],
            status=status, reason="Bench action.", requested_by_label="bench",
            applied_at=first_at + timedelta(hours=rng.uniform(1, 6)),
            overturned=status == "reverted" and rng.random() < 0.5,
            decided_under={"violations": named, "rules": {RULE: 1}, "ladder": "bench"},
        ))
    EnforcementAction.objects.bulk_create(actions, batch_size=5000)
    with connection.cursor() as cursor:  # the times as they were, not the moment of the insert
        cursor.execute("UPDATE enforcement_violation SET reported_at = observed_at")
        cursor.execute("UPDATE enforcement_enforcementaction SET created_at = applied_at")
        cursor.execute("ANALYZE")
    print(f"history: {len(violations):,} violations of {RULE} in {len(case_plan):,} cases of {accounts:,} "
          f"accounts; {len(actions):,} actions ({len(older_plan):,} older actioned cases)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    url = scratch_postgres("bench/simulate.py")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone
    from rest_framework.test import APIClient

    from enforcement.actors import SYSTEM
    from enforcement.models import Violation
    from enforcement.services import policy_simulate, service_token_create

    try:
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        build_history(args.decisions, args.accounts)
        print(f"setup: {time.perf_counter() - started:.1f} s")

        simulate_s, result = median_seconds(
            lambda: policy_simulate(rule_code=RULE, changes=PROPOSAL, days=90), args.rounds
        )
        raw_s, rows = median_seconds(lambda: list(
            Violation.objects.filter(rule__code=RULE, reported_at__gte=timezone.now() - timedelta(days=90))
            .values_list("pk", "account_id", "case_id", "severity", "source_trusted", "reported_at")
        ), args.rounds)
        _, raw = service_token_create(actor=SYSTEM, name="bench-simulate", scopes=["cases:read"])
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        api_s, response = median_seconds(lambda: client.post(
            f"/api/v1/rules/{RULE}/simulate/", {**PROPOSAL, "days": 90}, format="json"
        ), args.rounds)
        assert response.status_code == 200, response.content[:500]
        assert response.json()["decisions"] == result.decisions == len(rows)

        print(f"database: {connection.vendor} {connection.pg_version // 10000}, rounds: {args.rounds} (medians)")
        print(f"proposal: {PROPOSAL}")
        print(f"result: {result.decisions:,} decisions, {result.changed:,} changed, "
              f"{result.accounts_affected:,} accounts affected; "
              + ", ".join(f"{change} {n:,}" for change, n in list(result.by_change.items())[:4]))
        print(f"simulate: {result.decisions} decisions in {simulate_s:.2f} s (target < {TARGET_SECONDS:.0f} s)")
        print(f"raw fetch of the same violations: {raw_s:.2f} s (simulate / raw: {simulate_s / raw_s:.1f}x)")
        print(f"POST /api/v1/rules/{RULE}/simulate/ in-process: {api_s:.2f} s")
    finally:
        connection.close()
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
