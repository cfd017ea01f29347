"""Who may do what to an action: the one place the services check and the admin asks before it shows a button."""

from enforcement.actors import APPROVE_ACTION, PROPOSE_ACTION, SUSPEND_ACTION, Actor
from enforcement.models import ActionKind, EnforcementAction


def requester_identity(action: EnforcementAction) -> str:
    if action.requested_by_id:
        return f"user:{action.requested_by_id}"
    if action.requested_by_token_id:
        return f"token:{action.requested_by_token_id}"
    return "system"


def requires_approval(kind: str, actor: Actor) -> bool:
    """A termination always waits for a lead; a suspension waits unless a lead asks for it."""
    if kind == ActionKind.TERMINATE:
        return True
    if kind == ActionKind.SUSPEND:
        return not actor.can(SUSPEND_ACTION)
    return False


def is_own_termination(actor: Actor, action: EnforcementAction) -> bool:
    """Four eyes: nobody approves the termination they requested."""
    return action.kind == ActionKind.TERMINATE and requester_identity(action) == actor.identity


def may_undo(actor: Actor, action: EnforcementAction) -> bool:
    """Agents undo (revert, retry, cancel) warnings and throttles; suspensions and terminations need a lead."""
    if action.kind in (ActionKind.WARNING, ActionKind.THROTTLE):
        return actor.can(PROPOSE_ACTION)
    return actor.can(APPROVE_ACTION)


def may_cancel(actor: Actor, action: EnforcementAction) -> bool:
    """Whoever may undo it, and anyone who may propose cancelling their own request."""
    own_request = actor.kind == "user" and action.requested_by_id == actor.user.pk
    return may_undo(actor, action) or (own_request and actor.can(PROPOSE_ACTION))
