"""Who may do what to an action: the rules the services check and the admin asks through the ``check_*``
functions of ``enforcement.services``.

Four eyes by person: whoever requested an action (directly, or through a service token they created) never
approves it, a termination is approved by a lead in person only, and an appeal is decided by a lead who took
no part in the decision appealed.
"""

from enforcement.actors import APPROVE_ACTION, PROPOSE_ACTION, SUSPEND_ACTION, Actor, identities_of
from enforcement.models import ActionKind, EnforcementAction


def requester_identities(action: EnforcementAction) -> frozenset[str]:
    token = action.requested_by_token if action.requested_by_token_id else None
    return identities_of(user_id=action.requested_by_id, token_id=action.requested_by_token_id,
                         token_creator_id=token.created_by_id if token else None)


def approver_identities(action: EnforcementAction) -> frozenset[str]:
    token = action.approved_by_token if action.approved_by_token_id else None
    return identities_of(user_id=action.approved_by_id, token_id=action.approved_by_token_id,
                         token_creator_id=token.created_by_id if token else None)


def requires_approval(kind: str, actor: Actor) -> bool:
    """A termination always waits for a lead; a suspension waits unless a lead asks for it."""
    if kind == ActionKind.TERMINATE:
        return True
    if kind == ActionKind.SUSPEND:
        return not actor.can(SUSPEND_ACTION)
    return False


def is_own_request(actor: Actor, action: EnforcementAction) -> bool:
    """Four eyes: the actor (or the person behind the token) requested this action."""
    return bool(actor.identities & requester_identities(action))


def took_part(actor: Actor, action: EnforcementAction) -> bool:
    """The actor (or the person behind the token) requested or approved this action."""
    return bool(actor.identities & (requester_identities(action) | approver_identities(action)))


def may_undo(actor: Actor, action: EnforcementAction) -> bool:
    """Agents undo (revert, retry, cancel) warnings and throttles; suspensions and terminations need a lead."""
    if action.kind in (ActionKind.WARNING, ActionKind.THROTTLE):
        return actor.can(PROPOSE_ACTION)
    return actor.can(APPROVE_ACTION)


def may_cancel(actor: Actor, action: EnforcementAction) -> bool:
    """Whoever may undo it, and anyone who may propose cancelling their own request."""
    return may_undo(actor, action) or (is_own_request(actor, action) and actor.can(PROPOSE_ACTION))

