"""The audit log over the API: filtered by target, actor and time; read-only, behind audit:read."""

from datetime import timedelta

import pytest
from django.utils import timezone

from enforcement import services
from enforcement.models import AuditEvent, ServiceToken
from tests.api.helpers import assert_error

pytestmark = pytest.mark.django_db


def test_list_and_filters(make_client, account, report, as_lead):
    case_id = report(account).violation.case_id
    services.case_comment(actor=as_lead, case_id=case_id, body="Noted.")
    auditor = make_client("audit:read")
    everything = auditor.get("/api/v1/audit-events/").json()["results"]
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)
    on_case = auditor.get("/api/v1/audit-events/", {"target": f"case:{case_id}"}).json()["results"]
    assert [e["verb"] for e in on_case] == ["case.opened"]
    assert on_case[0]["target"] == f"case:{case_id}" and on_case[0]["account"] == account.public_id
    by_lead = auditor.get("/api/v1/audit-events/", {"actor": "lead"}).json()["results"]
    assert [e["verb"] for e in by_lead] == ["case.commented"]
    assert {e["target_type"] for e in auditor.get("/api/v1/audit-events/", {"target": "violation"}).json()[
        "results"]} == {"violation"}
    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert auditor.get("/api/v1/audit-events/", {"since": later}).json()["results"] == []
    earlier = (timezone.now() - timedelta(minutes=5)).isoformat()
    assert len(auditor.get("/api/v1/audit-events/", {"since": earlier}).json()["results"]) == AuditEvent.objects.filter(
        created_at__gte=timezone.now() - timedelta(minutes=5)).count()
    assert_error(auditor.get("/api/v1/audit-events/", {"since": "last tuesday"}), 400, "validation_error",
                 fields=["since"])
    one = everything[0]
    assert auditor.get(f"/api/v1/audit-events/{one['id']}/").json() == one


def test_audit_events_need_audit_read(make_client, anon_client, staff_client, auditor, outsider):
    assert_error(anon_client.get("/api/v1/audit-events/"), 401, "not_authenticated")
    assert_error(make_client("cases:read", "cases:write").get("/api/v1/audit-events/"), 403, "forbidden")
    assert staff_client(auditor).get("/api/v1/audit-events/").status_code == 200
    assert_error(staff_client(outsider).get("/api/v1/audit-events/"), 403, "forbidden")


def test_the_log_cannot_be_changed_through_the_api(make_client, account, report):
    report(account)
    client = make_client(*ServiceToken.Scope.values)
    event = AuditEvent.objects.first()
    assert_error(client.delete(f"/api/v1/audit-events/{event.pk}/"), 405, "method_not_allowed")
    assert_error(client.put(f"/api/v1/audit-events/{event.pk}/", {"note": "x"}, format="json"), 405,
                 "method_not_allowed")
    assert_error(client.post("/api/v1/audit-events/", {"note": "x"}, format="json"), 405, "method_not_allowed")


@pytest.mark.parametrize("since, status", [
    ("0059-08-17T08:28:31.514899+23:48", 200),  # a real instant, with an offset PostgreSQL cannot store
    ("0826-04-28T14:24:46-22:46", 200),
    ("0001-01-01T00:00:00+01:00", 400),  # before year 1 once in UTC
    ("9999-12-31T23:00:00-05:00", 400),  # after year 9999 once in UTC
    ("yesterday", 400),
])
def test_since_takes_any_iso_instant_and_refuses_what_is_out_of_range(make_client, since, status):
    response = make_client("audit:read").get("/api/v1/audit-events/", {"since": since})
    assert response.status_code == status, response.content
    if status == 400:
        assert_error(response, 400, "validation_error", fields=["since"])


def test_an_id_larger_than_any_database_stores_is_a_400(make_client):
    response = make_client("audit:read").get("/api/v1/audit-events/", {"case": "99999999999999999999"})
    assert_error(response, 400, "validation_error", fields=["case"])


def test_a_metrics_period_at_the_calendars_start_is_a_400(make_client):
    """Found by schemathesis: the default start, 30 days before until=0001-01-02, is before year 1."""
    response = make_client("audit:read").get("/api/v1/metrics/summary/", {"until": "0001-01-02T00:00:00Z"})
    assert_error(response, 400, "validation_error", fields=["until"])
