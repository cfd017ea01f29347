"""The customer's notice in a real browser, before anything is sent: the agent opens the preview of the ladder's
recommendation on the case page; a lead opens the notice of a suspension awaiting approval, which the page loads
when its disclosure is opened."""

import pytest

from enforcement import services
from enforcement.actors import Actor
from enforcement.models import EnforcementAction, Notification

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_staff_read_the_customers_notice_before_proposing_or_approving(open_session, screenshot, console_data):
    from playwright.sync_api import expect

    data = console_data
    throttle_case, suspend_case = data["throttle_case"], data["suspend_case"]
    suspension = services.action_propose(actor=Actor.for_user(data["agent"]), case_id=suspend_case.pk,
                                         kind="suspend", reason="Click farm: sustained fraudulent traffic.")

    # --- The agent, before proposing the ladder's throttle: the notice Northwind would receive.
    agent = open_session("alex.agent")
    agent.goto(f"/admin/enforcement/case/{throttle_case.pk}/change/")
    preview = agent.locator("#notice-preview")
    expect(preview.locator(".notice-text")).to_be_hidden()
    preview.locator("summary").first.click()
    expect(preview.locator(".notice-subject")).to_be_visible()
    expect(preview.locator(".notice-text")).to_contain_text("We have lowered the rate limits of all API keys")
    expect(preview.locator(".notice-text")).to_contain_text("Hello Northwind Traders")
    expect(preview.locator(".notice-text")).not_to_contain_text("4242 4242 4242 4242")
    preview.locator(".notice-text").scroll_into_view_if_needed()
    screenshot(agent, "notice-preview", docs=True)
    assert not EnforcementAction.objects.filter(case=throttle_case).exists()
    assert not Notification.objects.filter(audience="customer").exists()  # a preview sends nothing

    # --- A lead, before approving the agent's suspension: its notice, loaded when the disclosure opens.
    lead = open_session("lee.lead")
    lead.goto(f"/admin/enforcement/case/{suspend_case.pk}/change/")
    disclosure = lead.locator(f"#action-{suspension.pk} details.notice-disclosure")
    expect(disclosure.locator(".notice-text")).to_have_count(0)  # nothing loaded until it is opened
    disclosure.locator("summary").first.click()
    expect(disclosure.locator(".notice-text")).to_contain_text("We have suspended all API keys")
    disclosure.locator(".notice-html summary").click()
    frame = disclosure.frame_locator("iframe")
    expect(frame.locator("body")).to_contain_text("ClickStorm Media")
    expect(lead.locator(f'#action-{suspension.pk} [data-verb="approve"]')).to_be_visible()
