"""A rule's page: "Preview the effect" replays the rule's recent decisions under the edited form, changes nothing,
and keeps the form filled in; "Save" then records the new version as before."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from enforcement.models import AuditEvent, Rule, RuleVersion
from tests.admin.test_rules_tokens_report import _rule_form
from tests.factories import AccountFactory, CaseFactory, EnforcementActionFactory, ViolationFactory

RULE = "covert-tracking"  # medium -> warning by default


@pytest.fixture
def rule(db):
    """Three medium violations of the last weeks (one by an account with a strike) and a high one."""
    rule = Rule.objects.get(code=RULE)
    now = timezone.now()
    for n in range(2):
        ViolationFactory(rule=rule, severity="medium", reported_at=now - timedelta(days=n + 1))
    repeat = AccountFactory(public_id="acct_repeat")
    EnforcementActionFactory(case=CaseFactory(account=repeat), kind="throttle", applied_at=now - timedelta(days=30))
    ViolationFactory(rule=rule, severity="medium", account=repeat, reported_at=now - timedelta(days=3))
    ViolationFactory(rule=rule, severity="high", reported_at=now - timedelta(days=4))
    ViolationFactory(rule=rule, severity="medium", reported_at=now - timedelta(days=200))  # before any window
    return rule


def _url(rule) -> str:
    return f"/admin/enforcement/rule/{rule.pk}/change/"


def test_a_lead_previews_a_change_and_nothing_is_saved_until_save(lead_client, rule):
    page = lead_client.get(_url(rule)).content.decode()
    assert 'name="_preview"' in page and 'id="preview-result"' not in page

    form = _rule_form(rule, ladder_overrides='{"medium": "suspend"}')
    response = lead_client.post(_url(rule), {**form, "_preview": "Preview the effect", "preview_days": "30"})
    assert response.status_code == 200
    simulation = response.context["simulation"]
    assert (simulation.decisions, simulation.changed, simulation.accounts_affected) == (4, 3, 3)
    assert simulation.by_change == {"warning->suspend": 2, "throttle->terminate": 1}
    html = response.content.decode()
    assert "warning -&gt; suspend: 2" in html and "throttle -&gt; terminate: 1" in html
    for example in simulation.examples:
        assert f'href="/admin/enforcement/case/{example.case}/change/"' in html
    assert "acct_repeat" in html
    # The form is still filled in as the lead left it, and nothing was written.
    assert response.context["adminform"].form["ladder_overrides"].value() == '{"medium": "suspend"}'
    assert 'value="30"' in html
    rule.refresh_from_db()
    assert (rule.ladder_overrides, rule.version) == ({}, 1)
    assert not AuditEvent.objects.filter(verb="rule.updated").exists()
    assert not RuleVersion.objects.filter(rule=rule, version=2).exists()
    assert not LogEntry.objects.exists()

    response = lead_client.post(_url(rule), {**form, "preview_days": "30", "_save": "Save"})
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.ladder_overrides, rule.version) == ({"medium": "suspend"}, 2)
    assert RuleVersion.objects.get(rule=rule, version=2).policy["ladder_overrides"] == {"medium": "suspend"}
    assert AuditEvent.objects.get(verb="rule.updated").after == {"ladder_overrides": {"medium": "suspend"},
                                                                   "version": 2}


def test_a_preview_of_the_other_policy_fields(lead_client, rule):
    form = _rule_form(rule, strike_window_days="10")  # the repeat offender's strike is 27 days before
    response = lead_client.post(_url(rule), {**form, "_preview": "Preview the effect", "preview_days": "90"})
    assert response.context["simulation"].by_change == {"throttle->warning": 1}
    form = _rule_form(rule, auto_action="")
    response = lead_client.post(_url(rule), {**form, "_preview": "Preview the effect", "preview_days": "90"})
    assert response.context["simulation"].by_change == {"warning->none": 2, "throttle->none": 2}


def test_a_preview_of_a_bad_form_shows_its_errors_and_no_counts(lead_client, rule):
    form = _rule_form(rule, ladder_overrides='{"medium": "obliterate"}')
    response = lead_client.post(_url(rule), {**form, "_preview": "Preview the effect", "preview_days": "90"})
    assert response.status_code == 200
    assert "is not a rung" in response.content.decode() and "simulation" not in response.context
    response = lead_client.post(_url(rule), {**_rule_form(rule), "_preview": "Preview the effect",
                                             "preview_days": "400"})
    assert "simulation" not in response.context
    assert "less than or equal to 365" in response.content.decode()
    response = lead_client.post(_url(rule), {**_rule_form(rule, strike_window_days="100000"),
                                             "_preview": "Preview the effect", "preview_days": "90"})
    assert "simulation" not in response.context and "Must be between 1 and 3650" in response.content.decode()
    rule.refresh_from_db()
    assert rule.version == 1 and not LogEntry.objects.exists()


def test_only_leads_may_preview(agent_client, auditor_client, rule):
    for client in (agent_client, auditor_client):
        page = client.get(_url(rule))
        assert page.status_code == 200 and 'name="_preview"' not in page.content.decode()
        response = client.post(_url(rule), {**_rule_form(rule, ladder_overrides='{"medium": "suspend"}'),
                                            "_preview": "Preview the effect", "preview_days": "90"})
        assert response.status_code == 403
