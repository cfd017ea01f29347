"""The email outbox (``Notification`` rows): its list, a preview of every template with sample data,
and resending failed emails."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from enforcement import notifications
from enforcement.actors import WORK_CASE
from enforcement.admin.base import (
    MAX_BULK,
    WorkflowAdmin,
    admin_context,
    call_service,
    case_number,
    next_url,
    post_only,
    require,
)
from enforcement.admin.buttons import actor_for
from enforcement.admin.display import shown_notice
from enforcement.admin.filters import TemplateFilter
from enforcement.models import Notification


@admin.register(Notification)
class NotificationAdmin(WorkflowAdmin):
    list_display = ("notification_label", "status_col", "recipient", "audience", "attempts", "case_col",
                    "created_at", "sent_at")
    list_filter = ("status", "audience", TemplateFilter)
    search_fields = ("=recipient",)
    search_help_text = "Recipient address, event key or case number."
    ordering = ("-pk",)  # newest first; the primary key index serves it
    actions = ["resend_failed"]
    change_list_template = "admin/enforcement/notification/change_list.html"
    change_form_template = "admin/enforcement/notification/change_form.html"
    readonly_fields = ("template", "audience", "recipient", "status", "subject", "event_key", "case_col",
                       "action", "attempts", "last_error", "message_id", "created_at", "claimed_at", "sent_at",
                       "context")
    fields = readonly_fields

    @admin.display(description="Email", ordering="pk")
    def notification_label(self, notification):
        return f"#{notification.pk} {notification.template}"

    def search_condition(self, term):
        condition = Q(recipient__iexact=term) | Q(event_key=term)
        if (number := case_number(term)) is not None:
            condition |= Q(case_id=number)
        return condition

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"may_resend": actor_for(request).can(WORK_CASE), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    @admin.action(description="Resend the selected failed emails", permissions=["work_case"])
    def resend_failed(self, request, queryset):
        actor = actor_for(request)
        ids = list(queryset.filter(status=Notification.Status.FAILED).values_list("pk", flat=True)[:MAX_BULK])
        for notification_id in ids:
            notifications.notification_resend(actor=actor, notification_id=notification_id)
        messages.success(request, f"{len(ids)} failed email(s) put back in the outbox.")

    def get_urls(self):
        return [
            path("preview/", self.wrap(email_preview_page), name="enforcement_notification_preview"),
            path("<int:notification_id>/resend/", self.wrap(notification_resend),
                 name="enforcement_notification_resend"),
            *super().get_urls(),
        ]


def render_preview(name: str) -> dict:
    """One template rendered with sample data; a missing or broken template is reported, not raised."""

    def render() -> dict:
        subject, text, html = notifications.render(name, notifications.sample_context(name))
        return {"subject": subject, "text": text, "html": html}

    return {"name": name, "audience": notifications.TEMPLATES[name], **shown_notice(render)}


def email_preview_page(model_admin, request):
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    previews = [render_preview(name) for name in notifications.TEMPLATES]
    context = admin_context(model_admin, request, title="Email templates", previews=previews,
                            missing=[p["name"] for p in previews if not p["ok"]])
    return TemplateResponse(request, "admin/enforcement/notification/preview.html", context)


@post_only
def notification_resend(model_admin, request, notification_id: int):
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
        lambda resent: f"Email #{resent.pk} to {resent.recipient} is back in the outbox.",
    )
    return HttpResponseRedirect(back)
