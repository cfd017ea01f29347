"""The trust-and-safety console in the Django admin.

Workflow rows (cases, violations, actions, appeals, emails, audit events) are never added, changed
or deleted here, not even by a superuser: every button posts to a view in ``admin_views`` that
calls a service. Rules (lead-editable policy data) and service tokens (created and revoked through
``enforcement.tokens``) are the only things edited here.
"""

from collections import defaultdict

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, F, OuterRef, Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from accounts.models import APIKey
from accounts.tokens import PREFIX_LENGTH, kind_of
from enforcement import admin_pages, admin_views, services
from enforcement.actors import PROPOSE_ACTION, WORK_CASE
from enforcement.admin_filters import (
    AppealedFilter,
    AssigneeFilter,
    AwaitingFilter,
    CaseStatusFilter,
    OverdueFilter,
    ReadOnlyModelAdmin,
    RuleFilter,
    SeverityFilter,
    assignable_staff,
    severity_badge,
    sla_html,
    status_badge,
)
from enforcement.admin_forms import RuleAdminForm
from enforcement.admin_permissions import ACTION_VERBS, actor_for
from enforcement.errors import Conflict, ServiceError
from enforcement.models import (
    Appeal,
    AuditEvent,
    Case,
    EnforcementAction,
    Notification,
    Rule,
    ServiceToken,
    Violation,
)
from enforcement.notifications import TEMPLATES as EMAIL_TEMPLATES
from enforcement.selectors import action_covering

MAX_BULK = 500


def case_link(case_id: int | None):
    if not case_id:
        return "-"
    return format_html('<a href="{}">#{}</a>', admin_views.case_url(case_id), case_id)


def account_link(account):
    if account is None:
        return "-"
    return format_html(
        '<a href="{}" title="{}">{}</a>',
        reverse("admin:accounts_account_change", args=[account.pk]), account.name, account.public_id,
    )


class WorkflowAdmin(ReadOnlyModelAdmin):
    """Read-only for everyone: these rows change only through the services."""

    def has_work_case_permission(self, request):
        return actor_for(request).can(WORK_CASE)

    def has_propose_action_permission(self, request):
        return actor_for(request).can(PROPOSE_ACTION)

    def wrap(self, view):
        def wrapper(request, *args, **kwargs):
            return view(self, request, *args, **kwargs)

        return self.admin_site.admin_view(wrapper)

    def redirect_to_case(self, request, object_id, anchor: str):
        obj = None
        if str(object_id).isdigit():
            obj = self.model.objects.filter(pk=object_id).only("pk", "case_id").first()
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, str(object_id))
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        return HttpResponseRedirect(f"{admin_views.case_url(obj.case_id)}#{anchor}-{obj.pk}")


# --------------------------------------------------------------------------- the case queue


class CaseChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        attach_rule_counts(self.result_list)


def attach_rule_counts(cases: list[Case]) -> None:
    """One query for the rules of every case on the page (not one per row)."""
    counts: dict[int, list[tuple[str, int]]] = defaultdict(list)
    rows = (
        Violation.objects.filter(case_id__in=[case.pk for case in cases])
        .values_list("case_id", "rule__code")
        .annotate(n=Count("id"))
        .order_by("case_id", "rule__code")
    )
    for case_id, code, n in rows:
        counts[case_id].append((code, n))
    for case in cases:
        case.rule_counts = counts.get(case.pk, [])


