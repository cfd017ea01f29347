"""Enforcement actions: proposed, approved, applied to the keys, lifted; and what may be done to one.

Each verb has its precondition as a ``check_<verb>`` function that returns the error the verb would
raise (or None): the services raise it, the admin asks it before it shows a button, so the two cannot
disagree. ``covering_action`` is the one rule for "an action already covers this".
"""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import APIKey
from enforcement import ladder, notifications, rights, sla
from enforcement.actors import APPROVE_ACTION, PROPOSE_ACTION, SYSTEM, Actor
from enforcement.audit import audit_record, audit_refusals, snapshot
from enforcement.errors import Conflict, Forbidden, InvalidTransition, ServiceError, ValidationFailed
from enforcement.models import ActionKind, ActionStatus, AuditEvent, Case, EnforcementAction, Violation
from enforcement.services.cases import case_refresh, case_reviewed, lead_review_done
from enforcement.services.detectors import outcomes_actioned, outcomes_overturned
from enforcement.services.key_state import account_keys_recompute
from enforcement.services.locks import lock_action, lock_case
from enforcement.services.recommendations import decision_basis, recommendation_for
from enforcement.transitions import ACTION_TRANSITIONS, IN_FORCE, PENDING, can_transition
from lib import prom, queue

log = logging.getLogger(__name__)

ACTION_FIELDS = ["kind", "status", "rate_limit_per_minute", "expires_at", "remediation_deadline", "attempts"]
DEFAULT_THROTTLE_RATE = 60
DEFAULT_THROTTLE_IP_RATE = 10
APPLY_TASK = "enforcement.tasks.apply_action"


def enqueue_apply(action_id: int) -> None:
    queue.enqueue_on_commit(APPLY_TASK, action_id)


def _set_status(actor: Actor, action: EnforcementAction, new: str, verb: str, *, extra: list[str], note: str = ""):
    if not can_transition(ACTION_TRANSITIONS, action.status, new):
        raise InvalidTransition(f"A {action.status} action cannot become {new}.")
    before = snapshot(action, ACTION_FIELDS)
    action.status = new
    action.save(update_fields=["status", *extra, "updated_at"])
    audit_record(actor=actor, verb=verb, target=action, case=action.case, account=action.account,
                 before=before, after=snapshot(action, ACTION_FIELDS), note=note)


def _raise_if(problem: ServiceError | None) -> None:
    if problem is not None:
        raise problem


# --------------------------------------------------------------------------- the covering rule


def covering_action(
    *,
    case: Case,
    kind: str,
    key_ids: Iterable[int] = (),
    rate_limit: int | None = None,
    ip_rate_limit: int | None = None,
) -> EnforcementAction | None:
    """The action that already covers proposing ``kind`` on ``case`` (on ``key_ids``, or the whole account).

    The one rule, asked by ``action_propose`` (so the API and the admin's buttons), the admin's bulk
    proposal and the sweep's escalation:

    - A restrictive action (throttle, suspension, termination) of the account that is awaiting approval,
      scheduled, failed (it can be retried) or in force, at the proposed rung or above, covers the proposal
      when it applies to the whole account or to every key the proposal names. A throttle covers another
      throttle only if its limits are as low or lower (a tighter throttle adds something).
    - A warning restricts nothing: it covers only another warning on its own case.

    Returns the newest such action, or None when the proposal would add something.
    """
    rung = ladder.RUNGS.index(kind)
    wanted = set(key_ids)
    candidates = (
        EnforcementAction.objects.filter(
            account_id=case.account_id, kind__in=ladder.RUNGS[rung:], status__in=[*PENDING, *IN_FORCE]
        )
        .prefetch_related("keys")
        .order_by("-created_at")
    )
    for action in candidates:
        if action.kind == ActionKind.WARNING and action.case_id != case.pk:
            continue
        if action.kind == kind == ActionKind.THROTTLE and not (
            action.rate_limit_per_minute <= (rate_limit or DEFAULT_THROTTLE_RATE)
            and action.ip_rate_limit_per_minute <= (ip_rate_limit or DEFAULT_THROTTLE_IP_RATE)
        ):
            continue
        named = {key.pk for key in action.keys.all()}
        if named and (not wanted or not wanted <= named):
            continue
        return action
    return None


