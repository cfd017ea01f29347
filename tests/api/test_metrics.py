"""The team's figures on a known fixture: review times, the SLA, actions, appeals; and the Prometheus gauges."""

from datetime import timedelta
from urllib.parse import quote

import pytest
from django.utils import timezone

from enforcement import services
from enforcement.audit import audit_record
from enforcement.metrics import percentile
from enforcement.models import Appeal, Case, EnforcementAction, Notification
from tests.api.helpers import assert_error
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db
RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def make_case(severity: str, opened_ago: timedelta, *, due_after: timedelta | None) -> Case:
    opened = timezone.now() - opened_ago
    case = Case.objects.create(account=AccountFactory(), severity=severity, severity_rank=RANK[severity],
                               review_due_at=opened + due_after if due_after else None)
    Case.objects.filter(pk=case.pk).update(opened_at=opened)
    case.refresh_from_db()
    return case


def reviewed_now(case: Case, actor, *, due_after: timedelta) -> None:
    audit_record(actor=actor, verb="case.reviewed", target=case, case=case, account=case.account,
                 before={"review_due_at": (case.opened_at + due_after).isoformat()}, after={"review_due_at": None})


def action(case: Case, kind: str, **fields) -> EnforcementAction:
    return EnforcementAction.objects.create(case=case, account=case.account, kind=kind, reason="r",
                                            requested_by_label="x", **{"status": "applied", **fields})


@pytest.fixture
def known(as_lead, lead):
    now = timezone.now()
    on_time = make_case("critical", timedelta(minutes=30), due_after=None)
    reviewed_now(on_time, as_lead, due_after=timedelta(hours=1))  # waited 1800 s, within 1 h
    late = make_case("high", timedelta(hours=10), due_after=None)
    reviewed_now(late, as_lead, due_after=timedelta(hours=4))  # waited 36000 s, past 4 h
    by_action = make_case("medium", timedelta(hours=2), due_after=None)
    proposed = action(by_action, "warning", status="awaiting_approval", requested_by=lead)
    EnforcementAction.objects.filter(pk=proposed.pk).update(created_at=by_action.opened_at + timedelta(seconds=600))
    make_case("critical", timedelta(hours=3), due_after=timedelta(hours=1))  # never reviewed, overdue: a breach
    make_case("low", timedelta(days=40), due_after=timedelta(hours=72))  # before the period

    rules = {"spam-fraud": 1}
    action(on_time, "suspend", applied_at=now, decided_under={"rules": rules})
    action(late, "suspend", applied_at=now, decided_under={"rules": rules})
    action(late, "throttle", applied_at=now, decided_under={"rules": {"spam-fraud": 1, "key-exposure": 2}})
    action(late, "warning", applied_at=now - timedelta(days=40), decided_under={"rules": rules})  # before
    for status in ("overturned", "upheld", "upheld", "pending"):
        appealed = action(by_action, "suspend", status="reverted" if status == "overturned" else "applied")
        Appeal.objects.create(action=appealed, case=by_action, message="m", status=status,
                              decided_at=None if status == "pending" else now)
    return now


def test_the_summary_on_a_known_fixture(make_client, known):
    services.metrics_rollup()
    since = quote((known - timedelta(days=7)).isoformat())
    response = make_client("audit:read").get(f"/api/v1/metrics/summary/?since={since}")
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert body["review"]["time_to_first_review_p50_s"] == pytest.approx(1800, abs=10)
    assert body["review"]["time_to_first_review_p90_s"] == pytest.approx(36000, abs=10)
    assert body["sla"] | {"by_severity": None} == {"breaches": 2, "on_time": 2, "late_reviews": 1,
                                                   "overdue_unreviewed": 1, "by_severity": None}
    assert body["actions"] | {"by_rule_and_kind": None} == {"by_kind": {"suspend": 2, "throttle": 1},
                                                            "by_rule": {"key-exposure": 1, "spam-fraud": 3},
                                                            "by_rule_and_kind": None}
    assert body["appeals"] | {"by_rule": None} == {"decided": 3, "overturned": 1, "overturn_rate": 0.3333,
                                                   "by_rule": None}


def test_the_summary_refuses_a_bad_period_and_needs_audit_read(make_client, anon_client):
    client = make_client("audit:read")
    assert_error(client.get("/api/v1/metrics/summary/?since=soon"), 400, "validation_error", fields=["since"])
    assert_error(client.get("/api/v1/metrics/summary/?since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z"),
                 400, "validation_error", fields=["since"])
    # The calendar's last day has no next day to end a period of whole days at (a 500 once).
    assert_error(client.get("/api/v1/metrics/summary/?since=9999-12-31T06:10:13Z&until=9999-12-31T15:12:00Z"),
                 400, "validation_error", fields=["until"])
    assert_error(client.get("/api/v1/metrics/summary/?until=0001-01-02T00:00:00Z"), 400, "validation_error",
                 fields=["until"])
    assert_error(make_client("cases:read").get("/api/v1/metrics/summary/"), 403, "forbidden")
    assert anon_client.get("/api/v1/metrics/summary/").status_code == 401


def test_percentiles_are_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert percentile(list(range(1, 11)), 0.9) == 9


def test_prometheus_gauges_at_scrape_time(make_client, anon_client, known, django_assert_max_num_queries):
    Notification.objects.create(event_key="e", template="t", audience="customer", recipient="a@example.com")
    client = make_client("audit:read")
    with django_assert_max_num_queries(8):
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'millimetric_outbox_notifications{status="pending"} 1.0' in text
    assert 'millimetric_enforcement_actions{kind="suspend",status="applied"} 5.0' in text
    assert 'millimetric_open_cases{severity="critical"} 2.0' in text
    assert "millimetric_sla_breaches 2.0" in text  # the unreviewed overdue case and the old one
    assert_error(make_client("cases:read").get("/metrics"), 403, "forbidden")
    assert anon_client.get("/metrics").status_code == 401
