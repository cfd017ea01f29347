"""The console in a real browser: an agent works a case from the queue to an applied throttle and asks
for a suspension; the agent cannot approve it, by button or by URL; a lead approves it."""

import pytest

from accounts.models import APIKey
from enforcement.models import ActionStatus, EnforcementAction

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_agent_throttles_lead_approves_suspension(open_session, screenshot, console_data):
    from playwright.sync_api import expect

    data = console_data
    throttle_case, suspend_case = data["throttle_case"], data["suspend_case"]

    # --- The agent's queue: overdue first, severity badges, countdowns.
    agent = open_session("alex.agent")
    expect(agent.locator("#team-day")).to_contain_text("Overdue cases")
    agent.goto("/admin/enforcement/case/")
    rows = agent.locator("#result_list tbody tr")
    expect(rows).to_have_count(6)
    expect(rows.first.locator(".sla")).to_have_class("sla sla-overdue")
    expect(rows.first).to_contain_text("secrets-in-events")
    expect(agent.locator("#result_list .sev-critical")).to_have_count(1)
    screenshot(agent, "case-queue-day")

    # --- Find the Northwind case by account id and open it.
    agent.fill("#searchbar", data["northwind"].public_id)
    agent.press("#searchbar", "Enter")
    expect(rows).to_have_count(1)
    rows.first.locator("th a, td a").filter(has_text=f"#{throttle_case.pk}").click()
    expect(agent.locator("h1")).to_contain_text(f"Case #{throttle_case.pk}")

    # --- The case page: the ladder recommends a throttle; the evidence is redacted.
    expect(agent.locator("#recommended-kind")).to_have_text("throttle")
    expect(agent.locator("#recommendation-reason")).to_contain_text("high severity, 0 strikes")
    expect(agent.locator("pre.evidence")).to_contain_text("[CARD REDACTED ...4242]")
    expect(agent.locator("#timeline")).not_to_contain_text("4242 4242 4242 4242")
    agent.click("#assign-me")
    expect(agent.locator("#case-assignee")).to_have_text("alex.agent")

    agent.click("#propose-recommended")
    expect(agent.locator(".messagelist")).to_contain_text("Throttle")
    throttle = EnforcementAction.objects.get(case=throttle_case)
    card = agent.locator(f"#action-{throttle.pk}")
    expect(card.locator("[data-role=status]")).to_have_text("Applied")
    expect(agent.locator("#standing-keys tbody")).to_contain_text("Throttled")
    expect(agent.locator("#standing-keys tbody")).not_to_contain_text("Active")
    expect(agent.locator("#case-status")).to_have_text("Actioned")
    expect(agent.locator("#timeline")).to_contain_text("customer_throttle")  # the email, on the timeline
    screenshot(agent, "case-page-throttled")
    throttle.refresh_from_db()
    assert throttle.status == ActionStatus.APPLIED and throttle.requested_by == data["agent"]
    assert set(APIKey.objects.filter(account=data["northwind"]).values_list("status", flat=True)) == {"throttled"}

    # --- A suspension by an agent goes to a lead.
    agent.goto(f"/admin/enforcement/case/{suspend_case.pk}/change/")
    agent.click("#choose-kind summary")
    agent.select_option("#propose-kind", "suspend")
    agent.fill("#choose-kind textarea[name=reason]", "Click farm: sustained fraudulent traffic after a warning.")
    agent.click("#propose-chosen")
    expect(agent.locator(".messagelist")).to_contain_text("awaits a lead's approval")
    suspension = EnforcementAction.objects.get(case=suspend_case, kind="suspend")
    assert suspension.status == ActionStatus.AWAITING_APPROVAL
    expect(agent.locator(f"#action-{suspension.pk} [data-role=status]")).to_have_text("Awaiting approval")

    # --- The agent has no approve button, and the approve URL refuses.
    expect(agent.locator('[data-verb="approve"]')).to_have_count(0)
    agent.goto("/admin/enforcement/enforcementaction/approvals/")
    expect(agent.locator(f"#approval-{suspension.pk}")).to_be_visible()
    expect(agent.locator('[data-verb="approve"]')).to_have_count(0)
    csrf = agent.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    refused = agent.request.post(f"/admin/enforcement/enforcementaction/{suspension.pk}/approve/",
                                 form={"csrfmiddlewaretoken": csrf}, headers={"X-CSRFToken": csrf})
    assert refused.status == 403
    suspension.refresh_from_db()
    assert suspension.status == ActionStatus.AWAITING_APPROVAL

    # --- The lead approves it from the approvals queue; the keys are suspended.
    lead = open_session("lee.lead")
    tile = lead.locator('[data-tile="awaiting-approval"]')
    expect(tile.locator(".count")).to_have_text("1")
    tile.click()
    row = lead.locator(f"#approval-{suspension.pk}")
    row.locator('[data-verb="approve"]').click()
    expect(lead.locator(".messagelist")).to_contain_text("approved")
    expect(lead.locator(f"#approval-{suspension.pk}")).to_have_count(0)
    suspension.refresh_from_db()
    assert suspension.status == ActionStatus.APPLIED and suspension.approved_by == data["lead"]
    assert set(APIKey.objects.filter(account=data["clickstorm"]).values_list("status", flat=True)) == {"suspended"}

    lead.goto(f"/admin/enforcement/case/{suspend_case.pk}/change/")
    expect(lead.locator(f"#action-{suspension.pk} [data-role=status]")).to_have_text("Applied")
    expect(lead.locator("#standing-keys tbody")).to_contain_text("Suspended")
    expect(lead.locator(f"#action-{suspension.pk}")).to_contain_text("approved by lee.lead")
    screenshot(lead, "case-page-lead")