def _covered_error(action: EnforcementAction) -> Conflict:
    return Conflict(
        f"{action.get_kind_display()} #{action.pk} ({action.status}) already covers this; "
        f"{'retry or cancel' if action.status == ActionStatus.FAILED else 'lift or cancel'} it first."
    )


# --------------------------------------------------------------------------- preconditions


def check_approve(actor: Actor, action: EnforcementAction) -> ServiceError | None:
    if not actor.can(APPROVE_ACTION):
        return Forbidden("Only a lead may approve suspensions and terminations.")
    if action.status != ActionStatus.AWAITING_APPROVAL:
        return _already_decided(action)
    if action.kind == ActionKind.TERMINATE and actor.kind != "user":
        return Forbidden("A termination is approved by a lead in person, never by a service token.",
                         code="person_required")
    if rights.is_own_request(actor, action):
        return Forbidden("You requested this action (yourself or through a token you created); "
                         "another lead must approve it.", code="not_independent")
    return None


def _already_decided(action: EnforcementAction) -> Conflict:
    """Approving what is no longer awaiting approval: say who decided it."""
    if action.approved_at is not None:
        who, what = action.approved_by_label, "approved"
    elif action.status == ActionStatus.CANCELLED:
        event = AuditEvent.objects.filter(
            target_type="enforcementaction", target_id=str(action.pk), verb="action.cancelled"
        ).order_by("-id").first()
        who, what = (event.actor_label if event else "someone"), "cancelled"
    else:
        who, what = action.requested_by_label, f"{action.status.replace('_', ' ')} without approval"
    return Conflict(f"{action.get_kind_display()} #{action.pk} was already {what} by {who}.",
                    code="already_decided")


def check_confirm(actor: Actor, action: EnforcementAction) -> ServiceError | None:
    if not actor.can(APPROVE_ACTION):
        return Forbidden("Only a lead may review act-first actions.")
    if not action.act_first:
        return InvalidTransition("Only act-first actions are reviewed.")
    if action.reviewed_at is not None:
        return InvalidTransition("This act-first action was already reviewed.")
    if action.status not in (ActionStatus.SCHEDULED, ActionStatus.APPLIED):
        return InvalidTransition(f"A {action.status} action cannot be confirmed.")
    return None


def check_cancel(actor: Actor, action: EnforcementAction) -> ServiceError | None:
    if not rights.may_cancel(actor, action):
        return Forbidden(f"You may not cancel a {action.kind}.")
    if not can_transition(ACTION_TRANSITIONS, action.status, ActionStatus.CANCELLED):
        return InvalidTransition(f"A {action.status} action cannot be cancelled.")
    return None


def check_revert(actor: Actor, action: EnforcementAction) -> ServiceError | None:
    if not rights.may_undo(actor, action):
        return Forbidden(f"Only a lead may revert a {action.kind}.")
    if action.status != ActionStatus.APPLIED:
        return InvalidTransition(f"A {action.status} action cannot be reverted.")
    return None


def check_retry(actor: Actor, action: EnforcementAction) -> ServiceError | None:
    if not rights.may_undo(actor, action):
        return Forbidden(f"You may not retry a {action.kind}.")
    if action.status != ActionStatus.FAILED:  # else "retry" would skip an approval (awaiting_approval -> scheduled)
        return InvalidTransition(f"Only a failed action is retried; this one is {action.status}.")
    return None


# --------------------------------------------------------------------------- proposing


