"""The console shows a button exactly when the service would do something for that person.

For every role, every kind of action in every state, and every button: if the button is shown, the
service call succeeds and changes the action; if the role check fails, the service refuses with
Forbidden (so the admin's 403 mirrors it); otherwise the service refuses or does nothing.
"""

import pytest
from django.db import transaction
from django.utils import timezone

from enforcement import services
from enforcement.admin.buttons import ACTION_VERBS, action_verbs, role_allows
from enforcement.errors import Forbidden, ServiceError
from enforcement.models import ActionKind, ActionStatus, Appeal, EnforcementAction
from tests.admin.conftest import report

STATES = [
    ActionStatus.AWAITING_APPROVAL, ActionStatus.SCHEDULED, ActionStatus.APPLIED, ActionStatus.FAILED,
    ActionStatus.REVERTED, ActionStatus.CANCELLED,
]


class Rollback(Exception):
    pass


def call(verb, actor, action):
    return {
        "approve": lambda: services.action_approve(actor=actor, action_id=action.pk),
        "confirm": lambda: services.action_confirm(actor=actor, action_id=action.pk),
        "cancel": lambda: services.action_cancel(actor=actor, action_id=action.pk, reason="test"),
        "revert": lambda: services.action_revert(actor=actor, action_id=action.pk, reason="test"),
        "retry": lambda: services.action_retry(actor=actor, action_id=action.pk),
        "appeal": lambda: services.appeal_submit(actor=actor, action_id=action.pk, message="test"),
    }[verb]()


def state_of(action_id):
    action = EnforcementAction.objects.get(pk=action_id)
    return (action.status, action.reviewed_at, Appeal.objects.filter(action_id=action_id).exists())


def outcome(verb, actor, action):
    """(error or None, changed?) of a service call, rolled back afterwards."""
    before = state_of(action.pk)
    result = {}
    try:
        with transaction.atomic():
            try:
                call(verb, actor, action)
            except ServiceError as exc:
                result["error"] = exc
            result["changed"] = state_of(action.pk) != before
            raise Rollback
    except Rollback:
        pass
    return result.get("error"), result["changed"]


@pytest.fixture
def actions(make_account, as_detector, agent, lead):
    """One action for every (kind, state, act-first, requester) worth telling apart."""
    made = []
    now = timezone.now()
    for kind in ActionKind.values:
        for status in STATES:
            variants = [(False, agent), (False, lead)]
            if kind == ActionKind.SUSPEND and status in (ActionStatus.SCHEDULED, ActionStatus.APPLIED):
                variants.append((True, lead))
            for act_first, requester in variants:
                case = report(as_detector, make_account(n_keys=1), rule="special-category-data").violation.case
                made.append(EnforcementAction.objects.create(
                    case=case, account=case.account, kind=kind, status=status, reason="fixture",
                    act_first=act_first, requested_by=requester, requested_by_label=requester.username,
                    applied_at=now if status in (ActionStatus.APPLIED, ActionStatus.REVERTED) else None,
                    scheduled_at=now if status != ActionStatus.AWAITING_APPROVAL else None,
                ))
    return made


@pytest.mark.parametrize("role", ["as_agent", "as_lead", "as_second_lead"])
def test_buttons_match_what_the_services_allow(request, role, actions, auditor):
    actor = request.getfixturevalue(role)
    now = timezone.now()
    checked = 0
    for action in actions:
        shown = action_verbs(actor, action, case=action.case, now=now)
        for verb in ACTION_VERBS:
            error, changed = outcome(verb, actor, action)
            where = f"{role} {verb} {action.kind} {action.status} act_first={action.act_first} " \
                    f"by={action.requested_by_label}: {error!r}"
            if verb in shown:
                assert error is None and changed, where
            else:
                assert error is not None or not changed, where
                if not role_allows(actor, action, verb):
                    assert isinstance(error, Forbidden), where
            checked += 1
    assert checked == len(actions) * len(ACTION_VERBS)


def test_an_auditor_sees_no_buttons_and_every_service_refuses(actions, auditor):
    from enforcement.actors import Actor

    actor = Actor.for_user(auditor)
    now = timezone.now()
    for action in actions:
        assert action_verbs(actor, action, case=action.case, now=now) == []
        for verb in ACTION_VERBS:
            error, changed = outcome(verb, actor, action)
            assert isinstance(error, Forbidden) and not changed, (verb, action.kind, action.status)
