"""One rule for "an action already covers this", asked by every entry point: the API and the admin's buttons
(through ``action_propose``), the admin's bulk proposal (tests/admin) and the sweep's escalation."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from enforcement import services
from enforcement.errors import Conflict
from enforcement.models import ActionKind, ActionStatus, EnforcementAction
from tests.api.helpers import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(account, keys, as_detector):
    return services.violation_report(
        actor=as_detector, account=account.public_id, rule="spam-fraud", source="detector", external_id="c-1",
        summary="a click farm",
    ).violation.case


def applied(actor, case, kind, **options):
    action = services.action_propose(actor=actor, case_id=case.pk, kind=kind, reason=f"{kind} for the test", **options)
    return services.action_apply(action_id=action.pk)


def propose(actor, case, kind, **options):
    return services.action_propose(actor=actor, case_id=case.pk, kind=kind, reason="proposed again", **options)


def test_a_higher_rung_in_force_covers_every_lower_one(case, as_lead):
    suspension = applied(as_lead, case, ActionKind.SUSPEND)
    for kind in (ActionKind.WARNING, ActionKind.THROTTLE, ActionKind.SUSPEND):
        with pytest.raises(Conflict, match=f"#{suspension.pk}"):
            propose(as_lead, case, kind)
    assert propose(as_lead, case, ActionKind.TERMINATE).status == ActionStatus.AWAITING_APPROVAL


def test_a_pending_action_covers_as_one_in_force(case, as_agent, as_lead):
    pending = propose(as_agent, case, ActionKind.SUSPEND)  # an agent's suspension waits for a lead
    assert pending.status == ActionStatus.AWAITING_APPROVAL
    with pytest.raises(Conflict, match=f"#{pending.pk}"):
        propose(as_lead, case, ActionKind.THROTTLE)
    services.action_cancel(actor=as_lead, action_id=pending.pk, reason="changed my mind")
    assert propose(as_lead, case, ActionKind.THROTTLE).status == ActionStatus.SCHEDULED


def test_keys_named_by_an_action_cover_only_those_keys(case, keys, as_lead):
    applied(as_lead, case, ActionKind.SUSPEND, key_prefixes=[keys[0].prefix])
    with pytest.raises(Conflict):
        propose(as_lead, case, ActionKind.THROTTLE, key_prefixes=[keys[0].prefix])
    assert propose(as_lead, case, ActionKind.THROTTLE, key_prefixes=[keys[1].prefix])
    assert propose(as_lead, case, ActionKind.SUSPEND)  # the whole account: more than one key covers


def test_a_tighter_throttle_adds_something_a_looser_one_does_not(case, as_lead):
    applied(as_lead, case, ActionKind.THROTTLE, rate_limit_per_minute=50, ip_rate_limit_per_minute=10)
    with pytest.raises(Conflict):
        propose(as_lead, case, ActionKind.THROTTLE, rate_limit_per_minute=80, ip_rate_limit_per_minute=10)
    assert propose(as_lead, case, ActionKind.THROTTLE, rate_limit_per_minute=20, ip_rate_limit_per_minute=10)


def test_a_warning_covers_only_a_warning_on_its_own_case(account, case, as_detector, as_lead):
    warning = applied(as_lead, case, ActionKind.WARNING)
    with pytest.raises(Conflict, match=f"#{warning.pk}"):
        propose(as_lead, case, ActionKind.WARNING)
    assert propose(as_lead, case, ActionKind.THROTTLE)  # a warning restricts nothing
    services.action_cancel(actor=as_lead, action_id=case.actions.get(kind=ActionKind.THROTTLE).pk)
    services.case_resolve(actor=as_lead, case_id=case.pk, resolution="fixed")
    later = services.violation_report(
        actor=as_detector, account=account.public_id, rule="spam-fraud", source="detector", external_id="c-2",
        summary="again",
    ).violation.case
    assert later.pk != case.pk
    assert propose(as_lead, later, ActionKind.WARNING).status == ActionStatus.SCHEDULED


def test_the_api_refuses_what_is_covered_with_409(case, as_lead, agent):
    suspension = applied(as_lead, case, ActionKind.SUSPEND)
    client = APIClient()
    client.force_login(agent)
    before = EnforcementAction.objects.count()
    response = client.post(f"/api/v1/cases/{case.pk}/actions/", {"kind": "throttle", "reason": "slow down"},
                           format="json")
    assert_error(response, 409, "conflict")
    assert f"#{suspension.pk}" in response.json()["error"]["message"]
    assert EnforcementAction.objects.count() == before


def test_the_sweep_does_not_escalate_a_warning_that_a_stronger_action_covers(case, as_lead):
    warning = applied(as_lead, case, ActionKind.WARNING)
    applied(as_lead, case, ActionKind.SUSPEND)
    later = timezone.now() + timedelta(days=30)
    assert warning.remediation_deadline < later
    report = services.sweep(now=later)
    assert report.escalated_actions == []
    assert not case.actions.filter(kind=ActionKind.THROTTLE).exists()
    warning.refresh_from_db()
    assert warning.escalated_at is not None  # looked at once, not again every sweep


def test_the_sweep_escalates_a_warning_that_nothing_covers(case, as_lead):
    applied(as_lead, case, ActionKind.WARNING)
    report = services.sweep(now=timezone.now() + timedelta(days=30))
    [throttle] = case.actions.filter(kind=ActionKind.THROTTLE)
    assert report.escalated_actions == [throttle.pk]


def test_the_notice_preview_is_what_the_customer_receives_and_changes_nothing(case, as_lead, run_on_commit):
    from enforcement.models import Notification

    before = (EnforcementAction.objects.count(), Notification.objects.count())
    preview = services.notice_preview(case=case, kind=ActionKind.SUSPEND)
    assert (EnforcementAction.objects.count(), Notification.objects.count()) == before
    assert preview["template"] == "customer_suspend" and "We have suspended all API keys" in preview["text"]
    suspension = run_on_commit(services.action_propose, actor=as_lead, case_id=case.pk, kind=ActionKind.SUSPEND,
                               reason="stop")
    sent = Notification.objects.get(action=suspension, template="customer_suspend")
    rendered = services.notice_preview(case=case, action=EnforcementAction.objects.get(pk=suspension.pk))
    from enforcement import notifications

    subject, text, _ = notifications.render(sent.template, sent.context)
    assert rendered["subject"] == subject and rendered["text"] == text