@admin.register(Case)
class CaseAdmin(WorkflowAdmin):
    list_display = ("case_number", "severity_col", "status_col", "account_col", "rules_col", "assignee_col",
                    "sla_col", "opened_col")
    list_display_links = ("case_number",)
    list_filter = (CaseStatusFilter, SeverityFilter, RuleFilter, AssigneeFilter, OverdueFilter, AwaitingFilter,
                   AppealedFilter)
    list_select_related = ("account", "assignee")
    ordering = (F("review_due_at").asc(nulls_last=True), "-severity_rank")  # reviewed cases last
    search_fields = ("account__public_id",)
    search_help_text = "Account id (acct_...), account email, key prefix (sk_live_...) or case number."
    actions = ["assign_to_me", "assign_to", "propose_recommendation"]
    change_list_template = "admin/enforcement/case/change_list.html"

    def get_changelist(self, request, **kwargs):
        return CaseChangeList

    def changelist_view(self, request, extra_context=None):
        actor = actor_for(request)
        extra = {"title": "Case queue", "may_work": actor.can(WORK_CASE), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(account__public_id=term) | Q(account__public_id__startswith=term)
        if term.lstrip("#").isdigit():
            condition |= Q(pk=int(term.lstrip("#")))
        if "@" in term:
            condition |= Q(account__email__iexact=term)
        elif len(term) >= 3:
            condition |= Q(account__email__istartswith=term)
        if kind_of(term):
            keys = APIKey.objects.filter(account_id=OuterRef("account_id"), prefix__startswith=term[:PREFIX_LENGTH])
            condition |= Q(Exists(keys))
        return queryset.filter(condition), False

    # -- columns (the admin instance is shared between requests: nothing per request is kept on it)
    @admin.display(description="Case", ordering="pk")
    def case_number(self, case):
        return f"#{case.pk}"

    @admin.display(description="Severity", ordering="severity_rank")
    def severity_col(self, case):
        return severity_badge(case.severity)

    @admin.display(description="Status", ordering="status")
    def status_col(self, case):
        flags = mark_safe(' <span class="flag flag-review">act-first review</span>') if case.needs_lead_review else ""
        return format_html("{}{}", status_badge(case.status, case.get_status_display()), flags)

    @admin.display(description="Account", ordering="account__public_id")
    def account_col(self, case):
        return format_html("{}<div class=\"quiet\">{}</div>", account_link(case.account), case.account.name)

    @admin.display(description="Rules")
    def rules_col(self, case):
        counts = getattr(case, "rule_counts", [])
        return format_html_join(
            " ", '<span class="rule">{}{}</span>',
            ((code, f" \u00d7{n}" if n > 1 else "") for code, n in counts),
        ) or "-"

    @admin.display(description="Assignee", ordering="assignee__username")
    def assignee_col(self, case):
        if case.assignee_id:
            return case.assignee.get_username()
        return mark_safe('<span class="quiet">unassigned</span>')

    @admin.display(description="Review SLA", ordering="review_due_at")
    def sla_col(self, case):
        return sla_html(case.review_due_at, now=timezone.now(), closed=case.status == Case.Status.CLOSED)

    @admin.display(description="Opened", ordering="opened_at")
    def opened_col(self, case):
        return f"{timesince(case.opened_at).split(',')[0]} ago"

    # -- bulk actions
    def _selected_ids(self, request, queryset) -> list[int] | None:
        ids = list(queryset.order_by().values_list("pk", flat=True)[: MAX_BULK + 1])
        if len(ids) > MAX_BULK:
            messages.error(request, f"Select at most {MAX_BULK} cases at a time.")
            return None
        return ids

    def _assign(self, request, ids: list[int], assignee_id: int | None) -> None:
        actor = actor_for(request)
        done, errors = 0, []
        for case_id in ids:
            try:
                services.case_assign(actor=actor, case_id=case_id, assignee_id=assignee_id)
                done += 1
            except ServiceError as exc:
                errors.append(f"#{case_id}: {admin_views.error_text(exc)}")
        if done:
            messages.success(request, f"{done} case(s) assigned.")
        for error in errors[:10]:
            messages.error(request, error)

    @admin.action(description="Assign to me", permissions=["work_case"])
    def assign_to_me(self, request, queryset):
        ids = self._selected_ids(request, queryset)
        if ids is not None:
            self._assign(request, ids, request.user.pk)

    @admin.action(description="Assign to...", permissions=["work_case"])
    def assign_to(self, request, queryset):
        ids = self._selected_ids(request, queryset)
        if ids is None:
            return None
        if "apply" in request.POST:
            raw = request.POST.get("assignee", "")
            if raw != "" and not raw.isdigit():
                messages.error(request, "Choose someone to assign the cases to.")
                return None
            self._assign(request, ids, int(raw) if raw else None)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Assign cases",
            "cases": Case.objects.filter(pk__in=ids).select_related("account").order_by("review_due_at")[:50],
            "count": len(ids),
            "staff": assignable_staff(),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/enforcement/case/assign_intermediate.html", context)

    @admin.action(description="Propose the ladder's recommendation", permissions=["propose_action"])
    def propose_recommendation(self, request, queryset):
        ids = self._selected_ids(request, queryset)
        if ids is None:
            return
        actor = actor_for(request)
        proposed, skipped, errors = [], [], []
        for case in Case.objects.filter(pk__in=ids).select_related("account").order_by("review_due_at"):
            recommendation = services.recommendation_for(case)
            covering = recommendation.kind and action_covering(case.actions.all(), recommendation.kind)
            if covering:
                skipped.append(f"#{case.pk} (a {covering.kind} is already {covering.get_status_display().lower()})")
                continue
            try:
                action = services.action_propose(actor=actor, case_id=case.pk, kind=None, reason="")
            except Conflict as exc:  # the same kind is already awaiting approval or scheduled
                skipped.append(f"#{case.pk} ({exc.message})")
            except ServiceError as exc:
                errors.append(f"#{case.pk}: {admin_views.error_text(exc)}")
            else:
                proposed.append(f"#{case.pk} {action.kind} ({action.get_status_display().lower()})")
        if proposed:
            messages.success(request, f"Proposed on {len(proposed)} case(s): {', '.join(proposed[:20])}.")
        if skipped:
            messages.info(request, f"Skipped {len(skipped)}: {', '.join(skipped[:20])}.")
        for error in errors[:10]:
            messages.error(request, error)

    # -- the case page and its buttons
    def change_view(self, request, object_id, form_url="", extra_context=None):
        return admin_views.case_page(self, request, object_id)

    def get_urls(self):
        return [
            path("<int:case_id>/propose/", self.wrap(admin_views.case_propose), name="enforcement_case_propose"),
            path("<int:case_id>/assign/", self.wrap(admin_views.case_assign), name="enforcement_case_assign"),
            path("<int:case_id>/comment/", self.wrap(admin_views.case_comment), name="enforcement_case_comment"),
            path("<int:case_id>/resolve/", self.wrap(admin_views.case_resolve), name="enforcement_case_resolve"),
            *super().get_urls(),
        ]


# --------------------------------------------------------------------------- actions, violations, appeals


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

    @admin.display(description="Status", ordering="status")
    def status_col(self, action):
        return status_badge(action.status, action.get_status_display())

    @admin.display(description="Case", ordering="case_id")
    def case_col(self, action):
        return case_link(action.case_id)

    @admin.display(description="Account")
    def account_col(self, action):
        return account_link(action.account)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().lstrip("#")
        if not term:
            return queryset, False
        condition = Q(account__public_id=term)
        if term.isdigit():
            condition |= Q(case_id=int(term)) | Q(pk=int(term))
        return queryset.filter(condition), False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return self.redirect_to_case(request, object_id, "action")

    def get_urls(self):
        transition = self.wrap(admin_views.action_transition)
        return [
            path("approvals/", self.wrap(admin_pages.approvals_page), name="enforcement_enforcementaction_approvals"),
            *(
                path(f"<int:action_id>/{verb}/", transition, {"verb": verb},
                     name="enforcement_enforcementaction_transition")
                for verb in ACTION_VERBS
            ),
            *super().get_urls(),
        ]


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

    @admin.display(description="Account")
    def account_col(self, violation):
        return account_link(violation.account)

    @admin.display(description="Key")
    def key_col(self, violation):
        return violation.api_key.prefix if violation.api_key_id else "-"

    @admin.display(description="Case", ordering="case_id")
    def case_col(self, violation):
        return case_link(violation.case_id)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(account__public_id=term) | Q(external_id=term)
        if term.lstrip("#").isdigit():
            condition |= Q(case_id=int(term.lstrip("#")))
        if kind_of(term):
            condition |= Q(api_key__prefix__startswith=term[:PREFIX_LENGTH])
        return queryset.filter(condition), False

    def changelist_view(self, request, extra_context=None):
        extra = {"may_report": actor_for(request).can(WORK_CASE), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return self.redirect_to_case(request, object_id, "violation")

    def get_urls(self):
        return [
            path("report/", self.wrap(admin_pages.report_violation_page), name="enforcement_violation_report"),
            path("<int:violation_id>/dismiss/", self.wrap(admin_views.violation_dismiss),
                 name="enforcement_violation_dismiss"),
            *super().get_urls(),
        ]


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

    @admin.display(description="Case", ordering="case_id")
    def case_col(self, appeal):
        return case_link(appeal.case_id)

    @admin.display(description="Account")
    def account_col(self, appeal):
        return account_link(appeal.case.account)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return self.redirect_to_case(request, object_id, "appeal")

    def get_urls(self):
        return [
            path("queue/", self.wrap(admin_pages.appeals_page), name="enforcement_appeal_queue"),
            path("<int:appeal_id>/decide/", self.wrap(admin_views.appeal_decide), name="enforcement_appeal_decide"),
            *super().get_urls(),
        ]


# --------------------------------------------------------------------------- emails


class TemplateFilter(admin.SimpleListFilter):
    title = "template"
    parameter_name = "template"

    def lookups(self, request, model_admin):
        return [(name, name) for name in EMAIL_TEMPLATES]

    def queryset(self, request, queryset):
        return queryset.filter(template=self.value()) if self.value() else queryset


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

    @admin.display(description="Status", ordering="status")
    def status_col(self, notification):
        return status_badge(notification.status, notification.get_status_display())

    @admin.display(description="Case", ordering="case_id")
    def case_col(self, notification):
        return case_link(notification.case_id)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(recipient__iexact=term) | Q(event_key=term)
        if term.lstrip("#").isdigit():
            condition |= Q(case_id=int(term.lstrip("#")))
        return queryset.filter(condition), False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"may_resend": actor_for(request).can(WORK_CASE), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    @admin.action(description="Resend the selected failed emails", permissions=["work_case"])
    def resend_failed(self, request, queryset):
        from enforcement import notifications

        actor = actor_for(request)
        ids = list(queryset.filter(status=Notification.Status.FAILED).values_list("pk", flat=True)[:MAX_BULK])
        for notification_id in ids:
            notifications.notification_resend(actor=actor, notification_id=notification_id)
        messages.success(request, f"{len(ids)} failed email(s) put back in the outbox.")

    def get_urls(self):
        return [
            path("preview/", self.wrap(admin_pages.email_preview_page), name="enforcement_notification_preview"),
            path("<int:notification_id>/resend/", self.wrap(admin_views.notification_resend),
                 name="enforcement_notification_resend"),
            *super().get_urls(),
        ]


# --------------------------------------------------------------------------- the audit log


class VerbFamilyFilter(admin.SimpleListFilter):
    title = "what"
    parameter_name = "family"
    FAMILIES = ["case", "violation", "action", "appeal", "notification", "account", "key", "rule", "service_token"]

    def lookups(self, request, model_admin):
        return [(family, family.replace("_", " ")) for family in self.FAMILIES]

    def queryset(self, request, queryset):
        if self.value() in self.FAMILIES:
            return queryset.filter(verb__startswith=f"{self.value()}.")
        return queryset


@admin.register(AuditEvent)
class AuditEventAdmin(WorkflowAdmin):
    """Read-only for everyone, superusers included; exportable as CSV with the current filters."""

    list_display = ("created_at", "actor_label", "actor_type", "verb", "target", "case_col", "account_col", "note")
    list_filter = ("actor_type", VerbFamilyFilter, ("created_at", admin.DateFieldListFilter))
    list_select_related = ("account",)
    search_fields = ("actor_label",)
    search_help_text = "Actor, verb (case.assigned), target (case:12), case number or account id."
    change_list_template = "admin/enforcement/auditevent/change_list.html"
    readonly_fields = ("created_at", "actor_type", "actor_label", "verb", "target_type", "target_id", "case",
                       "account", "before", "after", "note")
    fields = readonly_fields
    actions = None

    @admin.display(description="Target")
    def target(self, event):
        return f"{event.target_type}:{event.target_id}"

    @admin.display(description="Case", ordering="case_id")
    def case_col(self, event):
        return case_link(event.case_id)

    @admin.display(description="Account")
    def account_col(self, event):
        return event.account.public_id if event.account_id else "-"

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        target_type, sep, target_id = term.partition(":")
        if sep and target_type and target_id:
            condition = Q(target_type=target_type, target_id=target_id)
        elif term.lstrip("#").isdigit():
            condition = Q(case_id=int(term.lstrip("#"))) | Q(target_id=term.lstrip("#"))
        elif term.startswith("acct_"):
            condition = Q(account__public_id=term)
        elif "." in term:
            condition = Q(verb__startswith=term)
        else:
            condition = Q(actor_label__istartswith=term)
        return queryset.filter(condition), False

    def get_urls(self):
        return [
            path("export/", self.wrap(admin_pages.audit_export), name="enforcement_auditevent_export"),
            *super().get_urls(),
        ]


# --------------------------------------------------------------------------- policy data and tokens


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    """The policy as data: leads edit it, every change is in the audit log."""

    form = RuleAdminForm
    list_display = ("code", "title", "default_severity", "act_first", "auto_action", "ladder_overrides", "is_active")
    list_filter = ("default_severity", "act_first", "auto_action", "is_active")
    search_fields = ("code", "title")

    def get_readonly_fields(self, request, obj=None):
        return ("code",) if obj is not None else ()

    def has_delete_permission(self, request, obj=None):
        return False  # violations refer to rules; retire one with "is active"

    def save_model(self, request, obj, form, change):
        services.rule_save(actor=actor_for(request), rule=obj)  # the form validated; the service audits


@admin.register(ServiceToken)
class ServiceTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "scopes_col", "trusted", "state", "created_at", "expires_at", "last_used_at")
    list_filter = ("trusted",)
    search_fields = ("name", "prefix")
    readonly_fields = ("name", "prefix", "scopes", "trusted", "created_by", "created_at", "expires_at", "revoked_at",
                       "last_used_at")
    fields = readonly_fields
    actions = ["revoke_selected"]
    change_form_template = "admin/enforcement/servicetoken/change_form.html"

    def may_manage_tokens(self, request) -> bool:
        return request.user.has_perm("enforcement.change_servicetoken")

    def has_add_permission(self, request):
        return self.may_manage_tokens(request)

    def has_change_permission(self, request, obj=None):
        return False  # scopes and hashes are never edited; revoke and create a new one

    def has_delete_permission(self, request, obj=None):
        return False

    def has_manage_tokens_permission(self, request):
        return self.may_manage_tokens(request)

    @admin.display(description="Scopes")
    def scopes_col(self, token):
        return ", ".join(token.scopes)

    @admin.display(description="State")
    def state(self, token):
        if token.revoked_at:
            return "revoked"
        if token.expires_at and token.expires_at <= timezone.now():
            return "expired"
        return "active"

    @admin.action(description="Revoke the selected tokens", permissions=["manage_tokens"])
    def revoke_selected(self, request, queryset):
        actor = actor_for(request)
        ids = list(queryset.filter(revoked_at__isnull=True).values_list("pk", flat=True))
        for token_id in ids:
            services.service_token_revoke(actor=actor, token_id=token_id)
        messages.success(request, f"{len(ids)} token(s) revoked.")

    def add_view(self, request, form_url="", extra_context=None):
        return admin_pages.token_create_page(self, request)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"may_manage": self.may_manage_tokens(request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self):
        def revoke(request, token_id):
            return admin_pages.token_revoke(self, request, token_id)

        return [
            path("<int:token_id>/revoke/", self.admin_site.admin_view(revoke), name="enforcement_servicetoken_revoke"),
            *super().get_urls(),
        ]
