"""Violations: their list, the "report a violation" page (reporting by hand), and dismissing one."""

from django.contrib import admin, messages
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from accounts.tokens import PREFIX_LENGTH, kind_of
from enforcement import services
from enforcement.actors import WORK_CASE
from enforcement.admin.base import (
    WorkflowAdmin,
    admin_context,
    call_service,
    case_number,
    next_url,
    post_only,
    require,
    show_service_error,
)
from enforcement.admin.buttons import actor_for
from enforcement.admin.display import case_url, severity_badge
from enforcement.admin.forms import ReasonForm, ReportViolationForm
from enforcement.errors import ServiceError
from enforcement.models import Violation


@admin.register(Violation)
class ViolationAdmin(WorkflowAdmin):
    list_display = ("violation_label", "severity_col", "account_col", "key_col", "case_col", "source",
                    "status", "reported_at")
    list_filter = ("status", "severity", "rule", "source_trusted")
    list_select_related = ("rule", "account", "api_key")
    search_fields = ("=account__public_id",)
    search_help_text = "Account id, key prefix, case number or external id."
    ordering = ("-pk",)  # newest first; the primary key index serves it
    change_list_template = "admin/enforcement/violation/change_list.html"

    @admin.display(description="Violation", ordering="pk")
    def violation_label(self, violation):
        return f"#{violation.pk} {violation.rule.code}"

    @admin.display(description="Severity", ordering="severity")
    def severity_col(self, violation):
        return severity_badge(violation.severity)

    @admin.display(description="Key")
    def key_col(self, violation):
        return violation.api_key.prefix if violation.api_key_id else "-"

    def search_condition(self, term):
        condition = Q(account__public_id=term) | Q(external_id=term)
        if (number := case_number(term)) is not None:
            condition |= Q(case_id=number)
        if kind_of(term):
            condition |= Q(api_key__prefix__startswith=term[:PREFIX_LENGTH])
        return condition

    def changelist_view(self, request, extra_context=None):
        extra = {"may_report": actor_for(request).can(WORK_CASE), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return self.redirect_to_case(request, object_id, "violation")

    def get_urls(self):
        return [
            path("report/", self.wrap(report_violation_page), name="enforcement_violation_report"),
            path("<int:violation_id>/dismiss/", self.wrap(violation_dismiss), name="enforcement_violation_dismiss"),
            *super().get_urls(),
        ]


def report_violation_page(model_admin, request):
    actor = actor_for(request)
    require(request, actor.can(WORK_CASE))
    if request.method == "POST":
        form = ReportViolationForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                result = services.violation_report(
                    actor=actor, account=data["account"].strip(), rule=data["rule"], source="admin",
                    external_id=data["external_id"], summary=data["summary"], severity=data["severity"] or None,
                    api_key=data["api_key"].strip() or None, evidence=data["evidence"],
                )
            except ServiceError as exc:
                show_service_error(request, form, exc)
            else:
                violation = result.violation
                text = (
                    f"Violation #{violation.pk} recorded on case #{violation.case_id}. "
                    f"The ladder recommends: {result.recommendation.kind or 'no action'} "
                    f"({result.recommendation.reason})."
                    if result.created else f"This report was already recorded as violation #{violation.pk}."
                )
                if result.act_first_action is not None:
                    text += f" Act first: suspension #{result.act_first_action.pk} is under way; a lead must review it."
                messages.success(request, text)
                return HttpResponseRedirect(case_url(violation.case_id))
    else:
        form = ReportViolationForm(initial={"account": request.GET.get("account", "")})
    context = admin_context(model_admin, request, title="Report a violation", form=form)
    return TemplateResponse(request, "admin/enforcement/violation/report.html", context)


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
        lambda dismissed: f"Violation #{dismissed.pk} dismissed.",
    )
    return HttpResponseRedirect(back)
