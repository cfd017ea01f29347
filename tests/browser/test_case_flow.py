"""A day's work without scrolling or hunting, in real Chromium: a 25-violation case worked by keyboard alone
(opened from a saved view, read, commented, proposed, then the next case of the view), its decision panel in
the first screen at 1440x900, and accounts found by partial name and by the start of a key prefix."""

import pytest

from enforcement import services
from enforcement.actors import Actor
from enforcement.models import ActionStatus, Comment, EnforcementAction, SavedView, StaffPreference, Violation
from enforcement.services import service_token_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

EVIDENCE = {"event": "signup", "property": "diagnosis", "sample": "asthma", "card_number": "4000 0566 5566 5556"}


@pytest.fixture
def busy_case(console_data):
    """The Northwind case grown to 25 violations: high health data and medium tracking reports."""
    token, _ = service_token_create(actor=Actor.for_user(console_data["lead"]), name="second-detector",
                                    scopes=["violations:write"], trusted=False)
    detector = Actor.for_token(token)
    northwind = console_data["northwind"]
    for n in range(24):
        rule, severity = ("special-category-data", "high") if n % 3 == 0 else ("covert-tracking", "medium")
        services.violation_report(
            actor=detector, account=northwind, rule=rule, severity=severity, source="second-detector",
            external_id=f"busy-{n}", summary=f"Report {n}: {rule} on the signup form, batch {n}.",
            evidence={**EVIDENCE, "batch": n}, api_key=northwind.test_keys[n % 2],
        )
    case = console_data["throttle_case"]
    assert Violation.objects.filter(case=case).count() == 25
    return case


def test_a_25_violation_case_by_keyboard_alone(open_session, screenshot, console_data, busy_case):
    from playwright.sync_api import expect

    suspend_case = console_data["suspend_case"]
    agent = open_session("alex.agent")
    agent.set_viewport_size({"width": 1440, "height": 900})

    # --- Save the high-severity queue as a view, shared with the team.
    agent.goto("/admin/enforcement/case/?severity=high")
    agent.fill("#save-view input[name=name]", "High severity")
    agent.check("#save-view input[name=shared]")
    agent.click("#save-view button[type=submit]")
    expect(agent.locator(".messagelist")).to_contain_text("saved and shared with the team")
    view = SavedView.objects.get(name="High severity")
    assert view.shared and view.query == "severity=high"
    expect(agent.locator("#result_list tbody tr")).to_have_count(2)
    agent.goto("/admin/enforcement/case/")  # the whole day's queue, the view offered above it
    expect(agent.locator("#saved-views")).to_contain_text("High severity")
    expect(agent.locator("#result_list tbody tr")).to_have_count(6)
    screenshot(agent, "case-queue", docs=True)

    # --- From here on, the keyboard alone. The front page counts the view; "1" opens it.
    agent.goto("/admin/")
    tile = agent.locator(f'#saved-view-tiles [data-view="{view.pk}"]')
    expect(tile.locator(".count")).to_have_text("2")
    agent.keyboard.press("1")
    agent.wait_for_url("**/admin/enforcement/case/?severity=high")
    rows = agent.locator("#result_list tbody tr")
    for _ in range(2):  # j selects the next row until it is the Northwind case
        agent.keyboard.press("j")
        if f"#{busy_case.pk}" in agent.locator("#result_list tr.kb-current").inner_text():
            break
    expect(agent.locator("#result_list tr.kb-current")).to_contain_text(f"#{busy_case.pk}")
    expect(rows).to_have_count(2)
    agent.keyboard.press("o")
    expect(agent.locator("h1")).to_contain_text(f"Case #{busy_case.pk}")
    assert "_changelist_filters=severity%3Dhigh" in agent.url

    # --- The decision panel is in the first screen, and stays in view when the page scrolls.
    decision = agent.locator("#decision")
    box = decision.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 900, box
    expect(agent.locator("#recommended-kind")).to_have_text("throttle")
    expect(agent.locator("#propose-recommended")).to_be_in_viewport()
    agent.mouse.wheel(0, 2500)
    agent.wait_for_function("window.scrollY > 1000")
    box = decision.bounding_box()
    assert box is not None and 0 <= box["y"] <= 20, box  # sticky: still at the top of the screen

    # --- Read: violations by rule, the one that set the severity first, collapsed; "e" opens the evidence.
    groups = agent.locator("#violations .rule-group")
    expect(groups.first).to_have_attribute("data-rule", "special-category-data")
    expect(agent.locator("#violations details.violation[open]")).to_have_count(0)
    agent.keyboard.press("e")
    expect(agent.locator("#violations details.violation[open]").first).to_be_visible()
    expect(agent.locator("#violations pre.evidence").first).to_contain_text("[CARD REDACTED ...5556]")
    expect(agent.locator("#timeline > li")).to_have_count(50)  # a page of the timeline, newest first
    expect(agent.locator("#timeline-older")).to_be_visible()
    agent.keyboard.press("?")
    expect(agent.locator("#shortcuts")).to_be_visible()
    expect(agent.locator("#shortcuts")).to_contain_text("Next case in this view")
    agent.keyboard.press("Escape")
    expect(agent.locator("#shortcuts")).to_be_hidden()

    # --- Comment: "c", type, Ctrl+Enter. The comment tops the timeline.
    agent.keyboard.press("c")
    agent.keyboard.type("Health data in 9 batches; throttling while they fix the form.")
    agent.keyboard.press("Control+Enter")
    expect(agent.locator(".messagelist")).to_contain_text("Comment added.")
    expect(agent.locator("#timeline li[data-kind=comment]").first).to_contain_text("throttling while they fix")
    assert Comment.objects.filter(case=busy_case, author=console_data["agent"]).count() == 1
    screenshot(agent, "case-page", docs=True)

    # --- Propose the ladder's recommendation: "p" selects the button, Enter presses it.
    agent.keyboard.press("p")
    expect(agent.locator("#propose-recommended")).to_be_focused()
    agent.keyboard.press("Enter")
    expect(agent.locator(".messagelist")).to_contain_text("Throttle")
    throttle = EnforcementAction.objects.get(case=busy_case)
    assert throttle.kind == "throttle" and throttle.status == ActionStatus.APPLIED
    assert "_changelist_filters=severity%3Dhigh" in agent.url  # still in the view

    # --- Next case in the same view: "j" (the reviewed case sank to the bottom: the next is the view's top).
    agent.keyboard.press("j")
    expect(agent.locator("h1")).to_contain_text(f"Case #{suspend_case.pk}")
    assert "_changelist_filters=severity%3Dhigh" in agent.url
    expect(agent.locator("#previous-case")).to_have_count(0)  # the top of the view
    agent.keyboard.press("j")  # then the reviewed case, at the bottom now; "k" comes back
    expect(agent.locator("h1")).to_contain_text(f"Case #{busy_case.pk}")
    agent.keyboard.press("k")
    expect(agent.locator("h1")).to_contain_text(f"Case #{suspend_case.pk}")