def action_propose(
    *,
    actor: Actor,
    case_id: int,
    reason: str,
    kind: str | None = None,
    key_prefixes: list[str] | None = None,
    rate_limit_per_minute: int | None = None,
    ip_rate_limit_per_minute: int | None = None,
    expires_at: datetime | None = None,
    remediation_deadline: datetime | None = None,
) -> EnforcementAction:
    """Propose an action on a case; without ``kind``, the ladder's recommendation."""
    actor.require(PROPOSE_ACTION, "You may not propose enforcement actions.")
    with transaction.atomic():
        case = lock_case(case_id)
        return action_propose_locked(
            actor=actor, case=case, kind=kind, reason=reason, key_prefixes=key_prefixes,
            rate_limit=rate_limit_per_minute, ip_rate_limit=ip_rate_limit_per_minute,
            expires_at=expires_at, remediation_deadline=remediation_deadline,
        )


def _proposal_problems(*, kind, reason, now, expires_at, remediation_deadline, rate_limit, ip_rate_limit):
    fields: dict[str, list[str]] = {}
    if kind not in ActionKind.values:
        fields["kind"] = [f"Must be one of {', '.join(ActionKind.values)}."]
    if not reason or not reason.strip():
        fields["reason"] = ["This field may not be blank."]
    if expires_at is not None and expires_at <= now:
        fields["expires_at"] = ["Must be in the future."]
    if remediation_deadline is not None and (kind != ActionKind.WARNING or remediation_deadline <= now):
        fields["remediation_deadline"] = ["Only a warning has one, and it must be in the future."]
    if (rate_limit is not None or ip_rate_limit is not None) and kind != ActionKind.THROTTLE:
        fields["rate_limit_per_minute"] = ["Only a throttle sets rate limits."]
    for name, value in (("rate_limit_per_minute", rate_limit), ("ip_rate_limit_per_minute", ip_rate_limit)):
        if value is not None and value < 1:
            fields[name] = ["Must be at least 1."]
    if expires_at is not None and kind in (ActionKind.WARNING, ActionKind.TERMINATE):
        fields["expires_at"] = ["Only throttles and suspensions expire."]
    return fields


def action_propose_locked(*, actor, case, kind, reason, key_prefixes=None, rate_limit=None, ip_rate_limit=None,
                          expires_at=None, remediation_deadline=None) -> EnforcementAction:
    """``action_propose`` on a case the caller has locked."""
    now = timezone.now()
    if case.status == Case.Status.CLOSED:
        raise InvalidTransition("The case is closed.")
    recommendation = recommendation_for(case, now=now)
    if kind is None:
        if recommendation.kind is None:
            raise ValidationFailed(
                f"The ladder recommends no action ({recommendation.reason}); choose a kind.",
                fields={"kind": ["Required: the ladder has no recommendation for this case."]},
            )
        kind = recommendation.kind
        reason = reason or recommendation.reason
    fields = _proposal_problems(kind=kind, reason=reason, now=now, expires_at=expires_at,
                                remediation_deadline=remediation_deadline, rate_limit=rate_limit,
                                ip_rate_limit=ip_rate_limit)
    keys = []
    if key_prefixes:
        keys = list(APIKey.objects.filter(account_id=case.account_id, prefix__in=key_prefixes))
        unknown = sorted(set(key_prefixes) - {k.prefix for k in keys})
        if unknown:
            fields["keys"] = [f"Not keys of this account: {', '.join(unknown)}."]
        elif kind == ActionKind.TERMINATE:
            fields["keys"] = ["A termination covers the whole account."]
    if fields:
        raise ValidationFailed("The action is not valid.", fields=fields)
    covering = covering_action(case=case, kind=kind, key_ids=[key.pk for key in keys], rate_limit=rate_limit,
                               ip_rate_limit=ip_rate_limit)
    if covering is not None:
        raise _covered_error(covering)

    needs_approval = rights.requires_approval(kind, actor)
    action = EnforcementAction.objects.create(
        case=case, account=case.account, kind=kind, reason=reason.strip(),
        status=ActionStatus.AWAITING_APPROVAL if needs_approval else ActionStatus.SCHEDULED,
        scheduled_at=None if needs_approval else now,
        rate_limit_per_minute=(rate_limit or DEFAULT_THROTTLE_RATE) if kind == ActionKind.THROTTLE else None,
        ip_rate_limit_per_minute=(ip_rate_limit or DEFAULT_THROTTLE_IP_RATE) if kind == ActionKind.THROTTLE else None,
        expires_at=expires_at,
        remediation_deadline=(remediation_deadline or now + timedelta(days=settings.ENFORCEMENT["REMEDIATION_DAYS"]))
        if kind == ActionKind.WARNING else None,
        requested_by=actor.user_or_none,
        requested_by_token=actor.token_or_none,
        requested_by_label=actor.label,
        decided_under=decision_basis(case, ladder_reason=recommendation.reason),
        approval_due_at=sla.review_deadline(case.severity, now, sla_hours=settings.ENFORCEMENT["SLA_HOURS"])
        if needs_approval else None,
    )
    if keys:
        action.keys.set(keys)
    audit_record(actor=actor, verb="action.proposed", target=action, case=case, account=case.account,
                 after={**snapshot(action, ACTION_FIELDS), "keys": [k.prefix for k in keys]}, note=action.reason)
    case_refresh(actor=actor, case=case)
    case_reviewed(actor=actor, case=case)
    if needs_approval:
        notifications.notify_staff(
            template="staff_awaiting_approval", event_key=f"action:{action.pk}:awaiting_approval",
            case=case, action=action, context=notifications.action_context(action), leads_only=True,
        )
    else:
        enqueue_apply(action.pk)
    return action


