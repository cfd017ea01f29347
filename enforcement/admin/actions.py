"""Enforcement actions: their list, the approvals queue, the customer's notice of an action awaiting approval,
and the buttons that move one action along (approve, confirm, cancel, revert, retry, appeal)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from enforcement import services
from enforcement.admin.base import (
    WorkflowAdmin,
    admin_context,
    call_service,
    case_number,
    next_url,
    post_only,
    queue_page,
    require,
)
from enforcement.admin.buttons import ACTION_VERBS, action_verbs, actor_for, approval_note, role_allows
from enforcement.admin.display import case_url, shown_notice, sla_html
from enforcement.admin.forms import AppealSubmitForm, ReasonForm
from enforcement.admin.second_factor import step_up_response
from enforcement.models import ActionKind, ActionStatus, EnforcementAction, Violation
from enforcement.selectors import approvals_queue


@admin.register(EnforcementAction)
class EnforcementActionAdmin(WorkflowAdmin):
    list_display = ("action_label", "status_col", "case_col", "account_col", "requested_by_label",
                    "approved_by_label", "created_at", "applied_at", "expires_at")
    list_filter = ("status", "kind", "act_first", "overturned")
    list_select_related = ("case", "account")
    search_fields = ("=account__public_id", "=case__id")
    search_help_text = "Account id or case number."
    ordering = ("-pk",)  # newest first; the primary key index serves it

    @admin.display(description="Action", ordering="pk")
    def action_label(self, action):
        return f"{action.get_kind_display()} #{action.pk}" + (" (act first)" if action.act_first else "")

    def search_condition(self, term):
        condition = Q(account__public_id=term)
        if (number := case_number(term)) is not None:
            condition |= Q(case_id=number) | Q(pk=number)
        return condition

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return self.redirect_to_case(request, object_id, "action")

    def get_urls(self):
        transition = self.wrap(action_transition)
        return [
            path("approvals/", self.wrap(approvals_page), name="enforcement_enforcementaction_approvals"),
            path("<int:action_id>/notice/", self.wrap(action_notice_page), name="enforcement_enforcementaction_notice"),
            *(
                path(f"<int:action_id>/{verb}/", transition, {"verb": verb},
                     name="enforcement_enforcementaction_transition")
                for verb in ACTION_VERBS
            ),
            *super().get_urls(),
        ]


BEHIND_SHOWN = 5  # violations listed per action on the approvals queue


def violations_behind(actions: list[EnforcementAction]) -> dict[int, list[Violation]]:
    """The violations each action was decided on (``decided_under``; the case's open ones for an action
    recorded before that), newest first, read for the whole page in one query."""
    wanted: dict[int, set[int]] = {}
    for action in actions:
        ids = (action.decided_under or {}).get("violations")
        wanted[action.pk] = set(ids) if isinstance(ids, list) else set()
    without_basis = [action.case_id for action in actions if not wanted[action.pk]]
    rows = Violation.objects.filter(
        Q(pk__in=set().union(*wanted.values())) | Q(case_id__in=without_basis, status=Violation.Status.OPEN)
    ).select_related("rule").defer("evidence").order_by("-reported_at")
    by_violation: dict[int, list[int]] = {}
    by_case: dict[int, list[int]] = {}
    for action in actions:
        for violation_id in wanted[action.pk]:
            by_violation.setdefault(violation_id, []).append(action.pk)
        if not wanted[action.pk]:
            by_case.setdefault(action.case_id, []).append(action.pk)
    by_action: dict[int, list[Violation]] = {action.pk: [] for action in actions}
    for violation in rows:
        for action_id in {*by_violation.get(violation.pk, ()), *by_case.get(violation.case_id, ())}:
            by_action[action_id].append(violation)
    return by_action


def approvals_page(model_admin, request):
    """Actions awaiting a lead's approval, oldest first."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    actor = actor_for(request)
    now = timezone.now()
    page = queue_page(request, approvals_queue().select_related("case__account", "appeal"))
    actions = list(page.object_list)
    behind = violations_behind(actions)
    rows = [
        {
            "action": action,
            "verbs": action_verbs(actor, action, case=action.case, now=now),
            "approval_note": approval_note(actor, action),
            "waiting": now - action.created_at,
            "deadline": sla_html(action.approval_due_at, now=now) if action.approval_due_at else None,
            "violations": behind[action.pk][:BEHIND_SHOWN],
            "more_violations": max(len(behind[action.pk]) - BEHIND_SHOWN, 0),
        }
        for action in actions
    ]
    context = admin_context(model_admin, request, title="Approvals queue", page=page, rows=rows,
                            is_lead=actor.can("approve_action"))
    return TemplateResponse(request, "admin/enforcement/approvals_queue.html", context)


def action_notice_page(model_admin, request, action_id: int):
    """The notice the customer will receive once an action awaiting approval is applied (the case page and the
    approvals queue load it into their "Preview the customer's notice" disclosures). Changes nothing."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    action = EnforcementAction.objects.select_related("case__account").filter(pk=action_id).first()
    if action is None:
        messages.error(request, f"No action {action_id}.")
        return HttpResponseRedirect(reverse("admin:enforcement_enforcementaction_approvals"))
    label = f"{action.get_kind_display()} #{action.pk}"
    if action.status == ActionStatus.AWAITING_APPROVAL:
        notice = shown_notice(lambda: services.notice_preview(case=action.case, action=action))
    else:
        notice = {"ok": False, "note": f"{label} is {action.get_status_display().lower()}: only an action awaiting "
                  "approval has a notice still to come. The emails sent are on the case's timeline."}
    context = admin_context(model_admin, request, title=f"The customer's notice: {label}", action=action,
                            notice=notice)
    return TemplateResponse(request, "admin/enforcement/enforcementaction/notice.html", context)


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
    if verb == "approve" and action.kind == ActionKind.TERMINATE and (step_up := step_up_response(request, back)):
        return step_up
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
