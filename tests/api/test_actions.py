"""Enforcement actions: propose on a case (by kind or by the ladder), approve (four eyes), cancel, revert."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from enforcement import services
from enforcement.models import AuditEvent, Case, EnforcementAction
from tests.api.helpers import assert_error
from tests.factories import missing_pk

pytestmark = pytest.mark.django_db


@pytest.fixture
def case_id(account, keys, report):
    return report(account, rule="unlawful-use", severity="high").violation.case_id


@pytest.fixture
def proposer(make_client):
    return make_client("actions:write", "cases:read")


def session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_propose_a_warning_by_kind(proposer, case_id, django_capture_on_commit_callbacks):
    deadline = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    with django_capture_on_commit_callbacks(execute=True):
        response = proposer.post(f"/api/v1/cases/{case_id}/actions/", {
            "kind": "warning", "reason": "Stop the scraping.", "remediation_deadline": deadline.isoformat(),
        }, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["kind"], data["status"], data["case"], data["keys"]) == ("warning", "scheduled", case_id, [])
    assert data["remediation_deadline"].startswith(deadline.strftime("%Y-%m-%dT%H:%M:%S"))
    assert data["requested_by"] == f"token:{proposer.token.name}"
    # Applied by the task once the request's transaction committed.
    assert EnforcementAction.objects.get(pk=data["id"]).status == "applied"


def test_propose_without_kind_follows_the_ladder(proposer, case_id):
    data = proposer.post(f"/api/v1/cases/{case_id}/actions/", {}, format="json").json()
    assert data["kind"] == "throttle"  # high severity, no strikes
    assert data["reason"] == "high severity, 0 strikes in 90 days -> throttle"


def test_propose_on_some_keys_with_limits(proposer, case_id, keys):
    data = proposer.post(f"/api/v1/cases/{case_id}/actions/", {
        "kind": "throttle", "reason": "Too fast.", "keys": [keys[1].prefix], "rate_limit_per_minute": 30,
        "ip_rate_limit_per_minute": 5, "expires_at": (timezone.now() + timedelta(days=1)).isoformat(),
    }, format="json").json()
    assert (data["keys"], data["rate_limit_per_minute"], data["ip_rate_limit_per_minute"]) == (
        [keys[1].prefix], 30, 5)


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"kind": "warning", "reason": "x", "rate_limit_per_minute": 10}, ["rate_limit_per_minute"]),
        ({"kind": "throttle", "reason": "x", "expires_at": "2001-01-01T00:00:00Z"}, ["expires_at"]),
        ({"kind": "throttle", "reason": "x", "keys": ["sk_live_NotMine1"]}, ["keys"]),
        ({"kind": "ban", "reason": "x"}, ["kind"]),
        ({"kind": "warning", "reason": " "}, ["reason"]),
        ({"kind": "throttle", "reason": "x", "rate_limit_per_minute": 0}, ["rate_limit_per_minute"]),
    ],
)
def test_propose_validation_changes_nothing(proposer, case_id, payload, fields):
    assert_error(proposer.post(f"/api/v1/cases/{case_id}/actions/", payload, format="json"), 400,
                 "validation_error", fields=fields)
    assert not EnforcementAction.objects.exists()


def test_propose_conflicts_and_missing_cases(proposer, case_id):
    assert proposer.post(f"/api/v1/cases/{case_id}/actions/", {"kind": "terminate", "reason": "x"},
                         format="json").status_code == 201
    assert_error(proposer.post(f"/api/v1/cases/{case_id}/actions/", {"kind": "terminate", "reason": "y"},
                               format="json"), 409, "conflict")
    assert_error(proposer.post(f"/api/v1/cases/{missing_pk(Case)}/actions/", {"kind": "warning", "reason": "x"},
                               format="json"), 404, "not_found")


def test_propose_needs_actions_write(make_client, case_id):
    assert_error(make_client("cases:write", "cases:read").post(
        f"/api/v1/cases/{case_id}/actions/", {"kind": "warning", "reason": "x"}, format="json"), 403, "forbidden")
    assert not EnforcementAction.objects.exists()


def test_propose_replays_with_an_idempotency_key(proposer, case_id):
    payload = {"kind": "warning", "reason": "Once."}
    first = proposer.post(f"/api/v1/cases/{case_id}/actions/", payload, format="json", HTTP_IDEMPOTENCY_KEY="a1")
    retry = proposer.post(f"/api/v1/cases/{case_id}/actions/", payload, format="json", HTTP_IDEMPOTENCY_KEY="a1")
    assert first.status_code == retry.status_code == 201 and retry.json()["id"] == first.json()["id"]
    assert EnforcementAction.objects.count() == 1


def test_a_suspension_without_approve_scope_waits_for_a_lead(proposer, make_client, case_id,
                                                              django_capture_on_commit_callbacks):
    action = proposer.post(f"/api/v1/cases/{case_id}/actions/", {"kind": "suspend", "reason": "Abuse."},
                           format="json").json()
    assert action["status"] == "awaiting_approval"
    assert_error(proposer.post(f"/api/v1/actions/{action['id']}/approve/", format="json"), 403, "forbidden")
    approver = make_client("actions:approve", "actions:write")
    with django_capture_on_commit_callbacks(execute=True):
        response = approver.post(f"/api/v1/actions/{action['id']}/approve/", format="json")
    assert response.status_code == 200
    assert response.json()["approved_by"] == f"token:{approver.token.name}"
    assert EnforcementAction.objects.get(pk=action["id"]).status == "applied"
    # Approving again changes nothing; cancelling an applied action is an invalid transition.
    assert approver.post(f"/api/v1/actions/{action['id']}/approve/", format="json").status_code == 200
    assert_error(approver.post(f"/api/v1/actions/{action['id']}/cancel/", {}, format="json"), 409,
                 "invalid_transition")


def test_a_termination_needs_a_second_lead(lead, second_lead, agent, case_id):
    response = session(lead).post(f"/api/v1/cases/{case_id}/actions/", {"kind": "terminate", "reason": "Fraud."},
                                  format="json")
    action_id = response.json()["id"]
    assert response.json()["status"] == "awaiting_approval"
    assert_error(session(lead).post(f"/api/v1/actions/{action_id}/approve/", format="json"), 403, "not_independent")
    assert_error(session(agent).post(f"/api/v1/actions/{action_id}/approve/", format="json"), 403, "forbidden")
    response = session(second_lead).post(f"/api/v1/actions/{action_id}/approve/", format="json")
    assert response.status_code == 200 and response.json()["status"] == "scheduled"
    assert response.json()["approved_by"] == "lead2"


def test_cancel_an_action_not_applied_yet(proposer, case_id):
    action = proposer.post(f"/api/v1/cases/{case_id}/actions/", {"kind": "throttle", "reason": "Slow."},
                           format="json").json()
    assert action["status"] == "scheduled"  # its task runs once the request commits
    response = proposer.post(f"/api/v1/actions/{action['id']}/cancel/", {"reason": "They stopped."},
                             format="json")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert AuditEvent.objects.get(verb="action.cancelled").note == "They stopped."


def test_revert_an_applied_throttle_but_not_a_suspension_without_approve(proposer, case_id, as_lead, keys):
    throttle = services.action_propose(actor=as_lead, case_id=case_id, kind="throttle", reason="Too fast.")
    services.action_apply(action_id=throttle.pk)
    response = proposer.post(f"/api/v1/actions/{throttle.pk}/revert/", {"reason": "Fixed."}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "reverted"
    keys[0].refresh_from_db()
    assert keys[0].status == "active"
    assert_error(proposer.post(f"/api/v1/actions/{throttle.pk}/revert/", {}, format="json"), 409,
                 "invalid_transition")
    suspension = services.action_propose(actor=as_lead, case_id=case_id, kind="suspend", reason="Abuse.")
    services.action_apply(action_id=suspension.pk)
    assert_error(proposer.post(f"/api/v1/actions/{suspension.pk}/revert/", {}, format="json"), 403, "forbidden")
    assert EnforcementAction.objects.get(pk=suspension.pk).status == "applied"


def test_list_and_read_actions(make_client, case_id, as_lead):
    warning = services.action_propose(actor=as_lead, case_id=case_id, kind="warning", reason="Hey.")
    services.action_propose(actor=as_lead, case_id=case_id, kind="throttle", reason="Slow.")
    reader = make_client("cases:read")
    assert [a["kind"] for a in reader.get("/api/v1/actions/", {"kind": "warning"}).json()["results"]] == ["warning"]
    assert reader.get(f"/api/v1/actions/{warning.pk}/").json()["reason"] == "Hey."
    assert_error(reader.get(f"/api/v1/actions/{missing_pk(EnforcementAction)}/"), 404, "not_found")
    assert_error(make_client("actions:write").get("/api/v1/actions/"), 403, "forbidden")
