"""Which buttons a staff member sees: the same role checks the services make, plus the state they need.

``role_allows`` asks ``enforcement.rights``, where the services check too (a view refuses with 403
when it fails); ``state_allows`` is what the action's state must be for the button to make sense.
A button is shown only when both hold. The services stay the authority: they check again.
"""

from datetime import datetime, timedelta

from django.conf import settings

from enforcement.actors import APPROVE_ACTION, DECIDE_APPEAL, SUBMIT_APPEAL, Actor
from enforcement.models import ActionStatus, Appeal, Case, EnforcementAction
from enforcement.rights import is_own_termination, may_cancel, may_undo
from enforcement.transitions import ACTION_TRANSITIONS, can_transition

ACTION_VERBS = ("approve", "confirm", "cancel", "revert", "retry", "appeal")


def actor_for(request) -> Actor:
    """One Actor per request, so role and permission look-ups are cached for the whole page."""
    actor = getattr(request, "_console_actor", None)
    if actor is None or actor.user is not request.user:
        actor = Actor.for_user(request.user)
        request._console_actor = actor
    return actor


def role_allows(actor: Actor, action: EnforcementAction, verb: str) -> bool:
    if verb in ("approve", "confirm"):
        return actor.can(APPROVE_ACTION)
    if verb == "cancel":
        return may_cancel(actor, action)
    if verb in ("revert", "retry"):
        return may_undo(actor, action)
    if verb == "appeal":
        return actor.can(SUBMIT_APPEAL)
    raise ValueError(f"unknown verb {verb!r}")


def _appealable(action: EnforcementAction, now: datetime) -> bool:
    if action.status not in (ActionStatus.APPLIED, ActionStatus.EXPIRED) or action.applied_at is None:
        return False
    if now > action.applied_at + timedelta(days=settings.ENFORCEMENT["APPEAL_WINDOW_DAYS"]):
        return False
    try:
        action.appeal  # noqa: B018  (select_related: no query)
    except Appeal.DoesNotExist:
        return True
    return False


def state_allows(action: EnforcementAction, verb: str, *, case: Case, now: datetime) -> bool:
    if verb == "approve":
        return action.status == ActionStatus.AWAITING_APPROVAL
    if verb == "confirm":
        return action.act_first and action.reviewed_at is None and action.status in (
            ActionStatus.SCHEDULED, ActionStatus.APPLIED,
        )
    if verb == "cancel":
        return can_transition(ACTION_TRANSITIONS, action.status, ActionStatus.CANCELLED)
    if verb == "revert":
        return action.status == ActionStatus.APPLIED
    if verb == "retry":
        return action.status == ActionStatus.FAILED
    if verb == "appeal":
        return case.status != Case.Status.CLOSED and _appealable(action, now)
    raise ValueError(f"unknown verb {verb!r}")


def action_verbs(actor: Actor, action: EnforcementAction, *, case: Case, now: datetime) -> list[str]:
    """The buttons to show on one action."""
    verbs = [
        verb for verb in ACTION_VERBS
        if role_allows(actor, action, verb) and state_allows(action, verb, case=case, now=now)
    ]
    if "approve" in verbs and is_own_termination(actor, action):
        verbs.remove("approve")  # a termination needs a second lead
    return verbs


def can_decide_appeal(actor: Actor) -> bool:
    return actor.can(DECIDE_APPEAL)
