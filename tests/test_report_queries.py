"""The report path's round trips, pinned: a single report and a batch of 100 cost a fixed number of queries (so a
change that adds one shows here), and what was folded into fewer queries still answers as before."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from enforcement import services
from enforcement.errors import ValidationFailed
from enforcement.models import AuditEvent, Rule, Violation
from enforcement.services.violations import _active_rule_row, _rule_from_row
from tests.factories import AccountFactory
from tests.test_workflow import _actioned_case

pytestmark = pytest.mark.django_db


def report(account, *, rule="rate-limit-overuse", external_id=None, **extra) -> dict:
    return {
        "account": account.public_id, "rule": rule, "severity": "medium", "source": "ratewatch",
        "external_id": external_id or uuid.uuid4().hex, "summary": "1800 events/min from one IP.",
        "evidence": {"ip": "203.0.113.9"}, **extra,
    }


def test_a_further_report_of_an_account_costs_four_statements_in_its_transaction_on_postgresql(
    as_detector, account
):
    services.violation_report(actor=as_detector, **report(account))  # opens the case, claims the source
    with CaptureQueriesContext(connection) as queries:
        result = services.violation_report(actor=as_detector, **report(account))
    assert result.created
    statements = [q["sql"].split(" ")[0] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    # 1. the source with the earlier report of this (source, external_id), if any; 2. the account, locked, with
    # its rule; 3. the open case, locked, with the account's strikes; 4. the violation with its audit event and
    # the source's tally of reports (one statement on PostgreSQL; three elsewhere).
    if connection.vendor == "postgresql":
        assert statements == ["SELECT", "SELECT", "SELECT", "WITH"], queries.captured_queries
    else:
        assert statements == ["SELECT", "SELECT", "SELECT", "INSERT", "INSERT", "INSERT"], queries.captured_queries
    assert len(queries) == len(statements) + 2  # and the transaction (a savepoint here, BEGIN and COMMIT when served)
    event = AuditEvent.objects.get(verb="violation.reported", target_id=str(result.violation.pk))
    assert event.after == {"rule": "rate-limit-overuse", "severity": "medium", "source": "ratewatch",
                           "external_id": result.violation.external_id, "api_key": None}


def test_a_replay_costs_two_queries_and_answers_the_first_report(as_detector, account):
    first = services.violation_report(actor=as_detector, **report(account, external_id="evt-1"))
    with CaptureQueriesContext(connection) as queries:
        again = services.violation_report(actor=as_detector, **report(account, external_id="evt-1", summary="Other."))
    assert (again.created, again.violation.pk) == (False, first.violation.pk)
    # The source with the earlier report's id, that report, and the case's advice (its open violations, strikes).
    assert len(queries) == 4, queries.captured_queries
    assert Violation.objects.count() == 1


def test_a_batch_of_100_over_5_accounts_costs_ten_queries_on_postgresql(as_detector):
    accounts = [AccountFactory() for _ in range(5)]
    services.violation_report_batch(actor=as_detector, reports=[report(a) for a in accounts])
    reports = [report(accounts[n % 5], rule=("rate-limit-overuse", "spam-fraud")[n % 2]) for n in range(100)]
    with CaptureQueriesContext(connection) as queries:
        answers = services.violation_report_batch(actor=as_detector, reports=reports)
    assert all(answer.created for answer in answers)
    # The source, the earlier reports, the accounts, the rules; in the transaction: the accounts locked, their open
    # cases locked, the violations with their audit events and the source's tally (one statement on PostgreSQL;
    # elsewhere three, and SQLite's bound on a statement's variables splits two of them in two each), the strikes.
    expected = 10 if connection.vendor == "postgresql" else 14
    assert len(queries) == expected, [q["sql"][:80] for q in queries.captured_queries]
    assert AuditEvent.objects.filter(verb="violation.reported").count() == 105


def test_the_rule_read_with_the_account_is_the_rule_as_stored():
    for rule in Rule.objects.all():
        row = Rule.objects.filter(pk=rule.pk).annotate(row=_active_rule_row(rule.code)).values_list("row", flat=True)
        if not rule.is_active:
            assert row.get() is None
            continue
        folded = _rule_from_row(row.get())
        for field in Rule._meta.concrete_fields:
            assert getattr(folded, field.attname) == getattr(rule, field.attname), field.name
        assert not folded._state.adding


def test_a_rule_changed_or_deactivated_behind_the_service_is_seen_by_the_next_report(as_detector, account):
    """No rule is cached between reports: a change made with a bare UPDATE (no version bump) counts at once."""
    services.violation_report(actor=as_detector, **report(account, rule="secrets-in-events", severity="high"))
    Rule.objects.filter(code="secrets-in-events").update(strike_window_days=5)
    result = services.violation_report(actor=as_detector, **report(account, rule="secrets-in-events", severity="high"))
    assert result.recommendation.reason.endswith("in 5 days -> throttle")
    assert result.violation.rule.strike_window_days == 5
    Rule.objects.filter(code="secrets-in-events").update(is_active=False)
    with pytest.raises(ValidationFailed) as refused:
        services.violation_report(actor=as_detector, **report(account, rule="secrets-in-events"))
    assert refused.value.fields == {"rule": ["No active rule 'secrets-in-events'."]}


def test_an_unknown_account_and_rule_are_both_named(as_detector):
    with pytest.raises(ValidationFailed) as refused:
        services.violation_report(actor=as_detector, **{**report(AccountFactory.build(public_id="acct_nobody")),
                                                          "rule": "no-such-rule"})
    assert set(refused.value.fields) == {"account", "rule"}


def test_the_strikes_read_with_the_open_case_count_the_other_cases_in_the_window(as_detector, as_lead, account):
    _actioned_case(as_detector, as_lead, account, "old", applied_days_ago=120)  # outside the window
    _actioned_case(as_detector, as_lead, account, "recent", applied_days_ago=10)
    open_case = services.violation_report(actor=as_detector, **report(account, external_id="open")).violation.case
    action = services.action_propose(actor=as_lead, case_id=open_case.pk, kind="warning", reason="x")
    services.action_apply(action_id=action.pk)  # a strike on the case itself does not count against it

    result = services.violation_report(actor=as_detector, **report(account, external_id="now", severity="high"))
    assert result.violation.case_id == open_case.pk
    assert result.recommendation.reason == "high severity, 1 strike in 90 days -> suspend"
    assert services.strikes_for(account_id=account.pk, window_days=90, now=timezone.now(),
                                exclude_case_id=open_case.pk) == 1
