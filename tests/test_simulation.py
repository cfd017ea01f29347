"""Policy simulation: a proposed ladder replayed over a rule's past decisions, on a history whose answer is known."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from enforcement import services
from enforcement.errors import NotFound, ValidationFailed
from enforcement.models import AuditEvent, EnforcementAction, Rule, Violation
from enforcement.services.recommendations import StrikeHistory
from tests.factories import AccountFactory, CaseFactory, EnforcementActionFactory, ViolationFactory

pytestmark = pytest.mark.django_db

A = EnforcementAction.Status
RULE = "covert-tracking"  # medium by default; no overrides, not act-first, the default 90-day strike window


def ago(days: float):
    return timezone.now() - timedelta(days=days)


def strike(account, days_ago: float, *, status=A.APPLIED, kind="throttle", **extra):
    """An actioned case of the account (a strike while not overturned), applied ``days_ago``."""
    return EnforcementActionFactory(case=CaseFactory(account=account), kind=kind, status=status,
                                    applied_at=ago(days_ago), **extra)


@pytest.fixture
def history():
    """Violations of covert-tracking in the last 90 days, with what each account's strikes were then.

    Under the current policy (medium -> warning, high -> throttle, each strike one rung up) and under
    {"medium": "suspend"}:
      a  medium, 0 strikes                                   warning -> suspend
      b  medium, 1 strike (a throttle 30 days ago)           throttle -> terminate
         low, same case, 3 days ago                          throttle, unchanged
      c  high, 0 strikes                                     throttle, unchanged
      d  medium; its own case's action and an overturned     warning -> suspend
         one do not count
      e  medium 15 days ago; a strike 120 days ago is        warning -> suspend
         outside the window, one after it is not yet;
         its violation of 100 days ago is not replayed
      g  medium; two struck cases (one with two actions)     suspend -> terminate
      h  medium; an expired action is still a strike         throttle -> terminate
      f  medium, dismissed (as closing a case does)          warning -> suspend
    Not decisions: another rule's violation.
    """
    rule = Rule.objects.get(code=RULE)
    accounts = {name: AccountFactory(public_id=f"acct_sim_{name}") for name in "abcdefgh"}
    a, b, c, d, e, f, g, h = accounts.values()
    v = {}

    v["a"] = ViolationFactory(account=a, rule=rule, severity="medium", reported_at=ago(10))
    EnforcementActionFactory(case=v["a"].case, kind="warning", applied_at=ago(9))

    strike(b, 30)
    v["b"] = ViolationFactory(account=b, rule=rule, severity="medium", reported_at=ago(5))
    EnforcementActionFactory(case=v["b"].case, kind="throttle", status=A.AWAITING_APPROVAL, applied_at=None,
                             created_at=ago(4))
    EnforcementActionFactory(case=v["b"].case, kind="suspend", status=A.CANCELLED, applied_at=None,
                             created_at=ago(4))
    v["b_low"] = ViolationFactory(account=b, case=v["b"].case, rule=rule, severity="low", reported_at=ago(3))

    v["c"] = ViolationFactory(account=c, rule=rule, severity="high", reported_at=ago(2))

    d_case = CaseFactory(account=d)
    EnforcementActionFactory(case=d_case, kind="warning", applied_at=ago(25))
    strike(d, 40, status=A.REVERTED, overturned=True)
    v["d"] = ViolationFactory(account=d, case=d_case, rule=rule, severity="medium", reported_at=ago(20))

    strike(e, 120)
    strike(e, 5)
    ViolationFactory(account=e, rule=rule, severity="medium", reported_at=ago(100))
    v["e"] = ViolationFactory(account=e, rule=rule, severity="medium", reported_at=ago(15))

    v["f"] = ViolationFactory(account=f, rule=rule, severity="medium", reported_at=ago(6),
                              status=Violation.Status.DISMISSED)
    ViolationFactory(account=f, rule=Rule.objects.get(code="spam-fraud"), severity="medium", reported_at=ago(6))

    struck_twice = strike(g, 50).case
    EnforcementActionFactory(case=struck_twice, kind="suspend", applied_at=ago(49))
    strike(g, 60)
    v["g"] = ViolationFactory(account=g, rule=rule, severity="medium", reported_at=ago(8))

    strike(h, 12, status=A.EXPIRED)
    v["h"] = ViolationFactory(account=h, rule=rule, severity="medium", reported_at=ago(1))
    return {"accounts": accounts, "violations": v}


def test_a_proposed_first_rung_gives_exactly_the_changes_the_history_implies(history):
    result = services.policy_simulate(rule_code=RULE, changes={"ladder_overrides": {"medium": "suspend"}}, days=90)

    assert result.decisions == 9
    assert result.changed == 7
    assert result.by_change == {"warning->suspend": 4, "throttle->terminate": 2, "suspend->terminate": 1}
    assert result.accounts_affected == 7
    # What was done: a's warning, b's throttle awaiting a lead (its cancelled suspension is not something done).
    assert (result.actioned, result.done_as_current, result.done_as_proposed) == (2, 2, 0)

    examples = {example.violation: example for example in result.examples}
    v = history["violations"]
    assert set(examples) == {v[name].pk for name in "abdefgh"}
    b = examples[v["b"].pk]
    assert (b.case, b.account, b.severity, b.strikes) == (v["b"].case_id, "acct_sim_b", "medium", 1)
    assert (b.before, b.after) == ("throttle", "terminate")
    assert b.reason == "medium severity, 1 strike in 90 days -> terminate"
    assert b.current_reason == "medium severity, 1 strike in 90 days -> throttle"
    assert (b.done.kind, b.done.status) == ("throttle", A.AWAITING_APPROVAL)
    assert examples[v["a"].pk].done.kind == "warning"
    assert examples[v["d"].pk].done is None  # its case's warning came before the violation
    assert examples[v["d"].pk].strikes == 0
    assert examples[v["g"].pk].strikes == 2
    # The most frequent change first, and among its examples the newest first.
    assert [example.violation for example in result.examples[:4]] == [v["f"].pk, v["h"].pk, v["g"].pk, v["a"].pk]


def test_a_longer_strike_window_reaches_older_strikes(history):
    result = services.policy_simulate(rule_code=RULE, changes={"strike_window_days": 200}, days=90)
    assert (result.decisions, result.changed, result.accounts_affected) == (9, 1, 1)
    assert result.by_change == {"warning->throttle": 1}
    (example,) = result.examples
    assert example.violation == history["violations"]["e"].pk
    assert example.reason == "medium severity, 1 strike in 200 days -> throttle"


def test_the_period_replayed_is_the_last_days(history):
    result = services.policy_simulate(rule_code=RULE, changes={"ladder_overrides": {"medium": "suspend"}}, days=7)
    assert result.decisions == 5  # b (medium and low), c, f, h
    assert result.by_change == {"throttle->terminate": 2, "warning->suspend": 1}


def test_the_current_policy_proposed_changes_nothing(history):
    result = services.policy_simulate(rule_code=RULE, changes={"ladder_overrides": {}, "act_first": False}, days=90)
    assert (result.decisions, result.changed, result.by_change, result.examples) == (9, 0, {}, [])


def test_act_first_and_never_automatic_show_as_changes():
    rule = Rule.objects.get(code="spam-fraud")  # act-first, critical by default
    trusted = ViolationFactory(rule=rule, severity="critical", source_trusted=True, reported_at=ago(1))
    ViolationFactory(rule=rule, severity="critical", source_trusted=False, reported_at=ago(1))

    result = services.policy_simulate(rule_code="spam-fraud", changes={"act_first": False})
    assert result.by_change == {"suspend (act first)->suspend": 1}
    assert result.examples[0].violation == trusted.pk

    result = services.policy_simulate(rule_code="spam-fraud", changes={"auto_action": False})
    assert result.by_change == {"suspend (act first)->none": 1, "suspend->none": 1}
    assert result.examples[0].reason == "spam-fraud: never actioned automatically; a person decides"


def test_what_was_done_is_what_an_action_was_decided_on():
    """An action names the violations it was decided on (``decided_under``): one dismissed before the action was
    taken is not among them, though it came first on the case. An action that names none (recorded before actions
    did) stands for every violation of its case reported before it."""
    first = ViolationFactory(severity="medium", reported_at=ago(5), status=Violation.Status.DISMISSED)
    second = ViolationFactory(severity="medium", reported_at=ago(3), account=first.account, case=first.case)
    throttle = EnforcementActionFactory(case=first.case, kind="throttle", applied_at=ago(2),
                                        decided_under={"violations": [second.pk], "rules": {RULE: 1}, "ladder": "-"})
    other = ViolationFactory(severity="medium", reported_at=ago(4))
    unnamed = EnforcementActionFactory(case=other.case, kind="warning", applied_at=ago(1))

    result = services.policy_simulate(rule_code=RULE, changes={"ladder_overrides": {"medium": "throttle"}})
    done = {example.violation: example.done for example in result.examples}
    assert done[first.pk] is None
    assert done[second.pk].action == throttle.pk
    assert done[other.pk].action == unnamed.pk
    assert (result.decisions, result.done_as_current, result.done_as_proposed) == (3, 1, 1)


def test_the_replay_agrees_with_what_the_ladder_said_when_each_violation_was_reported(as_trusted_detector, as_lead):
    """"Before" is the ladder as it answered at report time, strikes included: one definition, not a copy."""
    account = AccountFactory()
    first = services.violation_report(actor=as_trusted_detector, account=account, rule=RULE, severity="medium",
                                      source="sim", external_id="sim-1", summary="First.")
    warning = services.action_propose(actor=as_lead, case_id=first.violation.case_id, kind="warning", reason="x")
    services.action_apply(action_id=warning.pk)
    services.case_resolve(actor=as_lead, case_id=first.violation.case_id, resolution="Fixed.")
    second = services.violation_report(actor=as_trusted_detector, account=account, rule=RULE, severity="medium",
                                       source="sim", external_id="sim-2", summary="Again.")
    assert second.recommendation.kind == "throttle"

    result = services.policy_simulate(rule_code=RULE, changes={"ladder_overrides": {"medium": "throttle"}})
    by_violation = {example.violation: example for example in result.examples}
    assert by_violation[first.violation.pk].current_reason == first.recommendation.reason
    assert by_violation[second.violation.pk].current_reason == second.recommendation.reason
    assert by_violation[first.violation.pk].done.kind == "warning"  # its case closed since: still a decision
    assert result.by_change == {"warning->throttle": 1, "throttle->suspend": 1}


def test_strikes_counted_in_memory_are_those_the_database_counts(history):
    """The replay's strike counts (``StrikeHistory``) and ``strikes_for`` (the live ladder's) are one rule."""
    accounts = list(history["accounts"].values())
    now = timezone.now()
    strikes = StrikeHistory.load(account_ids=[account.pk for account in accounts], since=now - timedelta(days=200))
    for account in accounts:
        for case_id in [None, *account.cases.values_list("pk", flat=True)]:
            for window in (10, 45, 90, 200):
                assert strikes.count(account_id=account.pk, since=now - timedelta(days=window),
                                     exclude_case_id=case_id) == services.strikes_for(
                    account_id=account.pk, window_days=window, now=now, exclude_case_id=case_id
                ), (account.public_id, case_id, window)


def test_a_simulation_reads_only_and_in_a_fixed_number_of_queries(history):
    with CaptureQueriesContext(connection) as few:
        services.policy_simulate(rule_code=RULE, changes={"ladder_overrides": {"medium": "suspend"}})
    for n in range(30):  # more decisions, more strikes: no more queries
        account = AccountFactory()
        strike(account, 20 + n)
        ViolationFactory(account=account, rule=Rule.objects.get(code=RULE), reported_at=ago(n % 10 + 1))
    with CaptureQueriesContext(connection) as many:
        result = services.policy_simulate(rule_code=RULE, changes={"ladder_overrides": {"medium": "suspend"}})
    assert result.decisions == 39
    assert len(few) == len(many) == 5  # the rule, the violations, the strikes, the actions, the examples' accounts
    assert all(query["sql"].lstrip().upper().startswith("SELECT") for query in [*few, *many])
    rule = Rule.objects.get(code=RULE)
    assert (rule.ladder_overrides, rule.version) == ({}, 1)
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(("changes", "days", "fields"), [
    ({"ladder_overrides": {"huge": "obliterate"}}, 90, ["ladder_overrides"]),
    ({"ladder_overrides": ["suspend"]}, 90, ["ladder_overrides"]),
    ({}, 0, ["days"]),
    ({}, 366, ["days"]),
    ({"strike_window_days": 100_000}, 90, ["strike_window_days"]),
])
def test_a_bad_proposal_is_refused_with_its_fields(changes, days, fields):
    with pytest.raises(ValidationFailed) as refused:
        services.policy_simulate(rule_code=RULE, changes=changes, days=days)
    assert sorted(refused.value.fields) == fields


def test_an_unknown_rule_is_not_found():
    with pytest.raises(NotFound):
        services.policy_simulate(rule_code="no-such-rule", changes={})
