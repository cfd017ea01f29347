"""The console's other pages: approvals and appeals queues, email previews, reporting a violation by
hand, service tokens and the audit log's CSV export."""

import csv
import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from enforcement import notifications, services
from enforcement.actors import WORK_CASE
from enforcement.admin_forms import ReportViolationForm, ServiceTokenCreateForm
from enforcement.admin_permissions import action_verbs, actor_for, can_decide_appeal, is_own_termination
from enforcement.admin_views import admin_context, call_service, case_url, error_text, post_only, require
from enforcement.errors import ServiceError
from enforcement.models import ServiceToken
from enforcement.selectors import appeals_queue, approvals_queue

QUEUE_PAGE_SIZE = 50


def show_service_error(request, form, exc: ServiceError) -> None:
    """A service's refusal as an admin message, with each field's problem on its form field."""
    messages.error(request, error_text(exc))
    for field, problems in exc.fields.items():
        if field in form.fields:
            form.add_error(field, problems)


def _page(request, queryset):
    paginator = Paginator(queryset, QUEUE_PAGE_SIZE)
    return paginator.get_page(request.GET.get("p"))


# --------------------------------------------------------------------------- queues


def approvals_page(model_admin, request):
    """Actions awaiting a lead's approval, oldest first."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    actor = actor_for(request)
    now = timezone.now()
    page = _page(request, approvals_queue().select_related("case__account"))
    rows = [
        {
            "action": action,
            "verbs": action_verbs(actor, action, case=action.case, now=now),
            "own_termination": is_own_termination(actor, action),
            "waiting": now - action.created_at,
        }
        for action in page.object_list
    ]
    context = admin_context(model_admin, request, title="Approvals queue", page=page, rows=rows,
                            is_lead=actor.can("approve_action"))
    return TemplateResponse(request, "admin/enforcement/approvals_queue.html", context)


def appeals_page(model_admin, request):
    """Appeals waiting for a lead's decision, oldest first."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    actor = actor_for(request)
    page = _page(request, appeals_queue().select_related("action__case"))
    context = admin_context(model_admin, request, title="Appeals queue", page=page,
                            may_decide=can_decide_appeal(actor), now=timezone.now())
    return TemplateResponse(request, "admin/enforcement/appeals_queue.html", context)


# --------------------------------------------------------------------------- email previews


def render_preview(name: str) -> dict:
    """One template rendered with sample data; a missing or broken template is reported, not raised."""
    preview = {"name": name, "audience": notifications.TEMPLATES[name], "ok": False}
    try:
        subject, text, html = notifications.render(name, notifications.sample_context(name))
    except TemplateDoesNotExist as exc:
        preview["problem"] = f"Missing template: {exc.args[0] if exc.args else exc}"
    except TemplateSyntaxError as exc:
        preview["problem"] = f"Template error: {exc}"
    except Exception as exc:  # a preview page must show what is wrong, whatever it is
        preview["problem"] = f"Could not render: {type(exc).__name__}: {exc}"
    else:
        preview.update(ok=True, subject=subject, text=text, html=html)
    return preview


def email_preview_page(model_admin, request):
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    previews = [render_preview(name) for name in notifications.TEMPLATES]
    context = admin_context(model_admin, request, title="Email templates", previews=previews,
                            missing=[p["name"] for p in previews if not p["ok"]])
    return TemplateResponse(request, "admin/enforcement/notification/preview.html", context)


# --------------------------------------------------------------------------- reporting by hand


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


# --------------------------------------------------------------------------- service tokens


def token_create_page(model_admin, request):
    """The token is shown once, in the answer to the POST; only its hash is kept."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    form = ServiceTokenCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            token, raw = services.service_token_create(
                actor=actor_for(request), name=data["name"].strip(), scopes=data["scopes"], trusted=data["trusted"],
                expires_at=data["expires_at"],
            )
        except ServiceError as exc:
            show_service_error(request, form, exc)
        else:
            context = admin_context(model_admin, request, title=f"Service token {token.name} created",
                                    token=token, raw=raw)
            # The admin marks every page never_cache (no-store included): the token is not kept anywhere.
            return TemplateResponse(request, "admin/enforcement/servicetoken/created.html", context)
    context = admin_context(model_admin, request, title="New service token", form=form)
    return TemplateResponse(request, "admin/enforcement/servicetoken/create.html", context)


@post_only
def token_revoke(model_admin, request, token_id: int):
    if not model_admin.may_manage_tokens(request):
        raise PermissionDenied
    token = ServiceToken.objects.filter(pk=token_id).first()
    if token is None:
        messages.error(request, f"No service token {token_id}.")
    else:
        call_service(request, lambda: services.service_token_revoke(actor=actor_for(request), token_id=token_id),
                     f"Service token {token.name} revoked; it no longer authenticates.")
    return HttpResponseRedirect(reverse("admin:enforcement_servicetoken_changelist"))


# --------------------------------------------------------------------------- audit CSV


class _Echo:
    def write(self, value):
        return value


AUDIT_COLUMNS = ["id", "created_at", "actor_type", "actor_label", "verb", "target_type", "target_id", "case",
                 "account", "before", "after", "note"]


def audit_csv_rows(queryset):
    writer = csv.writer(_Echo())
    yield writer.writerow(AUDIT_COLUMNS)
    for event in queryset.select_related("account").iterator(chunk_size=2000):
        yield writer.writerow([
            event.pk, event.created_at.isoformat(), event.actor_type, event.actor_label, event.verb,
            event.target_type, event.target_id, event.case_id or "",
            event.account.public_id if event.account_id else "",
            json.dumps(event.before, sort_keys=True) if event.before is not None else "",
            json.dumps(event.after, sort_keys=True) if event.after is not None else "",
            event.note,
        ])


def audit_export(model_admin, request):
    """The audit log as CSV, with the filters and search of the list it was exported from."""
    from django.contrib.admin.options import IncorrectLookupParameters

    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    try:
        changelist = model_admin.get_changelist_instance(request)
    except IncorrectLookupParameters:
        return HttpResponse("Unknown filter.", status=400, content_type="text/plain")
    response = StreamingHttpResponse(audit_csv_rows(changelist.queryset), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{timezone.now():%Y%m%d-%H%M%S}.csv"'
    return response