def act_first_suspend(*, actor: Actor, case: Case, violation: Violation, reason: str) -> EnforcementAction:
    """Suspend at once on a trusted critical report (the caller holds the account and the case)."""
    now = timezone.now()
    action = EnforcementAction.objects.create(
        case=case, account=case.account, kind=ActionKind.SUSPEND, status=ActionStatus.SCHEDULED,
        reason=f"Act first on {violation.rule.code}: {reason}", act_first=True,
        requested_by_label=f"{actor.label} (act-first)", scheduled_at=now,
        requested_by=actor.user_or_none, requested_by_token=actor.token_or_none,
        decided_under=decision_basis(case, ladder_reason=reason),
    )
    audit_record(actor=actor, verb="action.act_first_scheduled", target=action, case=case, account=case.account,
                 after=snapshot(action, ACTION_FIELDS), note=action.reason)
    case.needs_lead_review = True
    case.review_due_at = sla.tightened_deadline(
        case.review_due_at, "critical", now, sla_hours=settings.ENFORCEMENT["SLA_HOURS"]
    )
    case.save(update_fields=["needs_lead_review", "review_due_at", "updated_at"])
    case_refresh(actor=SYSTEM, case=case)
    notifications.notify_staff(
        template="staff_act_first_review", event_key=f"action:{action.pk}:act_first_review", case=case,
        action=action, context=notifications.action_context(action), leads_only=True,
    )
    enqueue_apply(action.pk)
    return action


# --------------------------------------------------------------------------- deciding


@audit_refusals("action.approve", EnforcementAction, "action_id")
@transaction.atomic
def action_approve(*, actor: Actor, action_id: int) -> EnforcementAction:
    actor.require(APPROVE_ACTION, "Only a lead may approve suspensions and terminations.")
    action = lock_action(action_id)
    if action.approved_at is not None and actor.identity in rights.approver_identities(action):
        return action  # the same approver retrying: nothing more to do
    _raise_if(check_approve(actor, action))
    now = timezone.now()
    action.approved_by = actor.user_or_none
    action.approved_by_token = actor.token_or_none
    action.approved_by_label = actor.label
    action.approved_at = action.scheduled_at = now
    _set_status(actor, action, ActionStatus.SCHEDULED, "action.approved",
                extra=["approved_by", "approved_by_token", "approved_by_label", "approved_at", "scheduled_at"])
    case = case_refresh(actor=actor, case=action.case)
    case_reviewed(actor=actor, case=case)
    enqueue_apply(action.pk)
    return action


