"""API.md "Decision rules every entry point enforces", tried the way an attacker or a hurried lead would:
a token instead of a person, a token made by the requester, an agent's critical report, an appeal decided
by the approver, a stale approval, and decisions without reasons. Each refusal changes nothing and is
audited."""

import pytest
from rest_framework.test import APIClient

from enforcement import services
from enforcement.actors import Actor
from enforcement.models import ActionStatus, Appeal, AuditEvent, EnforcementAction, Violation
from tests.api.helpers import assert_error
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def token_of(person, *scopes: str) -> APIClient:
    """A service token the person created (in the admin, or through the service), used over the API."""
    _, raw = services.service_token_create(actor=Actor.for_user(person), name=f"{person.username}-{'-'.join(scopes)}",
                                           scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def case_id(account, keys, report):
    return report(account, rule="unlawful-use", severity="high").violation.case_id


def propose(client, case_id, kind):
    response = client.post(f"/api/v1/cases/{case_id}/actions/", {"kind": kind, "reason": "Repeated fraud."},
                           format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def approve(client, action_id):
    return client.post(f"/api/v1/actions/{action_id}/approve/", format="json")


def test_a_termination_is_approved_by_a_person_never_a_token(lead, make_client, case_id, second_lead):
    termination = propose(session(lead), case_id, "terminate")
    stranger_token = make_client("actions:approve")  # even a token nobody involved made
    assert_error(approve(stranger_token, termination), 403, "person_required")
    assert_error(approve(token_of(second_lead, "actions:approve"), termination), 403, "person_required")
    assert EnforcementAction.objects.get(pk=termination).status == ActionStatus.AWAITING_APPROVAL
    assert AuditEvent.objects.filter(verb="action.approve.refused", target_id=str(termination)).count() == 2
    assert approve(session(second_lead), termination).json()["status"] == "scheduled"


def test_a_lead_cannot_approve_through_a_token_they_created(lead, second_lead, case_id):
    # The lead asks for a suspension through a token of theirs that may propose but not approve...
    suspension = propose(token_of(lead, "actions:write"), case_id, "suspend")
    assert EnforcementAction.objects.get(pk=suspension).status == ActionStatus.AWAITING_APPROVAL
    # ...then tries to approve it in person, and through another token they made: both are the requester.
    assert_error(approve(session(lead), suspension), 403, "not_independent")
    assert_error(approve(token_of(lead, "actions:approve"), suspension), 403, "not_independent")
    assert EnforcementAction.objects.get(pk=suspension).status == ActionStatus.AWAITING_APPROVAL
    assert approve(session(second_lead), suspension).status_code == 200


def test_approving_what_another_lead_decided_names_them_and_a_retry_is_harmless(agent, lead, second_lead, case_id):
    suspension = propose(session(agent), case_id, "suspend")
    first = approve(session(lead), suspension)
    assert first.status_code == 200
    assert approve(session(lead), suspension).status_code == 200  # the same lead's double click
    late = approve(session(second_lead), suspension)
    assert_error(late, 409, "already_decided")
    assert "already approved by lead" in late.json()["error"]["message"]
    assert AuditEvent.objects.filter(verb="action.approved").count() == 1


def test_an_agents_critical_act_first_report_waits_for_a_lead(agent, account, keys):
    response = session(agent).post("/api/v1/violations/", {
        "account": account.public_id, "rule": "security-abuse", "severity": "critical", "source": "agent-desk",
        "external_id": "ticket-1", "summary": "A denial-of-service run against the ingest path.",
    }, format="json")
    assert response.status_code == 201, response.content
    [action] = EnforcementAction.objects.filter(account=account)
    assert (action.kind, action.status, action.act_first) == ("suspend", ActionStatus.AWAITING_APPROVAL, False)
    assert {key.status for key in account.keys.all()} == {"active"}  # nothing happened to the keys
    assert action.case.review_due_at is not None  # the case stays due while it waits for a lead


def test_an_appeal_is_decided_by_a_lead_who_took_no_part(agent, lead, second_lead, case_id, make_client):
    suspension = propose(session(agent), case_id, "suspend")
    approve(session(lead), suspension)
    services.action_apply(action_id=suspension)
    appeal_id = make_client("appeals:write").post(
        "/api/v1/appeals/", {"action": suspension, "message": "Wrong account."}, format="json"
    ).json()["id"]
    for not_independent in (session(lead), token_of(lead, "actions:approve")):
        assert_error(not_independent.post(f"/api/v1/appeals/{appeal_id}/decide/",
                                          {"outcome": "overturned", "note": "x"}, format="json"), 403,
                     "not_independent")
    third_lead = UserFactory(username="lead3", role="tns_lead")
    assert_error(session(third_lead).post(f"/api/v1/appeals/{appeal_id}/decide/", {"outcome": "upheld"},
                                          format="json"), 400, "validation_error", fields=["note"])
    assert Appeal.objects.get(pk=appeal_id).status == "pending"
    decided = session(third_lead).post(f"/api/v1/appeals/{appeal_id}/decide/",
                                       {"outcome": "upheld", "note": "The pixels are on your site."}, format="json")
    assert decided.status_code == 200 and decided.json()["decision_note"] == "The pixels are on your site."
    assert Appeal.objects.get(pk=appeal_id).due_at is not None


def test_resolving_a_case_needs_a_resolution_and_dismisses_what_is_open(agent, case_id):
    client = session(agent)
    assert_error(client.post(f"/api/v1/cases/{case_id}/resolve/", {"resolution": ""}, format="json"), 400,
                 "validation_error", fields=["resolution"])
    response = client.post(f"/api/v1/cases/{case_id}/resolve/", {"resolution": "Customer removed the pixels."},
                           format="json")
    assert response.status_code == 200 and response.json()["status"] == "closed"
    assert list(Violation.objects.filter(case_id=case_id).values_list("status", "dismissed_reason")) == [
        ("dismissed", "Customer removed the pixels.")
    ]
