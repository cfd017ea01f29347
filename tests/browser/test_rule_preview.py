"""A lead edits a rule's ladder in a real browser, previews what it would have done to the rule's recent decisions
(counts by change, examples linking to their cases), and saves: the preview wrote nothing, the save one new version."""

from datetime import timedelta

import pytest
from django.utils import timezone

from enforcement.models import AuditEvent, Rule, RuleVersion
from tests.factories import AccountFactory, CaseFactory, EnforcementActionFactory, UserFactory, ViolationFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_lead_previews_a_ladder_change_then_saves_it(open_session, screenshot):
    from playwright.sync_api import expect

    UserFactory(username="lee.lead", role="tns_lead")
    rule = Rule.objects.get(code="covert-tracking")  # medium -> warning by default
    now = timezone.now()
    for n, severity in enumerate(["medium", "medium", "medium", "high", "low"]):
        ViolationFactory(rule=rule, severity=severity, reported_at=now - timedelta(days=n + 1),
                         account=AccountFactory(name=f"Customer {n}"))
    repeat = AccountFactory(public_id="acct_repeatoffender1", name="Repeat Offender")
    EnforcementActionFactory(case=CaseFactory(account=repeat), kind="warning", applied_at=now - timedelta(days=20))
    repeated = ViolationFactory(rule=rule, severity="medium", account=repeat, reported_at=now - timedelta(hours=5))

    lead = open_session("lee.lead")
    lead.goto(f"/admin/enforcement/rule/{rule.pk}/change/")
    expect(lead.locator("#preview-result")).to_have_count(0)
    lead.fill("#id_ladder_overrides", '{"medium": "suspend"}')
    lead.click("#preview-effect")

    result = lead.locator("#preview-result")
    expect(result.locator("#preview-decisions")).to_have_text("6")
    expect(result.locator("#preview-changed")).to_have_text("4")
    expect(result.locator("#preview-accounts")).to_have_text("4")
    expect(result.locator("#preview-changes")).to_contain_text("warning -> suspend: 3")
    expect(result.locator("#preview-changes")).to_contain_text("throttle -> terminate: 1")
    expect(result.locator("#preview-examples tbody tr")).to_have_count(4)
    expect(lead.locator("#id_ladder_overrides")).to_have_value('{"medium": "suspend"}')  # still filled in
    result.scroll_into_view_if_needed()
    screenshot(lead, "rule-preview", docs=True)
    assert Rule.objects.get(pk=rule.pk).version == 1
    assert not AuditEvent.objects.filter(verb="rule.updated").exists()

    # The repeat offender's decision is among the examples, linking to its case.
    link = result.locator("#preview-examples a", has_text=f"Case #{repeated.case_id}")
    expect(link).to_have_attribute("href", f"/admin/enforcement/case/{repeated.case_id}/change/")

    lead.click("input[name=_save]")
    expect(lead.locator(".messagelist")).to_contain_text("was changed successfully")
    rule.refresh_from_db()
    assert (rule.ladder_overrides, rule.version) == ({"medium": "suspend"}, 2)
    assert RuleVersion.objects.filter(rule=rule, version=2).exists()