@audit_refusals("action.cancel", EnforcementAction, "action_id")
@transaction.atomic
def action_cancel(*, actor: Actor, action_id: int, reason: str = "") -> EnforcementAction:
    action = lock_action(action_id)
    if action.status == ActionStatus.CANCELLED and rights.may_cancel(actor, action):
        return action
    _raise_if(check_cancel(actor, action))
    action.ended_at = timezone.now()
    _set_status(actor, action, ActionStatus.CANCELLED, "action.cancelled", extra=["ended_at"], note=reason)
    case_refresh(actor=actor, case=action.case)
    return action


@audit_refusals("action.confirm", EnforcementAction, "action_id")
@transaction.atomic
def action_confirm(*, actor: Actor, action_id: int, note: str = "") -> EnforcementAction:
    """A lead confirms an act-first suspension; reverting it is ``action_revert``."""
    actor.require(APPROVE_ACTION, "Only a lead may review act-first actions.")
    action = lock_action(action_id)
    if action.act_first and action.reviewed_at is not None:
        return action
    _raise_if(check_confirm(actor, action))
    action.reviewed_at = timezone.now()
    action.approved_by = actor.user_or_none
    action.approved_by_token = actor.token_or_none
    action.approved_by_label = actor.label
    action.save(update_fields=["reviewed_at", "approved_by", "approved_by_token", "approved_by_label", "updated_at"])
    audit_record(actor=actor, verb="action.confirmed", target=action, case=action.case, account=action.account,
                 after={"reviewed_at": action.reviewed_at.isoformat()}, note=note)
    lead_review_done(actor=actor, case=action.case)
    return action


# --------------------------------------------------------------------------- applying and lifting


def action_apply(*, action_id: int, actor: Actor = SYSTEM) -> EnforcementAction:
    """Apply a scheduled action to its keys. Idempotent: anything but a scheduled action is left alone."""
    with transaction.atomic():
        action = lock_action(action_id)
        if action.status != ActionStatus.SCHEDULED:
            return action
        action.applied_at = timezone.now()
        action.attempts += 1
        action.last_error = ""
        _set_status(actor, action, ActionStatus.APPLIED, "action.applied",
                    extra=["applied_at", "attempts", "last_error"])
        outcomes_actioned(action)  # the case's reports before it: actioned, counted for their sources
        transaction.on_commit(prom.APPLIED[action.kind].inc)  # /metrics: millimetric_actions_applied_total
        changed = account_keys_recompute(account_id=action.account_id)
        case_refresh(actor=actor, case=action.case)
        notifications.notify_customer(
            template=f"customer_{action.kind}", event_key=f"action:{action.pk}:applied", action=action,
            context=notifications.action_context(action),
        )
        log.info("applied %s to account %s: %d key(s) changed", action, action.account_id, changed)
        return action


@transaction.atomic
def action_record_failure(*, action_id: int, error: str, final: bool) -> EnforcementAction:
    """A try at applying failed. After the last try the action ends ``failed`` and staff are told."""
    action = lock_action(action_id)
    if action.status != ActionStatus.SCHEDULED:
        return action
    action.attempts += 1
    action.last_error = error[:2000]
    if not final:
        action.save(update_fields=["attempts", "last_error", "updated_at"])
        return action
    action.ended_at = timezone.now()
    _set_status(SYSTEM, action, ActionStatus.FAILED, "action.failed", extra=["attempts", "last_error", "ended_at"],
                note=error[:500])
    transaction.on_commit(prom.FAILED[action.kind].inc)  # /metrics: millimetric_actions_failed_total
    notifications.notify_staff(
        template="staff_action_failed", event_key=f"action:{action.pk}:failed:{action.attempts}",
        case=action.case, action=action, context=notifications.action_context(action),
    )
    return action


@audit_refusals("action.retry", EnforcementAction, "action_id")
@transaction.atomic
def action_retry(*, actor: Actor, action_id: int) -> EnforcementAction:
    """Put a failed action back on the schedule."""
    action = lock_action(action_id)
    _raise_if(check_retry(actor, action))
    action.scheduled_at = timezone.now()
    action.ended_at = None
    _set_status(actor, action, ActionStatus.SCHEDULED, "action.retried", extra=["scheduled_at", "ended_at"])
    enqueue_apply(action.pk)
    return action


