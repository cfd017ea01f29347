"""The AUP rule catalogue over the API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from enforcement.models import AuditEvent, EnforcementAction, Rule, RuleVersion
from tests.api.helpers import assert_error
from tests.factories import AccountFactory, CaseFactory, EnforcementActionFactory, ViolationFactory

pytestmark = pytest.mark.django_db


def test_rules_are_listed_by_code(make_client):
    Rule.objects.filter(code="impersonation").update(is_active=False)
    response = make_client("cases:read").get("/api/v1/rules/", {"page_size": 500})
    assert response.status_code == 200
    rules = response.json()["results"]
    codes = [rule["code"] for rule in rules]
    assert codes == sorted(Rule.objects.filter(is_active=True).values_list("code", flat=True))
    assert "impersonation" not in codes
    abuse = next(rule for rule in rules if rule["code"] == "security-abuse")
    assert (abuse["default_severity"], abuse["act_first"]) == ("critical", True)
    assert {"code", "title", "default_severity", "act_first"} <= set(abuse)


def test_rules_paginate_with_a_cursor(make_client):
    client = make_client("cases:read")
    first = client.get("/api/v1/rules/", {"page_size": 5}).json()
    second = client.get(first["next"]).json()
    assert [r["code"] for r in first["results"]] < [r["code"] for r in second["results"]]


def test_rules_need_cases_read(make_client, anon_client):
    assert_error(anon_client.get("/api/v1/rules/"), 401, "not_authenticated")
    assert_error(make_client("violations:write").get("/api/v1/rules/"), 403, "forbidden")


# --------------------------------------------------------------------------- simulation


def _ago(days: float):
    return timezone.now() - timedelta(days=days)


@pytest.fixture
def small_history():
    """covert-tracking (medium -> warning by default): a first offence, a repeat offender, a high one."""
    rule = Rule.objects.get(code="covert-tracking")
    first = ViolationFactory(rule=rule, severity="medium", reported_at=_ago(3),
                             account=AccountFactory(public_id="acct_first"))
    repeat = AccountFactory(public_id="acct_repeat")
    EnforcementActionFactory(case=CaseFactory(account=repeat), kind="throttle", applied_at=_ago(40))
    again = ViolationFactory(rule=rule, severity="medium", reported_at=_ago(2), account=repeat)
    EnforcementActionFactory(case=again.case, kind="throttle", applied_at=_ago(1))
    ViolationFactory(rule=rule, severity="high", reported_at=_ago(1))
    return {"first": first, "again": again}


def test_a_proposed_ladder_is_replayed_over_the_rules_decisions(make_client, small_history):
    client = make_client("cases:read")
    before = (AuditEvent.objects.count(), RuleVersion.objects.count(), EnforcementAction.objects.count())
    response = client.post(
        "/api/v1/rules/covert-tracking/simulate/", {"ladder_overrides": {"medium": "suspend"}, "days": 30},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["rule"], body["days"], body["decisions"], body["changed"], body["accounts_affected"]) == (
        "covert-tracking", 30, 3, 2, 2)
    assert body["by_change"] == {"throttle->terminate": 1, "warning->suspend": 1}
    assert body["done"] == {"actioned": 1, "as_current": 1, "as_proposed": 0}
    again, first = body["examples"]  # one of each change, the newest first
    again_violation = small_history["again"]
    assert again == {
        "violation": again_violation.pk, "case": again_violation.case_id, "account": "acct_repeat",
        "reported_at": again["reported_at"], "severity": "medium", "strikes": 1, "before": "throttle",
        "after": "terminate", "reason": "medium severity, 1 strike in 90 days -> terminate",
        "current_reason": "medium severity, 1 strike in 90 days -> throttle",
        "done": {"action": again_violation.case.actions.get().pk, "kind": "throttle", "status": "applied"},
    }
    assert (first["account"], first["before"], first["after"], first["done"]) == (
        "acct_first", "warning", "suspend", None)
    # It changed nothing: no rule version, no audit event, no action.
    assert (AuditEvent.objects.count(), RuleVersion.objects.count(), EnforcementAction.objects.count()) == before
    assert Rule.objects.get(code="covert-tracking").ladder_overrides == {}


def test_a_simulation_keeps_what_is_left_out_and_replays_90_days_by_default(make_client, small_history):
    response = make_client("cases:read").post("/api/v1/rules/covert-tracking/simulate/", {}, format="json")
    assert response.status_code == 200
    assert response.json() | {"since": None} == {
        "rule": "covert-tracking", "days": 90, "since": None, "decisions": 3, "changed": 0, "by_change": {},
        "accounts_affected": 0, "done": {"actioned": 1, "as_current": 1, "as_proposed": 1}, "examples": [],
    }


@pytest.mark.parametrize(("body", "fields"), [
    ({"ladder_overrides": {"medium": "obliterate"}}, ["ladder_overrides"]),
    ({"ladder_overrides": {"huge": "suspend", "low": "warning"}}, ["ladder_overrides"]),
    ({"ladder_overrides": ["suspend"]}, ["ladder_overrides"]),
    ({"ladder_overrides": {"high": {"rung": "suspend"}}}, ["ladder_overrides.high"]),
    ({"days": 0}, ["days"]),
    ({"days": 366}, ["days"]),
    ({"days": "ninety"}, ["days"]),
    ({"strike_window_days": 0}, ["strike_window_days"]),
    ({"strike_window_days": 10**9}, ["strike_window_days"]),
    ({"act_first": "perhaps", "auto_action": [True]}, ["act_first", "auto_action"]),
])
def test_a_bad_proposal_is_refused_with_its_fields_and_changes_nothing(make_client, body, fields):
    response = make_client("cases:read").post("/api/v1/rules/covert-tracking/simulate/", body, format="json")
    assert_error(response, 400, "validation_error", fields=fields)
    assert not AuditEvent.objects.filter(verb__startswith="rule.").exists()


def test_simulating_an_unknown_rule_is_not_found(make_client):
    client = make_client("cases:read")
    assert_error(client.post("/api/v1/rules/no-such-rule/simulate/", {}, format="json"), 404, "not_found")
    assert_error(client.post("/api/v1/rules/no%20such/simulate/", {}, format="json"), 404, "not_found")


def test_simulating_needs_cases_read(make_client, anon_client, staff_client, auditor, outsider):
    url = "/api/v1/rules/covert-tracking/simulate/"
    assert_error(anon_client.post(url, {}, format="json"), 401, "not_authenticated")
    assert_error(make_client("violations:write", "cases:write").post(url, {}, format="json"), 403, "forbidden")
    assert_error(staff_client(outsider).post(url, {}, format="json"), 403, "forbidden")
    auditor_session = staff_client(auditor)  # reading is any role's
    auditor_session.get("/api/v1/rules/", HTTP_ACCEPT="text/html")  # the browsable API sets the CSRF cookie
    response = auditor_session.post(url, {}, format="json", HTTP_X_CSRFTOKEN=auditor_session.cookies["csrftoken"].value)
    assert response.status_code == 200
    assert_error(make_client("cases:read").get(url), 405, "method_not_allowed")
