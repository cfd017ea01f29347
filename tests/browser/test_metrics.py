"""The metrics page in a real browser: a lead follows the front page's link and sees the figures as SVG charts
drawn by the server (no script library, nothing from a CDN)."""

import pytest

from enforcement import services
from enforcement.actors import Actor

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_lead_sees_the_metrics_as_charts(open_session, screenshot, console_data, live_server):
    from playwright.sync_api import expect

    lead = Actor.for_user(console_data["lead"])
    services.action_propose(actor=lead, case_id=console_data["suspend_case"].pk, kind="suspend", reason="click farm")
    services.action_propose(actor=lead, case_id=console_data["throttle_case"].pk, kind="throttle", reason="health data",
                            rate_limit_per_minute=30)
    page = open_session("lee.lead")
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.click("#metrics-link")
    page.wait_for_url("**/admin/metrics/")
    charts = page.locator("#charts figure.chart")
    expect(charts).to_have_count(8)
    expect(page.locator('[data-chart="open-cases-by-severity-now"] svg rect')).to_have_count(4)
    expect(page.locator('[data-chart="review-sla"] svg')).to_be_visible()
    expect(page.locator('[data-chart="actions-applied-by-kind"]')).to_contain_text("suspend")
    assert page.locator("script[src*='chart'], script[src*='cdn']").count() == 0
    assert all(url.startswith(live_server.url) for url in requests), requests  # nothing from elsewhere
    screenshot(page, "metrics", docs=True)