def action_lift_locked(actor: Actor, action: EnforcementAction, new_status: str, verb: str, note: str, *,
                       overturned: bool = False, notify: bool = True) -> None:
    """End an applied action (reverted or expired) that the caller locked with ``lock_action``.

    ``notify=False`` when the caller tells the customer itself (an overturned appeal: one email, not two)."""
    action.ended_at = timezone.now()
    newly_overturned = overturned and not action.overturned
    action.overturned = overturned or action.overturned
    _set_status(actor, action, new_status, verb, extra=["ended_at", "overturned"], note=note)
    if newly_overturned:
        outcomes_overturned(action)
    account_keys_recompute(account_id=action.account_id)
    case = action.case
    if action.act_first and case.needs_lead_review:
        lead_review_done(actor=actor, case=case)
    case_refresh(actor=actor, case=case)
    if notify and action.kind != ActionKind.WARNING:
        notifications.notify_customer(
            template="customer_lifted", event_key=f"action:{action.pk}:{new_status}", action=action,
            context={**notifications.action_context(action), "how": new_status},
        )


@audit_refusals("action.revert", EnforcementAction, "action_id")
@transaction.atomic
def action_revert(*, actor: Actor, action_id: int, reason: str, overturned: bool = False) -> EnforcementAction:
    """Lift an applied action; the keys keep whatever other actions still impose."""
    action = lock_action(action_id)
    _raise_if(check_revert(actor, action))
    action_lift_locked(actor, action, ActionStatus.REVERTED, "action.reverted", reason, overturned=overturned)
    return action


@transaction.atomic
def action_expire(*, action_id: int, now: datetime | None = None) -> EnforcementAction:
    action = lock_action(action_id)
    now = now or timezone.now()
    if action.status != ActionStatus.APPLIED or action.expires_at is None or action.expires_at > now:
        return action
    action_lift_locked(SYSTEM, action, ActionStatus.EXPIRED, "action.expired", "expired")
    return action


# --------------------------------------------------------------------------- what the customer will read


def notice_preview(*, case: Case, kind: str | None = None, key_prefixes: list[str] | None = None,
                   action: EnforcementAction | None = None, actor: Actor | None = None, **options) -> dict:
    """The customer's notice as it would go out: for an action awaiting approval (``action``), or for a
    proposal not made yet by ``actor`` (``kind`` on ``case``, with the proposal's options). Changes nothing.

    Returns ``{"template", "subject", "text", "html"}``."""
    if action is None:
        now = timezone.now()
        recommendation = recommendation_for(case, now=now)
        action = EnforcementAction(
            case=case, account=case.account, kind=kind, status=ActionStatus.SCHEDULED,
            reason=options.get("reason", ""),
            rate_limit_per_minute=(options.get("rate_limit_per_minute") or DEFAULT_THROTTLE_RATE)
            if kind == ActionKind.THROTTLE else None,
            ip_rate_limit_per_minute=(options.get("ip_rate_limit_per_minute") or DEFAULT_THROTTLE_IP_RATE)
            if kind == ActionKind.THROTTLE else None,
            expires_at=options.get("expires_at"),
            remediation_deadline=(options.get("remediation_deadline")
                                  or now + timedelta(days=settings.ENFORCEMENT["REMEDIATION_DAYS"]))
            if kind == ActionKind.WARNING else None,
            requested_by=actor.user_or_none if actor else None,
            requested_by_token=actor.token_or_none if actor else None,
            requested_by_label=actor.label if actor else "(preview)",
            decided_under=decision_basis(case, ladder_reason=recommendation.reason),
        )
        keys = sorted(key_prefixes or [])
    else:
        keys = None
    template = f"customer_{action.kind}"
    subject, text, html = notifications.render(template, notifications.action_context(action, keys=keys))
    return {"template": template, "subject": subject, "text": text, "html": html}
