"""Appeals: a customer contests an applied action; a lead upholds or overturns it."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from enforcement import notifications, rights
from enforcement.actors import DECIDE_APPEAL, SUBMIT_APPEAL, Actor
from enforcement.audit import audit_record, audit_refusals
from enforcement.errors import BLANK, Conflict, Forbidden, InvalidTransition, NotFound, ServiceError, ValidationFailed
from enforcement.models import ActionStatus, Appeal, Case, EnforcementAction
from enforcement.services.actions import action_lift_locked
from enforcement.services.cases import case_refresh
from enforcement.services.detectors import outcomes_overturned
from enforcement.services.locks import for_update, lock_action


def _appealed(action: EnforcementAction) -> bool:
    try:
        action.appeal  # noqa: B018 - no query when the caller used select_related("appeal")
    except Appeal.DoesNotExist:
        return False
    return True


def check_appeal_submit(actor: Actor, action: EnforcementAction, *, now: datetime | None = None) -> ServiceError | None:
    """Why this action cannot be appealed now (the error ``appeal_submit`` raises), or None."""
    if not actor.can(SUBMIT_APPEAL):
        return Forbidden("You may not submit appeals.")
    if _appealed(action):
        return Conflict("This action has already been appealed.")
    if action.status not in (ActionStatus.APPLIED, ActionStatus.EXPIRED) or action.applied_at is None:
        return InvalidTransition(f"A {action.status} action cannot be appealed.")
    window = timedelta(days=settings.ENFORCEMENT["APPEAL_WINDOW_DAYS"])
    if (now or timezone.now()) > action.applied_at + window:
        return InvalidTransition(f"The appeal window of {window.days} days has passed.")
    if action.case.status == Case.Status.CLOSED:
        return InvalidTransition("The case is closed.")
    return None


def check_appeal_decide(actor: Actor, appeal: Appeal, action: EnforcementAction) -> ServiceError | None:
    """Why this actor may not decide this appeal (the error ``appeal_decide`` raises), or None."""
    if not actor.can(DECIDE_APPEAL):
        return Forbidden("Only a lead may decide appeals.")
    if appeal.status != Appeal.Status.PENDING:
        return InvalidTransition(f"The appeal was already {appeal.status} by {appeal.decided_by_label}.")
    if rights.took_part(actor, action):
        return Forbidden("You requested or approved the action appealed (yourself or through a token you "
                         "created); a lead who took no part decides the appeal.", code="not_independent")
    return None


@audit_refusals("appeal.submit", EnforcementAction, "action_id")
def appeal_submit(*, actor: Actor, action_id: int, message: str) -> Appeal:
    actor.require(SUBMIT_APPEAL, "You may not submit appeals.")
    if not message or not message.strip():
        raise ValidationFailed("An appeal needs a message.", fields={"message": ["This field may not be blank."]})
    try:
        with transaction.atomic():
            action = lock_action(action_id)
            problem = check_appeal_submit(actor, action)
            if problem is not None:
                raise problem
            case = action.case
            now = timezone.now()
            appeal = Appeal.objects.create(
                action=action, case=case, message=message.strip(), submitted_by_label=actor.label,
                due_at=now + timedelta(hours=settings.ENFORCEMENT["APPEAL_DECISION_HOURS"]),
            )
            audit_record(actor=actor, verb="appeal.submitted", target=appeal, case=case, account=case.account,
                         after={"action": action.pk, "status": appeal.status})
            case_refresh(actor=actor, case=case)
            notifications.notify_customer(
                template="customer_appeal_received", event_key=f"appeal:{appeal.pk}:received", action=action,
                context={**notifications.action_context(action), "appeal_id": appeal.pk},
            )
            return appeal
    except IntegrityError:
        raise Conflict("This action has already been appealed.") from None


@audit_refusals("appeal.decide", Appeal, "appeal_id")
@transaction.atomic
def appeal_decide(*, actor: Actor, appeal_id: int, outcome: str, note: str = "") -> Appeal:
    """Uphold (with a note the customer receives) or overturn (the action is reverted, the customer told once)."""
    actor.require(DECIDE_APPEAL, "Only a lead may decide appeals.")
    if outcome not in (Appeal.Status.UPHELD, Appeal.Status.OVERTURNED):
        raise ValidationFailed("Unknown outcome.", fields={"outcome": ["Must be upheld or overturned."]})
    note = (note or "").strip()
    if outcome == Appeal.Status.UPHELD and not note:
        raise ValidationFailed("Upholding an appeal needs a note for the customer: why the decision stands.",
                               fields={"note": [BLANK]})
    action_id = Appeal.objects.filter(pk=appeal_id).values_list("action_id", flat=True).first()
    if action_id is None:
        raise NotFound(f"No appeal {appeal_id}.")
    action = lock_action(action_id)  # the lock order: account, case, action, then the appeal
    appeal = for_update(Appeal.objects).get(pk=appeal_id)
    if appeal.status == outcome and appeal.decided_by_label == actor.label:
        return appeal  # the same lead retrying
    problem = check_appeal_decide(actor, appeal, action)
    if problem is not None:
        raise problem
    case = action.case
    appeal.status = outcome
    appeal.decided_at = timezone.now()
    appeal.decided_by = actor.user_or_none
    appeal.decided_by_label = actor.label
    appeal.decision_note = note
    appeal.save(update_fields=["status", "decided_at", "decided_by", "decided_by_label", "decision_note"])
    audit_record(actor=actor, verb=f"appeal.{outcome}", target=appeal, case=case, account=case.account,
                 before={"status": "pending"}, after={"status": outcome}, note=appeal.decision_note)
    if outcome == Appeal.Status.OVERTURNED:
        if action.status == ActionStatus.APPLIED:
            action_lift_locked(actor, action, ActionStatus.REVERTED, "action.reverted",
                               f"appeal #{appeal.pk} overturned", overturned=True, notify=False)
        else:
            action.overturned = True
            action.save(update_fields=["overturned", "updated_at"])
            outcomes_overturned(action)
    case_refresh(actor=actor, case=case)
    notifications.notify_customer(
        template="customer_appeal_decided", event_key=f"appeal:{appeal.pk}:decided", action=action,
        context={**notifications.action_context(action), "outcome": outcome, "note": appeal.decision_note},
    )
    return appeal
