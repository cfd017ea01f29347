"""Cases: the filtered list (a queue), the whole story of one case, and assign, comment, resolve."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from enforcement import services
from enforcement.models import AuditEvent, Case, Comment
from tests.api.helpers import assert_error
from tests.factories import AccountFactory, missing_pk

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(make_client):
    return make_client("cases:read")


@pytest.fixture
def worker(make_client):
    return make_client("cases:read", "cases:write")


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [case["id"] for case in response.json()["results"]]


def test_list_filters(reader, account, report, agent, as_lead):
    low = report(account, rule="rate-limit-overuse", severity="low").violation.case
    high_account = AccountFactory()
    high = report(high_account, rule="unlawful-use", severity="high").violation.case
    services.case_assign(actor=as_lead, case_id=high.pk, assignee_id=agent.pk)
    closed_account = AccountFactory()
    closed = report(closed_account, severity="low").violation.case
    services.case_resolve(actor=as_lead, case_id=closed.pk, resolution="Handled.")
    Case.objects.filter(pk=low.pk).update(review_due_at=timezone.now() - timedelta(minutes=5))

    assert ids(reader.get("/api/v1/cases/")) == [closed.pk, high.pk, low.pk]
    assert ids(reader.get("/api/v1/cases/", {"status": "closed"})) == [closed.pk]
    assert ids(reader.get("/api/v1/cases/?status=open&status=closed")) == [closed.pk, high.pk, low.pk]
    assert ids(reader.get("/api/v1/cases/", {"severity": "high"})) == [high.pk]
    assert ids(reader.get("/api/v1/cases/", {"account": high_account.public_id})) == [high.pk]
    assert ids(reader.get("/api/v1/cases/", {"assignee": "agent"})) == [high.pk]
    assert ids(reader.get("/api/v1/cases/", {"overdue": "true"})) == [low.pk]
    assert ids(reader.get("/api/v1/cases/", {"overdue": "false"})) == [closed.pk, high.pk]
    listed = reader.get("/api/v1/cases/", {"overdue": "true"}).json()["results"][0]
    assert listed["overdue"] is True and listed["account"] == account.public_id and listed["assignee"] is None


def test_list_validation_and_cursor_pagination(reader, report):
    for _ in range(5):
        report(AccountFactory())
    assert_error(reader.get("/api/v1/cases/", {"status": "sleeping"}), 400, "validation_error", fields=["status"])
    assert_error(reader.get("/api/v1/cases/", {"overdue": "perhaps"}), 400, "validation_error", fields=["overdue"])
    first = reader.get("/api/v1/cases/", {"page_size": 2}).json()
    assert set(first) == {"results", "next", "previous"} and len(first["results"]) == 2
    second = reader.get(first["next"]).json()
    third = reader.get(second["next"]).json()
    seen = [c["id"] for page in (first, second, third) for c in page["results"]]
    assert len(seen) == len(set(seen)) == 5 and third["next"] is None
    assert len(reader.get("/api/v1/cases/", {"page_size": 100000}).json()["results"]) == 5  # capped at 500


def test_detail_tells_the_whole_story_in_a_constant_number_of_queries(reader, account, keys, report, as_lead):
    case_id = report(account).violation.case_id
    for _ in range(3):
        report(account, rule="rate-limit-overuse", severity="low")
    services.case_comment(actor=as_lead, case_id=case_id, body="Looking into it.")
    warning = services.action_propose(actor=as_lead, case_id=case_id, kind="warning", reason="Slow down.")
    services.action_apply(action_id=warning.pk)
    with CaptureQueriesContext(connection) as queries:
        response = reader.get(f"/api/v1/cases/{case_id}/")
    assert response.status_code == 200
    data = response.json()
    assert len(queries) <= 12
    assert data["id"] == case_id and data["status"] == "awaiting_customer"
    assert len(data["violations"]) == 4 and {v["account"] for v in data["violations"]} == {account.public_id}
    assert [(a["id"], a["kind"], a["status"]) for a in data["actions"]] == [(warning.pk, "warning", "applied")]
    assert [n["template"] for n in data["notifications"]] == ["customer_warning"]
    assert [c["body"] for c in data["comments"]] == ["Looking into it."]
    kinds = [entry["kind"] for entry in data["timeline"]]
    assert {"violation", "action", "notification", "comment", "audit"} <= set(kinds)
    assert [e["at"] for e in data["timeline"]] == sorted(e["at"] for e in data["timeline"])


def test_detail_404_and_scopes(reader, make_client, anon_client, account, report):
    case_id = report(account).violation.case_id
    assert_error(reader.get(f"/api/v1/cases/{missing_pk(Case)}/"), 404, "not_found")
    assert_error(anon_client.get(f"/api/v1/cases/{case_id}/"), 401, "not_authenticated")
    assert_error(make_client("violations:write").get(f"/api/v1/cases/{case_id}/"), 403, "forbidden")


def test_assign_and_unassign(worker, agent, account, report):
    case_id = report(account).violation.case_id
    response = worker.post(f"/api/v1/cases/{case_id}/assign/", {"assignee": "agent"}, format="json")
    assert response.status_code == 200 and response.json()["assignee"] == "agent"
    assert AuditEvent.objects.filter(verb="case.assigned", target_id=str(case_id)).count() == 1
    assert_error(worker.post(f"/api/v1/cases/{case_id}/assign/", {"assignee": "nobody"}, format="json"), 400,
                 "validation_error", fields=["assignee"])
    assert_error(worker.post(f"/api/v1/cases/{case_id}/assign/", {}, format="json"), 400, "validation_error",
                 fields=["assignee"])
    response = worker.post(f"/api/v1/cases/{case_id}/assign/", {"assignee": None}, format="json")
    assert response.json()["assignee"] is None


def test_comment_with_an_idempotency_key_is_made_once(worker, account, report):
    case_id = report(account).violation.case_id
    first = worker.post(f"/api/v1/cases/{case_id}/comment/", {"body": "Called the customer."}, format="json",
                        HTTP_IDEMPOTENCY_KEY="c-1")
    retry = worker.post(f"/api/v1/cases/{case_id}/comment/", {"body": "Called the customer."}, format="json",
                        HTTP_IDEMPOTENCY_KEY="c-1")
    assert first.status_code == retry.status_code == 201 and retry.json() == first.json()
    assert Comment.objects.filter(case_id=case_id).count() == 1
    assert_error(worker.post(f"/api/v1/cases/{case_id}/comment/", {"body": "   "}, format="json"), 400,
                 "validation_error", fields=["body"])
    assert_error(worker.post(f"/api/v1/cases/{case_id}/comment/", {"body": "x" * 20001}, format="json"), 400,
                 "validation_error", fields=["body"])


def test_resolve_and_its_409_while_an_action_is_pending(worker, account, report, as_agent):
    case_id = report(account).violation.case_id
    suspension = services.action_propose(actor=as_agent, case_id=case_id, kind="suspend", reason="Abuse.")
    assert suspension.status == "awaiting_approval"
    assert_error(worker.post(f"/api/v1/cases/{case_id}/resolve/", {"resolution": "Done."}, format="json"), 409,
                 "invalid_transition")
    services.action_cancel(actor=as_agent, action_id=suspension.pk, reason="Talked to them.")
    response = worker.post(f"/api/v1/cases/{case_id}/resolve/", {"resolution": "Done."}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "closed" and response.json()["resolution"] == "Done."


def test_writing_needs_cases_write(reader, staff_client, auditor, account, report):
    case_id = report(account).violation.case_id
    for path, payload in (("assign", {"assignee": None}), ("comment", {"body": "x"}), ("resolve", {})):
        assert_error(reader.post(f"/api/v1/cases/{case_id}/{path}/", payload, format="json"), 403, "forbidden")
    assert Case.objects.get(pk=case_id).status == "open"
    assert not Comment.objects.exists()
