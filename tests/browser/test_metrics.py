"""The metrics page in a real browser: a lead follows the front page's link, picks a period and sees the figures
as SVG charts drawn by the server (no script library, nothing from a CDN)."""

from datetime import UTC, datetime

import pytest

from enforcement import services
from enforcement.actors import Actor
from tests.factories import UserFactory
from tests.metrics_fixture import build_weeks

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_lead_sees_the_metrics_as_charts(open_session, screenshot, console_data, live_server):
    from playwright.sync_api import expect

    lead = Actor.for_user(console_data["lead"])
    services.action_propose(actor=lead, case_id=console_data["suspend_case"].pk, kind="suspend", reason="click farm")
    services.action_propose(actor=lead, case_id=console_data["throttle_case"].pk, kind="throttle", reason="health data",
                            rate_limit_per_minute=30)
    build_weeks(first=datetime(2026, 10, 19, tzinfo=UTC), days=28, agent=console_data["agent"],
                lead=console_data["lead"], second_lead=UserFactory(username="lou.lead", role="tns_lead"))
    services.metrics_rollup()  # as beat does
    page = open_session("lee.lead")
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.click("#metrics-link")
    page.wait_for_url("**/admin/metrics/")
    charts = page.locator("#charts figure.chart")
    expect(charts).to_have_count(13)
    expect(page.locator('[data-chart="open-cases-by-severity-now"] svg rect')).to_have_count(4)
    page.fill('#period input[name="since"]', "2026-10-19")
    page.fill('#period input[name="until"]', "2026-11-15")
    page.click('#period button[type="submit"]')
    page.wait_for_url("**/admin/metrics/?since=2026-10-19&until=2026-11-15")
    reports = page.locator('[data-chart="reports-per-day-by-rule"]')
    expect(reports.locator("svg path")).to_have_count(4)
    expect(reports.locator(".legend")).to_contain_text("spam-fraud")
    expect(page.locator('[data-chart="cases-opened-and-closed-per-day"] svg path')).to_have_count(2)
    expect(page.locator('[data-chart="time-to-first-review-by-severity-minutes"] svg rect')).to_have_count(8)
    expect(page.locator('[data-chart="staff-workload"]')).to_contain_text("alex.agent")
    expect(page.locator('[data-chart="detector-precision"] svg line.marker')).to_have_count(1)
    expect(page.locator('[data-chart="review-sla-by-severity"] svg')).to_be_visible()
    expect(page.locator('[data-chart="actions-applied-by-kind"]')).to_contain_text("suspend")
    assert page.locator("script[src*='chart'], script[src*='cdn']").count() == 0
    assert all(url.startswith(live_server.url) for url in requests), requests  # nothing from elsewhere
    screenshot(page, "metrics", docs=True)
