"""Appeals: their list, the appeals queue, and a lead's decision (uphold or overturn)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from enforcement import services
from enforcement.admin.base import (
    WorkflowAdmin,
    admin_context,
    call_service,
    form_error_text,
    next_url,
    post_only,
    queue_page,
    require,
)
from enforcement.admin.buttons import actor_for, can_decide_appeal
from enforcement.admin.display import case_url, sla_html
from enforcement.admin.forms import AppealDecideForm
from enforcement.admin.second_factor import step_up_response
from enforcement.models import Appeal
from enforcement.selectors import appeals_queue


@admin.register(Appeal)
class AppealAdmin(WorkflowAdmin):
    list_display = ("appeal_label", "status", "case_col", "account_col", "submitted_at", "decided_by_label",
                    "decided_at")
    list_filter = ("status",)
    list_select_related = ("action", "case__account")
    ordering = ("-pk",)

    @admin.display(description="Appeal", ordering="pk")
    def appeal_label(self, appeal):
        return f"#{appeal.pk} of {appeal.action.get_kind_display().lower()} #{appeal.action_id}"


    def account_of(self, appeal):
        return appeal.case.account

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return self.redirect_to_case(request, object_id, "appeal")

    def get_urls(self):
        return [
            path("queue/", self.wrap(appeals_page), name="enforcement_appeal_queue"),
            path("<int:appeal_id>/decide/", self.wrap(appeal_decide), name="enforcement_appeal_decide"),
            *super().get_urls(),
        ]


def appeals_page(model_admin, request):
    """Appeals waiting for a lead's decision, by deadline then severity; each row says whether this lead may
    decide it (a lead who took part in the appealed decision may not)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    actor = actor_for(request)
    now = timezone.now()
    page = queue_page(request, appeals_queue().select_related(
        "action__case", "action__requested_by_token", "action__approved_by_token"
    ))
    rows = [
        {"appeal": appeal, "refusal": services.check_appeal_decide(actor, appeal, appeal.action),
         "deadline": sla_html(appeal.due_at, now=now)}
        for appeal in page.object_list
    ]
    context = admin_context(model_admin, request, title="Appeals queue", page=page, rows=rows,
                            may_decide=can_decide_appeal(actor), now=now)
    return TemplateResponse(request, "admin/enforcement/appeals_queue.html", context)


@post_only
def appeal_decide(model_admin, request, appeal_id: int):
    actor = actor_for(request)
    require(request, can_decide_appeal(actor))
    appeal = Appeal.objects.filter(pk=appeal_id).only("pk", "case_id").first()
    back = next_url(request, case_url(appeal.case_id) if appeal else reverse("admin:enforcement_appeal_queue"))
    if (step_up := step_up_response(request, back)) is not None:
        return step_up
    form = AppealDecideForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_error_text(form))
        return HttpResponseRedirect(back)
    call_service(
        request,
        lambda: services.appeal_decide(actor=actor, appeal_id=appeal_id, outcome=form.cleaned_data["outcome"],
                                       note=form.cleaned_data["note"]),
        lambda decided: f"Appeal #{decided.pk} {decided.status}."
        + (" The action was reverted and the customer told." if decided.status == Appeal.Status.OVERTURNED else ""),
    )
    return HttpResponseRedirect(back)
