"""The console's pages and buttons. Every button POSTs here; each handler parses, checks the role,
calls one service and reports the outcome as an admin message. Nothing here writes a model."""

import json
from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from enforcement import services
from enforcement.actors import PROPOSE_ACTION, WORK_CASE
from enforcement.admin_filters import assignable_staff, sla_state
from enforcement.admin_forms import (
    AppealDecideForm,
    AppealSubmitForm,
    AssignForm,
    CommentForm,
    ProposeForm,
    ReasonForm,
    ResolveForm,
)
from enforcement.admin_permissions import (
    action_verbs,
    actor_for,
    can_decide_appeal,
    role_allows,
)
from enforcement.errors import ServiceError
from enforcement.models import ActionKind, ActionStatus, Appeal, Case, EnforcementAction, Notification, Violation
from enforcement.rights import is_own_termination, requires_approval
from enforcement.selectors import account_standing, action_covering, case_detail_queryset, case_timeline

# --------------------------------------------------------------------------- plumbing


def admin_context(model_admin, request, **extra) -> dict:
    return {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta, **extra}


def case_url(case_id: int) -> str:
    return reverse("admin:enforcement_case_change", args=[case_id])


def next_url(request, default: str) -> str:
    """Where to go after a button: the page it was pressed on, if that is one of ours."""
    candidate = request.POST.get("next") or request.GET.get("next")
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def error_text(exc: ServiceError) -> str:
    details = " ".join(f"{field}: {' '.join(problems)}" for field, problems in exc.fields.items())
    return f"{exc.message} {details}".strip()


def form_error_text(form) -> str:
    return " ".join(
        f"{form.fields[name].label or name if name in form.fields else name}: {' '.join(errors)}"
        for name, errors in form.errors.items()
    )


def call_service(request, call: Callable, success: Callable[[object], str] | str):
    """Run one service call; its refusal becomes an error message, never a traceback."""
    try:
        result = call()
    except ServiceError as exc:
        messages.error(request, error_text(exc))
        return None
    messages.success(request, success(result) if callable(success) else success)
    return result


