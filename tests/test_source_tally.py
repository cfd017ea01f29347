"""Each source's counts by outcome are kept as its reports are decided, and always equal the live computation.

The oracle is ``with_live_outcome`` (the correlated EXISTS over the case's actions that the sources page ran
before it read the tallies): after each kind of event, every violation's stored outcome, every source's tally
and its precision window must equal what it computes.
"""

import itertools
import threading

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections

from enforcement import services
from enforcement.actors import Actor
from enforcement.models import SourceTally, Violation
from enforcement.services.detectors import (
    PENDING,
    TALLY_FIELDS,
    source_record,
    tallies,
    tallies_rebuild,
    with_live_outcome,
)
from tests.factories import AccountFactory, UserFactory

_ids = itertools.count(1)


def live_tallies() -> dict[str, dict[str, int]]:
    expected: dict[str, dict[str, int]] = {}
    for source, outcome in with_live_outcome(Violation.objects.all()).values_list("source", "live_outcome"):
        row = expected.setdefault(source, dict.fromkeys(TALLY_FIELDS, 0))
        row["reports"] += 1
        if outcome != PENDING:
            row[outcome] += 1
    return expected


def live_precision(source: str) -> tuple[int, float | None]:
    recent = list(with_live_outcome(Violation.objects.filter(source=source)).exclude(live_outcome=PENDING)
                  .order_by("-reported_at", "-id").values_list("live_outcome", flat=True)
                  [: settings.DETECTOR_MIN_DECIDED])
    return len(recent), round(recent.count("actioned") / len(recent), 4) if recent else None


def assert_matches_live():
    live = dict(with_live_outcome(Violation.objects.all()).values_list("pk", "live_outcome"))
    assert dict(Violation.objects.values_list("pk", "outcome")) == live
    expected = live_tallies()
    assert tallies() == expected
    for source, row in expected.items():
        record = source_record(source)
        assert (record.reports, record.actioned, record.dismissed, record.overturned) == (
            row["reports"], row["actioned"], row["dismissed"], row["overturned"])
        assert (record.recent_decided, record.precision) == live_precision(source)
    return expected


def report(actor, account, source, **extra):
    return services.violation_report(
        actor=actor, account=account, rule="spam-fraud", severity="medium", source=source,
        external_id=f"{source}-{next(_ids)}", summary="Seen.", **extra,
    ).violation


@pytest.mark.django_db
def test_the_tallies_follow_every_kind_of_decision(as_trusted_detector, as_agent, as_lead, as_second_lead,
                                                   run_on_commit, settings):
    settings.DETECTOR_MIN_DECIDED = 3
    first, second, third = AccountFactory(), AccountFactory(), AccountFactory()
    a1, a2, b1 = (report(as_trusted_detector, first, name) for name in ("alpha", "alpha", "beta"))
    report(as_trusted_detector, second, "alpha")
    g1 = report(as_agent, second, "gamma")
    batch = services.violation_report_batch(actor=as_trusted_detector, reports=[
        {"account": third.public_id, "rule": "spam-fraud", "severity": "low", "source": "beta",
         "external_id": f"beta-{next(_ids)}", "summary": "Seen in a batch."} for _ in range(2)
    ])
    assert all(not isinstance(answer, Exception) for answer in batch)
    assert assert_matches_live()["alpha"] == {"reports": 3, "actioned": 0, "dismissed": 0, "overturned": 0}

    services.violation_dismiss(actor=as_lead, violation_id=a1.pk, reason="false positive")
    assert assert_matches_live()["alpha"]["dismissed"] == 1

    # An action applied on the first case: its open reports from before it are actioned (two sources at once).
    throttle = run_on_commit(services.action_propose, actor=as_lead, case_id=a2.case_id, kind="throttle",
                             reason="confirmed", rate_limit_per_minute=10)
    throttle.refresh_from_db()
    assert throttle.status == "applied"
    counts = assert_matches_live()
    assert (counts["alpha"]["actioned"], counts["beta"]["actioned"]) == (1, 1)

    # A report after it stays pending; dismissing an actioned report moves it from actioned to dismissed.
    later = report(as_trusted_detector, first, "beta")
    assert Violation.objects.get(pk=later.pk).outcome == PENDING
    services.violation_dismiss(actor=as_lead, violation_id=b1.pk, reason="duplicate")
    counts = assert_matches_live()
    assert counts["beta"] == {"reports": 4, "actioned": 0, "dismissed": 1, "overturned": 0}

    # The appeal overturns the throttle: what it answered is overturned, the later report still pending.
    appeal = services.appeal_submit(actor=as_lead, action_id=throttle.pk, message="not us")
    run_on_commit(services.appeal_decide, actor=as_second_lead, appeal_id=appeal.pk, outcome="overturned",
                  note="the detector was wrong")
    counts = assert_matches_live()
    assert counts["alpha"] == {"reports": 3, "actioned": 0, "dismissed": 1, "overturned": 1}
    assert Violation.objects.get(pk=later.pk).outcome == PENDING

    # A warning on the second case, then closing the third (its reports dismissed).
    run_on_commit(services.action_propose, actor=as_lead, case_id=g1.case_id, kind="warning", reason="first time")
    third_case = batch[0].violation.case_id
    services.case_resolve(actor=as_lead, case_id=third_case, resolution="not abuse")
    counts = assert_matches_live()
    assert counts["gamma"] == {"reports": 1, "actioned": 1, "dismissed": 0, "overturned": 0}
    assert counts["beta"]["dismissed"] == 3


