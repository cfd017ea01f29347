"""The transparency report: a CSV per year, a row per month and rule, linked from the metrics page."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from enforcement.metrics import REPORT_COLUMNS
from enforcement.models import Appeal, Case, EnforcementAction, Rule, Violation
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

MARCH = datetime(2025, 3, 10, 12, tzinfo=UTC)


def _case(rule: Rule, at: datetime) -> tuple[Case, Violation]:
    account = AccountFactory()
    case = Case.objects.create(account=account, severity="high", severity_rank=2)
    Case.objects.filter(pk=case.pk).update(opened_at=at)
    violation = case.violations.create(account=account, rule=rule, severity="high", source="bulk",
                                       external_id=f"r-{account.pk}", observed_at=at, summary="s",
                                       reporter_kind="token")
    Violation.objects.filter(pk=violation.pk).update(reported_at=at)
    return case, violation


def _action(case: Case, rule: Rule, kind: str, *, at: datetime, by=None) -> EnforcementAction:
    action = EnforcementAction.objects.create(
        case=case, account=case.account, kind=kind, status="applied", reason="r", applied_at=at, requested_by=by,
        requested_by_label="lead", decided_under={"rules": {rule.code: rule.version}},
    )
    EnforcementAction.objects.filter(pk=action.pk).update(created_at=at)
    return action


def rows_of(response) -> list[dict]:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/csv")
    reader = csv.DictReader(io.StringIO(response.content.decode()))
    assert reader.fieldnames == REPORT_COLUMNS
    return list(reader)


def test_a_row_per_month_and_rule_with_reports_actions_appeals_and_the_median_review(lead, lead_client):
    spam = Rule.objects.get(code="spam-fraud")
    exposure = Rule.objects.get(code="key-exposure")
    waits = [600, 1200, 4000]
    for wait in waits:
        case, _ = _case(spam, MARCH)
        _action(case, spam, "suspend", at=MARCH + timedelta(seconds=wait), by=lead)
    throttled = _action(_case(spam, MARCH)[0], spam, "throttle", at=MARCH + timedelta(days=1))
    Appeal.objects.create(action=throttled, case=throttled.case, message="no", submitted_by_label="c",
                          status=Appeal.Status.OVERTURNED, decided_at=datetime(2025, 4, 2, tzinfo=UTC))
    _case(exposure, datetime(2025, 7, 1, tzinfo=UTC))
    _case(exposure, datetime(2024, 12, 31, 23, tzinfo=UTC))  # another year

    rows = rows_of(lead_client.get("/admin/metrics/report.csv?year=2025"))
    by_key = {(r["month"], r["rule"]): r for r in rows}
    assert set(by_key) == {("2025-03", "spam-fraud"), ("2025-04", "spam-fraud"), ("2025-07", "key-exposure")}
    march = by_key["2025-03", "spam-fraud"]
    assert march["reports"] == "4" and march["actions_suspend"] == "3" and march["actions_throttle"] == "1"
    assert march["actions_warning"] == "0"
    assert march["median_time_to_first_review_seconds"] == "1200"
    april = by_key["2025-04", "spam-fraud"]
    assert (april["reports"], april["appeals_decided"], april["appeals_overturned"]) == ("0", "1", "1")
    assert april["median_time_to_first_review_seconds"] == ""
    assert by_key["2025-07", "key-exposure"]["reports"] == "1"
    assert rows_of(lead_client.get("/admin/metrics/report.csv?year=2030")) == []


def test_cells_are_neutralised_against_formula_injection(lead_client):
    rule = Rule.objects.get(code="spam-fraud")
    Rule.objects.filter(pk=rule.pk).update(code="=HYPERLINK(\"http://x\")")
    _case(Rule.objects.get(pk=rule.pk), MARCH)
    [row] = rows_of(lead_client.get("/admin/metrics/report.csv?year=2025"))
    assert row["rule"].startswith("'=")


def test_the_report_is_for_staff_who_see_cases_and_linked_from_the_metrics_page(lead_client, outsider_client):
    page = lead_client.get("/admin/metrics/").content.decode()
    assert 'id="transparency-report"' in page and "/admin/metrics/report.csv?year=" in page
    assert outsider_client.get("/admin/metrics/report.csv?year=2025").status_code == 403
    assert lead_client.get("/admin/metrics/report.csv?year=20x5").status_code == 400
    assert lead_client.get("/admin/metrics/report.csv").status_code == 200