def post_only(view):
    """Buttons change state, so they answer POST alone (and the admin's CSRF check applies)."""

    def wrapper(model_admin, request, *args, **kwargs):
        if request.method != "POST":
            response = render(request, "admin/button_is_post.html", status=405)
            response["Allow"] = "POST"
            return response
        return view(model_admin, request, *args, **kwargs)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def require(request, allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied("Your role does not allow this.")


# --------------------------------------------------------------------------- the case page

TIMELINE_KINDS = [
    ("violation", "Violations"),
    ("action", "Actions"),
    ("notification", "Emails"),
    ("comment", "Comments"),
    ("appeal", "Appeals"),
    ("audit", "Audit"),
]


def _audit_changes(event) -> list[dict]:
    """What an audit event changed: the fields whose value differs (all of them for a creation)."""
    before, after = event.before or {}, event.after or {}
    return [
        {"name": name, "before": before.get(name), "after": after.get(name), "created": name not in before}
        for name in dict.fromkeys([*before, *after])
        if name not in before or before.get(name) != after.get(name)
    ]


def case_page_context(request, case: Case) -> dict:
    """Everything on the case page, from a case loaded with ``case_detail_queryset``: a fixed number of
    queries whatever the number of violations, actions, emails, comments or audit events."""
    actor = actor_for(request)
    now = timezone.now()
    is_open = case.status != Case.Status.CLOSED
    may_work = actor.can(WORK_CASE) and is_open
    rows = []
    for entry in case_timeline(case):
        row = {"entry": entry, "kind": entry.kind, "obj": entry.obj}
        if entry.kind == "violation":
            row["evidence"] = json.dumps(entry.obj.evidence, indent=2, sort_keys=True) if entry.obj.evidence else ""
            row["can_dismiss"] = may_work and entry.obj.status == Violation.Status.OPEN
        elif entry.kind == "notification":
            row["can_resend"] = actor.can(WORK_CASE) and entry.obj.status == Notification.Status.FAILED
        elif entry.kind == "appeal":
            row["can_decide"] = can_decide_appeal(actor) and entry.obj.status == Appeal.Status.PENDING
        elif entry.kind == "audit":
            row["changes"] = _audit_changes(entry.obj)
        rows.append(row)

    actions = sorted(case.actions.all(), key=lambda a: a.created_at, reverse=True)
    action_rows = [
        {
            "action": action,
            "verbs": action_verbs(actor, action, case=case, now=now),
            "keys": [key.prefix for key in action.keys.all()],
            "own_termination": action.status == ActionStatus.AWAITING_APPROVAL and is_own_termination(actor, action),
            "appeal": getattr(action, "appeal", None),
        }
        for action in actions
    ]

    recommendation = services.recommendation_for(case, now=now) if is_open else None
    already = None
    if recommendation and recommendation.kind:
        already = action_covering(actions, recommendation.kind)
    standing = account_standing(case.account, now=now)
    sla_text, sla_tone = sla_state(case.review_due_at, now=now, closed=not is_open)
    kinds = [
        {"value": value, "label": label, "needs_approval": requires_approval(value, actor)}
        for value, label in ActionKind.choices
    ]
    return {
        "case": case,
        "account": case.account,
        "timeline": rows,
        "timeline_kinds": TIMELINE_KINDS,
        "action_rows": action_rows,
        "recommendation": recommendation,
        "recommendation_needs_approval": bool(recommendation and recommendation.kind
                                              and requires_approval(recommendation.kind, actor)),
        "already": already,
        "standing": standing,
        "sla_text": sla_text,
        "sla_tone": sla_tone,
        "kinds": kinds,
        "is_open": is_open,
        "may_work": may_work,
        "may_propose": actor.can(PROPOSE_ACTION) and is_open,
        "staff": list(assignable_staff()) if may_work else [],
    }


def case_page(model_admin, request, object_id: str):
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    case = case_detail_queryset().filter(pk=object_id).first() if str(object_id).isdigit() else None
    if case is None:
        return model_admin._get_obj_does_not_exist_redirect(request, model_admin.model._meta, str(object_id))
    context = admin_context(
        model_admin, request, title=f"Case #{case.pk}", original=case,
        **case_page_context(request, case),
    )
    return TemplateResponse(request, "admin/enforcement/case/case_page.html", context)


# --------------------------------------------------------------------------- case buttons


@post_only
def case_propose(model_admin, request, case_id: int):
    actor = actor_for(request)
    require(request, actor.can(PROPOSE_ACTION))
    prefixes = request.POST.getlist("keys")
    form = ProposeForm(request.POST, key_prefixes=prefixes)
    if not form.is_valid():
        messages.error(request, form_error_text(form))
        return HttpResponseRedirect(next_url(request, case_url(case_id)))
    data = form.cleaned_data

    def done(action: EnforcementAction) -> str:
        if action.status == ActionStatus.AWAITING_APPROVAL:
            return f"{action.get_kind_display()} #{action.pk} proposed; it awaits a lead's approval."
        return f"{action.get_kind_display()} #{action.pk} proposed; it is being applied to the keys."

    call_service(
        request,
        lambda: services.action_propose(
            actor=actor, case_id=case_id, kind=data["kind"] or None, reason=data["reason"],
            key_prefixes=data["keys"] or None, rate_limit_per_minute=data["rate_limit_per_minute"],
            ip_rate_limit_per_minute=data["ip_rate_limit_per_minute"], expires_at=data["expires_at"],
            remediation_deadline=data["remediation_deadline"],
        ),
        done,
    )
    return HttpResponseRedirect(next_url(request, case_url(case_id)))


@post_only
def case_assign(model_admin, request, case_id: int):
    actor = actor_for(request)
    require(request, actor.can(WORK_CASE))
    form = AssignForm(request.POST)
    form.is_valid()
    raw = form.cleaned_data.get("assignee", "")
    if raw == "me":
        assignee_id = request.user.pk
    elif raw.isdigit():
        assignee_id = int(raw)
    elif raw == "":
        assignee_id = None
    else:
        messages.error(request, "Choose someone to assign the case to.")
        return HttpResponseRedirect(next_url(request, case_url(case_id)))
    call_service(
        request,
        lambda: services.case_assign(actor=actor, case_id=case_id, assignee_id=assignee_id),
        lambda case: f"Case #{case.pk} assigned to {case.assignee.get_username()}." if case.assignee_id
        else f"Case #{case.pk} unassigned.",
    )
    return HttpResponseRedirect(next_url(request, case_url(case_id)))


@post_only
def case_comment(model_admin, request, case_id: int):
    actor = actor_for(request)
    require(request, actor.can(WORK_CASE))
    form = CommentForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A comment needs some text.")
    else:
        body = form.cleaned_data["body"]
        call_service(request, lambda: services.case_comment(actor=actor, case_id=case_id, body=body), "Comment added.")
    return HttpResponseRedirect(next_url(request, case_url(case_id)))


@post_only
def case_resolve(model_admin, request, case_id: int):
    actor = actor_for(request)
    require(request, actor.can(WORK_CASE))
    form = ResolveForm(request.POST)
    form.is_valid()
    call_service(
        request,
        lambda: services.case_resolve(actor=actor, case_id=case_id, resolution=form.cleaned_data.get("resolution", "")),
        lambda case: f"Case #{case.pk} resolved and closed.",
    )
    return HttpResponseRedirect(next_url(request, case_url(case_id)))


# --------------------------------------------------------------------------- action buttons

ACTION_SUCCESS = {
    "approve": "{kind} #{pk} approved: {status}.",
    "confirm": "Act-first {kind} #{pk} confirmed.",
    "cancel": "{kind} #{pk} cancelled.",
    "revert": "{kind} #{pk} reverted; the keys keep only what other actions impose.",
    "retry": "{kind} #{pk} rescheduled: {status}.",
}


@post_only
def action_transition(model_admin, request, action_id: int, verb: str):
    action = EnforcementAction.objects.filter(pk=action_id).first()
    if action is None:
        messages.error(request, f"No action {action_id}.")
        return HttpResponseRedirect(next_url(request, reverse("admin:enforcement_case_changelist")))
    actor = actor_for(request)
    # The same role check the service makes: someone without it cannot reach the button's URL.
    require(request, role_allows(actor, action, verb))
    back = next_url(request, case_url(action.case_id))
    if verb == "appeal":
        form = AppealSubmitForm(request.POST)
        if not form.is_valid():
            messages.error(request, "An appeal needs the customer's message.")
            return HttpResponseRedirect(back)
        call_service(
            request,
            lambda: services.appeal_submit(actor=actor, action_id=action_id, message=form.cleaned_data["message"]),
            lambda appeal: f"Appeal #{appeal.pk} recorded; it waits for a lead's decision.",
        )
        return HttpResponseRedirect(back)
    form = ReasonForm(request.POST)
    form.is_valid()
    reason = form.cleaned_data.get("reason", "")
    calls = {
        "approve": lambda: services.action_approve(actor=actor, action_id=action_id),
        "confirm": lambda: services.action_confirm(actor=actor, action_id=action_id, note=reason),
        "cancel": lambda: services.action_cancel(actor=actor, action_id=action_id, reason=reason),
        "revert": lambda: services.action_revert(actor=actor, action_id=action_id, reason=reason),
        "retry": lambda: services.action_retry(actor=actor, action_id=action_id),
    }

    def done(result: EnforcementAction) -> str:
        result.refresh_from_db(fields=["status"])  # the apply task may already have run
        return ACTION_SUCCESS[verb].format(
            kind=result.get_kind_display(), pk=result.pk, status=result.get_status_display().lower()
        )

    call_service(request, calls[verb], done)
    return HttpResponseRedirect(back)


# --------------------------------------------------------------------------- violations, appeals, emails


@post_only
def violation_dismiss(model_admin, request, violation_id: int):
    actor = actor_for(request)
    require(request, actor.can(WORK_CASE))
    violation = Violation.objects.filter(pk=violation_id).only("pk", "case_id").first()
    back = next_url(request, case_url(violation.case_id) if violation else reverse("admin:index"))
    form = ReasonForm(request.POST)
    form.is_valid()
    call_service(
        request,
        lambda: services.violation_dismiss(actor=actor, violation_id=violation_id,
                                           reason=form.cleaned_data.get("reason", "")),
        lambda v: f"Violation #{v.pk} dismissed.",
    )
    return HttpResponseRedirect(back)


@post_only
def appeal_decide(model_admin, request, appeal_id: int):
    actor = actor_for(request)
    require(request, can_decide_appeal(actor))
    appeal = Appeal.objects.filter(pk=appeal_id).only("pk", "case_id").first()
    back = next_url(request, case_url(appeal.case_id) if appeal else reverse("admin:enforcement_appeal_queue"))
    form = AppealDecideForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_error_text(form))
        return HttpResponseRedirect(back)
    call_service(
        request,
        lambda: services.appeal_decide(actor=actor, appeal_id=appeal_id, outcome=form.cleaned_data["outcome"],
                                       note=form.cleaned_data["note"]),
        lambda a: f"Appeal #{a.pk} {a.status}."
        + (" The action was reverted and the customer told." if a.status == Appeal.Status.OVERTURNED else ""),
    )
    return HttpResponseRedirect(back)


@post_only
def notification_resend(model_admin, request, notification_id: int):
    from enforcement import notifications

    actor = actor_for(request)
    require(request, actor.can(WORK_CASE))
    notification = Notification.objects.filter(pk=notification_id).first()
    if notification is None:
        messages.error(request, f"No email {notification_id}.")
        return HttpResponseRedirect(reverse("admin:enforcement_notification_changelist"))
    back = next_url(request, reverse("admin:enforcement_notification_change", args=[notification_id]))
    if notification.status != Notification.Status.FAILED:
        messages.warning(request, f"Email #{notification.pk} is {notification.status}; only failed emails are resent.")
        return HttpResponseRedirect(back)
    call_service(
        request,
        lambda: notifications.notification_resend(actor=actor, notification_id=notification_id),
        lambda n: f"Email #{n.pk} to {n.recipient} is back in the outbox.",
    )
    return HttpResponseRedirect(back)
