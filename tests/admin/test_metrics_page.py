"""The metrics page on the known history (tests/metrics_fixture.py): a period of days, each figure charted, a
bad period answered with a plain message, and its cost in queries."""

import re

import pytest

from enforcement import services
from enforcement.admin.site import metrics_charts
from tests.metrics_fixture import D1, D2, EXPECTED, at, build

pytestmark = pytest.mark.django_db
PERIOD = f"/admin/metrics/?since={D1}&until={D2}"


@pytest.fixture
def history(as_lead, lead, second_lead, agent):
    build(as_lead=as_lead, lead=lead, second_lead=second_lead, agent=agent)
    services.metrics_rollup(now=at(D2, "23:59"))


def chart(page: str, slug: str) -> str:
    match = re.search(rf'<figure class="chart panel" data-chart="{slug}">(.*?)</figure>', page, re.S)
    assert match, f"no chart {slug}"
    return match.group(1)


def test_the_page_charts_every_figure_of_the_period(lead_client, history):
    response = lead_client.get(PERIOD)
    assert response.status_code == 200
    page = response.content.decode()
    assert response.context["summary"]["reports"] == EXPECTED["reports"]
    assert "From 2026-11-10 to 2026-11-11: 5 reports, 4 cases opened and 1 closed, 3 first reviews, 2 SLA breaches" \
        in page
    by_rule = chart(page, "reports-per-day-by-rule")
    assert "spam-fraud (3)" in by_rule and "key-exposure (1)" in by_rule and by_rule.count("<path") == 3
    assert "det-a (3)" in chart(page, "reports-per-day-by-source")
    cases = chart(page, "cases-opened-and-closed-per-day")
    assert "opened (4)" in cases and "closed (1)" in cases and 'stroke="' in cases
    review = chart(page, "time-to-first-review-by-severity-minutes")
    assert "critical (2), p50: 10 min" in review and "critical (2), p90: 30 min" in review
    assert "high (1), p50: 300 min" in review
    approval = chart(page, "time-to-approval-by-kind-minutes")
    assert "suspend (1), p50: 120 min" in approval and "terminate (1), p90: 240 min" in approval
    sla = chart(page, "review-sla-by-severity")
    assert "critical, on time: 2" in sla and "medium, breached: 1" in sla and "high, breached: 1" in sla
    assert "spam-fraud, suspend: 2" in chart(page, "actions-applied-by-rule")
    appeals = chart(page, "appeals-decided-by-rule-overturn-rate")
    assert "spam-fraud (50%), overturned: 1" in appeals
    assert "key-exposure (0%), upheld: 1" in appeals
    staff = chart(page, "staff-workload")
    assert "lead, cases handled: 2" in staff and "lead, actions proposed: 2" in staff
    assert "lead2, appeals decided: 1" in staff and "agent, actions proposed: 1" in staff
    detectors = chart(page, "detector-precision")
    assert "det-a, precision: 75%" in detectors and "act-first floor 90%" in detectors
    assert "<script" not in page.split('id="charts"')[1].split('id="footer"')[0]


def test_a_preset_period_and_bad_periods(lead_client, history):
    page = lead_client.get("/admin/metrics/?days=7")
    assert page.status_code == 200
    assert (page.context["last"] - page.context["first"]).days == 6
    for query, message in (("?since=yesterday", "since: a day such as"), ("?days=0", "days: a number of days"),
                           ("?days=9999", "days: a number of days"), (f"?since={D2}&until={D1}", "must not be after"),
                           ("?since=2020-01-01&until=2026-01-01", "The period is too long"),
                           ("?since=9999-12-01&until=9999-12-31", "out of range"),
                           ("?until=0001-01-02", "out of range")):
        response = lead_client.get(f"/admin/metrics/{query}")
        assert response.status_code == 400 and message in response.content.decode(), query


def test_the_page_costs_a_fixed_number_of_queries(lead_client, history, django_assert_max_num_queries):
    with django_assert_max_num_queries(30):
        lead_client.get(PERIOD)


def test_every_chart_is_drawn_or_says_nothing_in_the_period(history):
    from enforcement import metrics

    empty = metrics_charts(metrics.summary(since=at("2026-10-01", "00:00"), until=at("2026-10-03", "00:00")),
                           metrics.gauges())
    assert all(c["empty"] for c in empty[:11])
    full = metrics_charts(metrics.summary(since=at(D1, "00:00"), until=at("2026-11-12", "00:00")), metrics.gauges())
    assert not any(c["empty"] for c in full[:11])


def test_names_from_detectors_are_escaped_in_the_charts(lead_client, history):
    from tests.factories import ViolationFactory, rule

    ViolationFactory(rule=rule("spam-fraud"), source='<img src=x onerror="alert(1)">', reported_at=at(D2, "10:00"))
    services.metrics_rollup(now=at(D2, "23:59"))
    page = lead_client.get(PERIOD).content.decode()
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert '<img src=x onerror="alert(1)">' not in page