def test_timeline_filters_are_remembered_across_pages(open_session, console_data, busy_case):
    from playwright.sync_api import expect

    agent = open_session("alex.agent")
    agent.goto(f"/admin/enforcement/case/{busy_case.pk}/change/")
    expect(agent.locator("#timeline li[data-kind=audit]").first).to_be_attached()
    agent.uncheck("#timeline-filters input[value=audit]")
    expect(agent.locator("#timeline-hidden")).to_be_visible()
    expect(agent.locator("#timeline li[data-kind=audit]")).to_have_count(0)
    assert StaffPreference.objects.get(user=console_data["agent"]).timeline_hidden == ["audit"]
    agent.goto(f"/admin/enforcement/case/{console_data['suspend_case'].pk}/change/")
    expect(agent.locator("#timeline-filters input[value=audit]")).not_to_be_checked()
    expect(agent.locator("#timeline li[data-kind=audit]")).to_have_count(0)


def test_accounts_are_found_by_partial_name_and_key_prefix_start(open_session, console_data):
    from playwright.sync_api import expect

    northwind, clickstorm = console_data["northwind"], console_data["clickstorm"]
    agent = open_session("alex.agent")
    agent.goto("/admin/enforcement/case/")
    rows = agent.locator("#result_list tbody tr")
    agent.fill("#searchbar", "northwind tr")  # part of the name shown in the row, in lower case
    agent.press("#searchbar", "Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(northwind.public_id)
    agent.fill("#searchbar", clickstorm.test_keys[1].prefix[:11])  # "pk_live_" and three characters
    agent.press("#searchbar", "Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(clickstorm.public_id)
    agent.fill("#searchbar", "CLICKSTORM0002"[:10].lower())  # the id without its "acct_"
    agent.press("#searchbar", "Enter")
    expect(rows).to_have_count(1)

    agent.goto("/admin/accounts/account/")
    agent.fill("#searchbar", "Click")
    agent.press("#searchbar", "Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("ClickStorm Media")
    agent.fill("#searchbar", northwind.test_keys[2].prefix[:10])
    agent.press("#searchbar", "Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Northwind Traders")


def test_a_lead_approves_by_keyboard_with_the_buttons_confirmation(open_session, console_data):
    from playwright.sync_api import expect

    suspend_case = console_data["suspend_case"]
    suspension = services.action_propose(actor=Actor.for_user(console_data["agent"]), case_id=suspend_case.pk,
                                         kind="suspend", reason="Click farm after a warning.")
    assert suspension.status == ActionStatus.AWAITING_APPROVAL
    lead = open_session("lee.lead")
    lead.goto(f"/admin/enforcement/case/{suspend_case.pk}/change/")
    card = lead.locator(f"#decision #action-{suspension.pk}")  # what waits for the lead is in the decision panel
    expect(card.locator('[data-verb="approve"]')).to_be_visible()
    lead.keyboard.press("y")
    expect(card.locator('[data-verb="approve"]')).to_be_focused()
    suspension.refresh_from_db()
    assert suspension.status == ActionStatus.AWAITING_APPROVAL  # selecting is not pressing
    lead.keyboard.press("Enter")
    expect(lead.locator(".messagelist")).to_contain_text("approved")
    suspension.refresh_from_db()
    assert suspension.status == ActionStatus.APPLIED and suspension.approved_by == console_data["lead"]
