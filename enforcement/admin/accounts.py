"""Accounts and keys in the console: read-only (they are mirrored from the platform), with each
account's standing and each key's effective state as the enforcement actions in force make it."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.models import Account, APIKey, KeyStatus
from accounts.tokens import PREFIX_LENGTH, kind_of
from enforcement import services
from enforcement.actors import WORK_CASE
from enforcement.admin.base import ReadOnlyModelAdmin
from enforcement.admin.buttons import actor_for
from enforcement.admin.display import severity_badge, sla_html, status_badge
from enforcement.models import Case
from enforcement.selectors import account_standing

RECENT_CASES = 20


class ReadOnlyInventoryAdmin(ReadOnlyModelAdmin):
    """Accounts and keys are mirrored from the platform (the API's inventory routes), not edited here."""


def key_imposed_by(keys, active_actions) -> dict[int, list]:
    """For each key, the actions in force that restrict it, as the key state service reads them."""
    return {key.pk: [action for action in active_actions if services.restricts_key(action, key.pk)] for key in keys}


def edge_states(keys) -> tuple[dict[int, object], str | None]:
    """What the ingest edge holds for each key right now (None: not published), or why it cannot say."""
    try:
        from accounts import edge

        store = edge.get_store()
        return {key.pk: store.get(key.token_sha256) for key in keys}, None
    except Exception as exc:  # the page must render when the edge store is down; it says so instead
        return {}, f"{type(exc).__name__}: {exc}"


def edge_cell(key, record) -> dict:
    if record is None:
        return {"published": False}
    in_sync = (record.version, record.status, record.rate_limit, record.ip_rate_limit) == (
        key.state_version, key.status, key.rate_limit_per_minute, key.ip_rate_limit_per_minute,
    )
    return {"published": True, "record": record, "in_sync": in_sync}


@admin.register(Account)
class AccountAdmin(ReadOnlyInventoryAdmin):
    list_display = ("public_id", "name", "email", "status_col", "created_at")
    list_filter = ("status",)
    search_fields = ("public_id",)
    search_help_text = "Account id, email, name or key prefix."
    ordering = ("public_id",)

    @admin.display(description="Status", ordering="status")
    def status_col(self, account):
        return status_badge(account.status, account.get_status_display())

    def search_condition(self, term):
        condition = Q(public_id=term) | Q(public_id__startswith=term) | Q(email__iexact=term)
        if len(term) >= 3:
            condition |= Q(name__icontains=term) | Q(email__istartswith=term)
        if kind_of(term):
            condition |= Q(Exists(APIKey.objects.filter(account_id=OuterRef("pk"),
                                                        prefix__startswith=term[:PREFIX_LENGTH])))
        return condition

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The account's standing: strikes in the window, open case, actions in force, every key's state."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        account = Account.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        if account is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, str(object_id))
        now = timezone.now()
        standing = account_standing(account, now=now)
        imposed = key_imposed_by(standing["keys"], standing["active_actions"])
        at_edge, edge_problem = edge_states(standing["keys"])
        keys = [
            {"key": key, "imposed_by": imposed[key.pk],
             "edge": edge_cell(key, at_edge[key.pk]) if key.pk in at_edge else None}
            for key in standing["keys"]
        ]
        cases = list(
            Case.objects.filter(account=account).select_related("assignee").order_by("-opened_at")[:RECENT_CASES]
        )
        open_case = standing["open_case"]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": account.name,
            "subtitle": account.public_id,
            "original": account,
            "account": account,
            "standing": standing,
            "keys": keys,
            "edge_problem": edge_problem,
            "cases": cases,
            "open_case_sla": sla_html(open_case.review_due_at, now=now) if open_case else None,
            "open_case_severity": severity_badge(open_case.severity) if open_case else None,
            "may_report": actor_for(request).can(WORK_CASE),
            "report_url": f"{reverse('admin:enforcement_violation_report')}?account={account.public_id}",
            "key_statuses": KeyStatus,
        }
        return TemplateResponse(request, "admin/accounts/account/standing.html", context)


@admin.register(APIKey)
class APIKeyAdmin(ReadOnlyInventoryAdmin):
    list_display = ("prefix", "kind", "account_col", "status_col", "rate_col", "ip_rate_col", "state_version",
                    "state_changed_at", "revoked_at")
    list_filter = ("status", "kind")
    list_select_related = ("account",)
    search_fields = ("prefix",)
    search_help_text = "Key prefix or account id."
    ordering = ("prefix",)
    readonly_fields = ("prefix", "kind", "account", "label", "status", "rate_limit_per_minute",
                       "base_rate_limit_per_minute", "ip_rate_limit_per_minute", "base_ip_rate_limit_per_minute",
                       "state_version", "state_changed_at", "revoked_at", "revoked_reason", "created_at",
                       "updated_at")
    fields = readonly_fields  # never the token hash

    @admin.display(description="Account", ordering="account__public_id")
    def account_col(self, key):
        return format_html('<a href="{}">{}</a>', reverse("admin:accounts_account_change", args=[key.account_id]),
                           key.account.public_id)

    @admin.display(description="Status", ordering="status")
    def status_col(self, key):
        return status_badge(key.status, key.get_status_display())

    @admin.display(description="Rate / min (base)")
    def rate_col(self, key):
        return f"{key.rate_limit_per_minute} ({key.base_rate_limit_per_minute})"

    @admin.display(description="Per IP / min (base)")
    def ip_rate_col(self, key):
        return f"{key.ip_rate_limit_per_minute} ({key.base_ip_rate_limit_per_minute})"

    def search_condition(self, term):
        return Q(prefix__startswith=term[:PREFIX_LENGTH]) | Q(account__public_id=term)
