"""Which buttons a staff member sees: each asks the service's own precondition (``services.check_*``), so a
button is shown exactly when pressing it would succeed, and its refusal reads as the service's would.
The services stay the authority: they check again when the button is pressed."""

from datetime import datetime

from enforcement import services
from enforcement.actors import DECIDE_APPEAL, Actor
from enforcement.errors import Forbidden, ServiceError
from enforcement.models import Case, EnforcementAction

ACTION_VERBS = ("approve", "confirm", "cancel", "revert", "retry", "appeal")
ACTION_CHECKS = {
    "approve": services.check_approve,
    "confirm": services.check_confirm,
    "cancel": services.check_cancel,
    "revert": services.check_revert,
    "retry": services.check_retry,
}


def actor_for(request) -> Actor:
    """One Actor per request, so role and permission look-ups are cached for the whole page."""
    actor = getattr(request, "_console_actor", None)
    if actor is None or actor.user is not request.user:
        actor = Actor.for_user(request.user)
        request._console_actor = actor
    return actor


def action_refusal(actor: Actor, action: EnforcementAction, verb: str, *, now: datetime | None = None
                   ) -> ServiceError | None:
    """Why pressing ``verb`` on this action would be refused, as the service would say it; None if it would not."""
    if verb == "appeal":
        return services.check_appeal_submit(actor, action, now=now)
    if verb not in ACTION_CHECKS:
        raise ValueError(f"unknown verb {verb!r}")
    return ACTION_CHECKS[verb](actor, action)


def role_allows(actor: Actor, action: EnforcementAction, verb: str) -> bool:
    """False when the actor's role may never press this button on this action (the view answers 403);
    other refusals (the action's state, four eyes) are the service's message."""
    refusal = action_refusal(actor, action, verb)
    return not (isinstance(refusal, Forbidden) and refusal.code == Forbidden.code)


def action_verbs(actor: Actor, action: EnforcementAction, *, case: Case, now: datetime) -> list[str]:
    """The buttons to show on one action (``case`` is the action's, already loaded)."""
    action.case = case
    return [verb for verb in ACTION_VERBS if action_refusal(actor, action, verb, now=now) is None]


def approval_note(actor: Actor, action: EnforcementAction) -> str:
    """Why a lead sees no Approve button on an action awaiting approval (e.g. their own request), or ""."""
    if not role_allows(actor, action, "approve"):
        return ""
    refusal = services.check_approve(actor, action)
    return refusal.message if refusal is not None else ""


def can_decide_appeal(actor: Actor) -> bool:
    return actor.can(DECIDE_APPEAL)