@pytest.mark.django_db
def test_the_repair_recounts_from_history_and_is_idempotent(as_trusted_detector, as_lead, run_on_commit):
    account = AccountFactory()
    violations = [report(as_trusted_detector, account, "delta") for _ in range(3)]
    services.violation_dismiss(actor=as_lead, violation_id=violations[0].pk, reason="no")
    run_on_commit(services.action_propose, actor=as_lead, case_id=violations[1].case_id, kind="warning",
                  reason="yes")
    expected = assert_matches_live()
    # Break both: the stored outcomes and the counts (as a bug or a hand edit would).
    Violation.objects.filter(pk=violations[1].pk).update(outcome=PENDING)
    Violation.objects.filter(pk=violations[0].pk).update(outcome="actioned")
    SourceTally.objects.filter(source="delta").update(reports=99, dismissed=0)
    SourceTally.objects.create(source="ghost", shard=3, reports=5)
    assert tallies() != expected

    call_command("recount_sources", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert assert_matches_live() == expected
    assert tallies_rebuild() == expected  # again: nothing changes
    assert assert_matches_live() == expected


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.postgres  # row locks: parallel decisions must not lose counts
def test_parallel_dismissals_and_reports_lose_no_count(trusted_detector):
    detector = Actor.for_token(trusted_detector)
    agent = Actor.for_user(UserFactory(username="agent-tally", role="tns_agent"))
    violations = [report(detector, AccountFactory(), "busy") for _ in range(8)]

    barrier = threading.Barrier(12)
    errors = []

    def run(call):
        try:
            barrier.wait()
            call()
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    calls = [lambda v=v: services.violation_dismiss(actor=agent, violation_id=v.pk, reason="noise")
             for v in violations]
    calls += [lambda: report(detector, AccountFactory(), "busy") for _ in range(4)]
    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    counts = assert_matches_live()
    assert counts["busy"] == {"reports": 12, "actioned": 0, "dismissed": 8, "overturned": 0}


@pytest.mark.django_db
def test_the_migration_backfills_outcomes_and_tallies_from_history(as_trusted_detector, as_lead, as_second_lead,
                                                                   run_on_commit):
    import importlib

    from django.apps import apps

    backfill = importlib.import_module("enforcement.migrations.0015_violation_outcome_and_source_tally")
    first, second = AccountFactory(), AccountFactory()
    kept = [report(as_trusted_detector, first, "eps") for _ in range(2)]
    throttle = run_on_commit(services.action_propose, actor=as_lead, case_id=kept[0].case_id, kind="throttle",
                             reason="confirmed", rate_limit_per_minute=10)
    appeal = services.appeal_submit(actor=as_lead, action_id=throttle.pk, message="not us")
    run_on_commit(services.appeal_decide, actor=as_second_lead, appeal_id=appeal.pk, outcome="overturned",
                  note="wrong")
    other = report(as_trusted_detector, second, "eps")
    run_on_commit(services.action_propose, actor=as_lead, case_id=other.case_id, kind="warning", reason="yes")
    dismissed = report(as_trusted_detector, second, "zeta")
    services.violation_dismiss(actor=as_lead, violation_id=dismissed.pk, reason="no")
    report(as_trusted_detector, second, "zeta")
    expected = assert_matches_live()
    # As before the migration: no stored outcome, no tally.
    Violation.objects.update(outcome=PENDING)
    SourceTally.objects.all().delete()
    backfill.backfill_outcomes(apps, None)
    assert assert_matches_live() == expected
    assert expected["eps"] == {"reports": 3, "actioned": 1, "dismissed": 0, "overturned": 2}


@pytest.mark.django_db
def test_closing_a_case_dismisses_its_reports_in_a_fixed_number_of_queries(as_detector, as_agent):
    """Each open report of a closed case is dismissed, audited and counted, whether it has 3 reports or 30."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from enforcement.models import AuditEvent

    queries = {}
    for reports in (3, 30):
        account = AccountFactory()
        violations = [report(as_detector, account, f"closing-{reports}") for _ in range(reports)]
        case = violations[0].case
        with CaptureQueriesContext(connection) as captured:
            services.case_resolve(actor=as_agent, case_id=case.pk, resolution="Customer fixed it.")
        queries[reports] = len(captured)
        assert set(Violation.objects.filter(case=case).values_list("status", "outcome", "dismissed_reason")) == {
            (Violation.Status.DISMISSED, "dismissed", "Customer fixed it.")}
        events = AuditEvent.objects.filter(verb="violation.dismissed", case=case).order_by("pk")
        assert [int(e.target_id) for e in events] == [v.pk for v in violations]
        assert {(e.note, e.actor_label, str(e.before), str(e.after)) for e in events} == {
            ("Customer fixed it.", as_agent.label, "{'status': 'open'}", "{'status': 'dismissed'}")}
    assert queries[30] <= queries[3], queries  # (the first close also reads what later ones find cached)
    assert_matches_live()
