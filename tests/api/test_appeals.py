"""Appeals: record a customer's appeal of an applied action; a lead upholds or overturns it."""

import pytest
from rest_framework.test import APIClient

from enforcement import services
from enforcement.models import Appeal, EnforcementAction
from tests.api.helpers import assert_error
from tests.factories import missing_pk

pytestmark = pytest.mark.django_db


@pytest.fixture
def suspension(account, keys, report, as_lead):
    case_id = report(account, rule="unlawful-use", severity="high").violation.case_id
    action = services.action_propose(actor=as_lead, case_id=case_id, kind="suspend", reason="Unlawful use.")
    return services.action_apply(action_id=action.pk)


@pytest.fixture
def support(make_client):
    return make_client("appeals:write")


def test_record_an_appeal(support, suspension):
    response = support.post("/api/v1/appeals/", {"action": suspension.pk, "message": "We fixed it."}, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["action"], data["case"], data["status"], data["message"]) == (
        suspension.pk, suspension.case_id, "pending", "We fixed it.")
    assert data["submitted_by"] == f"token:{support.token.name}"
    suspension.case.refresh_from_db()
    assert suspension.case.status == "appealed"


def test_appeal_errors(support, suspension, account, report, as_lead):
    assert_error(support.post("/api/v1/appeals/", {"action": suspension.pk}, format="json"), 400,
                 "validation_error", fields=["message"])
    assert_error(support.post("/api/v1/appeals/", {"action": "first", "message": "x"}, format="json"), 400,
                 "validation_error", fields=["action"])
    missing = missing_pk(EnforcementAction)
    assert_error(support.post("/api/v1/appeals/", {"action": missing, "message": "x"}, format="json"), 404,
                 "not_found")
    support.post("/api/v1/appeals/", {"action": suspension.pk, "message": "Once."}, format="json")
    assert_error(support.post("/api/v1/appeals/", {"action": suspension.pk, "message": "Twice."}, format="json"),
                 409, "conflict")
    pending = services.action_propose(actor=as_lead, case_id=suspension.case_id, kind="terminate", reason="x")
    assert_error(support.post("/api/v1/appeals/", {"action": pending.pk, "message": "x"}, format="json"), 409,
                 "invalid_transition")
    assert Appeal.objects.count() == 1


def test_appeal_needs_appeals_write_and_replays_with_an_idempotency_key(make_client, support, suspension):
    assert_error(make_client("cases:write", "actions:write").post(
        "/api/v1/appeals/", {"action": suspension.pk, "message": "x"}, format="json"), 403, "forbidden")
    payload = {"action": suspension.pk, "message": "Please reconsider."}
    first = support.post("/api/v1/appeals/", payload, format="json", HTTP_IDEMPOTENCY_KEY="ap-1")
    retry = support.post("/api/v1/appeals/", payload, format="json", HTTP_IDEMPOTENCY_KEY="ap-1")
    assert first.status_code == retry.status_code == 201 and retry.json() == first.json()
    assert Appeal.objects.count() == 1


def test_overturning_reverts_the_action(support, make_client, suspension, keys):
    appeal_id = support.post("/api/v1/appeals/", {"action": suspension.pk, "message": "Mistake."},
                             format="json").json()["id"]
    lead = make_client("actions:approve")
    response = lead.post(f"/api/v1/appeals/{appeal_id}/decide/", {"outcome": "overturned", "note": "Our error."},
                         format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["decision_note"]) == ("overturned", "Our error.")
    action = EnforcementAction.objects.get(pk=suspension.pk)
    assert action.status == "reverted" and action.overturned
    keys[0].refresh_from_db()
    assert keys[0].status == "active"
    # Deciding the other way afterwards is an invalid transition.
    assert_error(lead.post(f"/api/v1/appeals/{appeal_id}/decide/", {"outcome": "upheld", "note": "No."},
                           format="json"), 409, "invalid_transition")


def test_deciding_needs_a_lead(support, make_client, agent, suspension):
    appeal_id = support.post("/api/v1/appeals/", {"action": suspension.pk, "message": "x"}, format="json").json()["id"]
    assert_error(support.post(f"/api/v1/appeals/{appeal_id}/decide/", {"outcome": "upheld"}, format="json"), 403,
                 "forbidden")
    agent_client = APIClient()
    agent_client.force_login(agent)
    assert_error(agent_client.post(f"/api/v1/appeals/{appeal_id}/decide/", {"outcome": "upheld"}, format="json"),
                 403, "forbidden")
    assert_error(make_client("actions:approve").post(f"/api/v1/appeals/{appeal_id}/decide/",
                                                     {"outcome": "maybe"}, format="json"),
                 400, "validation_error", fields=["outcome"])
    assert Appeal.objects.get(pk=appeal_id).status == "pending"


def test_list_and_read_appeals(support, make_client, suspension):
    appeal_id = support.post("/api/v1/appeals/", {"action": suspension.pk, "message": "x"}, format="json").json()["id"]
    reader = make_client("cases:read")
    assert [a["id"] for a in reader.get("/api/v1/appeals/", {"status": "pending"}).json()["results"]] == [appeal_id]
    assert reader.get("/api/v1/appeals/", {"status": "upheld"}).json()["results"] == []
    assert reader.get(f"/api/v1/appeals/{appeal_id}/").json()["action"] == suspension.pk
    assert_error(support.get("/api/v1/appeals/"), 403, "forbidden")
