"""Accounts and keys in the console: read-only (they are mirrored from the platform), with each
account's standing, each key's effective state as the enforcement actions in force make it, and what the
edge counted: each key's refusals per window, charted."""

from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts import edge
from accounts.models import Account, APIKey, KeyStatus
from accounts.search import matching_account_ids
from accounts.tokens import PREFIX_LENGTH
from enforcement import services
from enforcement.actors import WORK_CASE
from enforcement.admin.base import ReadOnlyModelAdmin, case_number
from enforcement.admin.buttons import actor_for
from enforcement.admin.charts import MAX_WINDOWS, refusal_chart
from enforcement.admin.display import severity_badge, sla_html, status_badge
from enforcement.models import Case, Violation
from enforcement.selectors import account_standing

RECENT_CASES = 20


class ReadOnlyInventoryAdmin(ReadOnlyModelAdmin):
    """Accounts and keys are mirrored from the platform (the API's inventory routes), not edited here."""


KEYS_PER_PAGE = 100
MAX_SEARCH_OWNERS = 1000  # accounts a key-prefix search matches at most (a short prefix matches too many to list)
MANY_KEYS = 200


class KeyRef(NamedTuple):
    """A key as the refusal charts need it (every key of the account: not whole rows)."""

    pk: int
    prefix: str
    token_sha256: str


def key_imposed_by(keys, active_actions) -> dict[int, list]:
    """For each key, the actions in force that restrict it, as the key state service reads them."""
    return services.restricting_actions(active_actions, [key.pk for key in keys])


def edge_states(keys) -> tuple[dict[int, object], str | None]:
    """What the ingest edge holds for each key right now (None: not published), or why it cannot say. One
    batched read of the store, whatever the number of keys."""
    try:
        records = edge.get_store().get_many([key.token_sha256 for key in keys])
        return {key.pk: records.get(key.token_sha256) for key in keys}, None
    except Exception as exc:  # the page must render when the edge store is down; it says so instead
        return {}, f"{type(exc).__name__}: {exc}"


def key_page(request, account) -> tuple[object, dict[str, int]]:
    """The page of the account's keys shown (``?keys=N``, by prefix, ``KEYS_PER_PAGE`` a page) and the count
    of its keys per status: an account with thousands of keys is summed up, not listed whole."""
    by_status = dict(
        APIKey.objects.filter(account=account).order_by().values_list("status").annotate(n=Count("id"))
    )
    paginator = Paginator(APIKey.objects.filter(account=account).order_by("prefix"), KEYS_PER_PAGE)
    paginator.count = sum(by_status.values())  # known already: no second count
    return paginator.get_page(request.GET.get("keys")), by_status


def edge_cell(key, record) -> dict:
    if record is None:
        return {"published": False}
    in_sync = (record.version, record.status, record.rate_limit, record.ip_rate_limit) == (
        key.state_version, key.status, key.rate_limit_per_minute, key.ip_rate_limit_per_minute,
    )
    return {"published": True, "record": record, "in_sync": in_sync}


def _ms(value: str) -> int:
    return int(datetime.fromisoformat(value).timestamp() * 1000)


def _evidence_windows(evidence: dict) -> list[tuple[int, int]]:
    """(window start ms, refusals) as a gate report recorded them: one window, or a sustained run of them."""
    try:
        if "windows" in evidence:
            return [(_ms(w["start"]), int(w["refusals"])) for w in evidence["windows"]]
        return [(_ms(evidence["window_start"]), int(evidence["refusals"]))]
    except (KeyError, TypeError, ValueError):
        return []


def gate_report_chart(violation) -> dict | None:
    """The refusals a gate report recorded (its window, or its sustained run), for the case timeline."""
    if violation.source != services.GATE_SOURCE:
        return None
    counts = dict(_evidence_windows(violation.evidence or {}))
    if not counts:
        return None
    window_ms = edge.refusal_windows().length_ms
    return refusal_chart(counts, now_ms=max(counts), window_ms=window_ms, threshold=settings.EDGE_ABUSE_REFUSALS)


def edge_refusals(account, keys, *, now: datetime) -> tuple[dict[int, dict[int, int]], str | None]:
    """Each key's refusals at the edge per window (start ms -> count): what the gate's reports of the last
    ``MAX_WINDOWS`` windows recorded, then the store's counters for the windows it keeps (fresher: a report may
    have counted its window half-way). The reports alone, and why, when the store cannot be read."""
    windows = edge.refusal_windows()
    by_key: dict[int, dict[int, int]] = {key.pk: {} for key in keys}
    reports = Violation.objects.filter(
        account=account, source=services.GATE_SOURCE, api_key__isnull=False,
        rule__code__in=("rate-limit-overuse", "sustained-rate-abuse"),
        observed_at__gte=now - timedelta(milliseconds=MAX_WINDOWS * windows.length_ms),
    ).values_list("api_key_id", "evidence")
    for key_id, evidence in reports:
        for start, count in _evidence_windows(evidence):
            by_key[key_id][start] = max(count, by_key[key_id].get(start, 0))
    by_hash = {key.token_sha256: key.pk for key in keys}
    # Few keys: ask for them. Many (an account with thousands): read each window's counts whole (only the keys
    # refused in it are there) and keep this account's, rather than send thousands of hashes per window.
    asked = list(by_hash) if len(by_hash) <= MANY_KEYS else None
    try:
        store = edge.get_store()
        for start in windows.starts(int(now.timestamp() * 1000)):
            for sha, count in store.refusal_counts(start, hashes=asked).items():
                if sha in by_hash:
                    by_key[by_hash[sha]][start] = count
    except edge.EdgeUnavailable as exc:
        return by_key, f"{type(exc).__name__}: {exc}"
    return by_key, None


def refusal_charts(account, keys, *, now: datetime) -> tuple[list[dict], str | None]:
    """A chart per key the edge refused in the span shown (keys without refusals are left out)."""
    counts, problem = edge_refusals(account, keys, now=now)
    window_ms = edge.refusal_windows().length_ms
    charts = []
    for key in keys:
        chart = refusal_chart(counts[key.pk], now_ms=int(now.timestamp() * 1000), window_ms=window_ms,
                              threshold=settings.EDGE_ABUSE_REFUSALS)
        if chart is not None:
            charts.append({"key": key, "chart": chart})
    return charts, problem


@admin.register(Account)
class AccountAdmin(ReadOnlyInventoryAdmin):
    list_display = ("public_id", "name", "email", "status_col", "created_at")
    list_filter = ("status",)
    search_fields = ("public_id",)
    search_help_text = "Account id, name or email (their first letters, any case), or a key prefix's start."
    ordering = ("public_id",)

    @admin.display(description="Status", ordering="status")
    def status_col(self, account):
        return status_badge(account.status, account.get_status_display())

    def search_condition(self, term):
        """Id, name or email by their start in any case, a key prefix by its start (``accounts.search``)."""
        return Q(pk__in=matching_account_ids(term))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The account's standing: strikes in the window, open case, actions in force, every key's state."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        number = case_number(str(object_id))  # any row number: bounded, so a huge one is not found, not a 500
        account = Account.objects.filter(pk=number).first() if number is not None else None
        if account is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, str(object_id))
        now = timezone.now()
        standing = account_standing(account, now=now)
        page, keys_by_status = key_page(request, account)
        page_keys = list(page.object_list)
        imposed = key_imposed_by(page_keys, standing["active_actions"])
        at_edge, edge_problem = edge_states(page_keys)
        keys = [
            {"key": key, "imposed_by": imposed[key.pk],
             "edge": edge_cell(key, at_edge[key.pk]) if key.pk in at_edge else None}
            for key in page_keys
        ]
        cases = list(
            Case.objects.filter(account=account).select_related("assignee").order_by("-opened_at")[:RECENT_CASES]
        )
        # Charts for every key the edge refused (few), not only the keys of the page.
        all_keys = [KeyRef(*row) for row in APIKey.objects.filter(account=account).order_by("prefix")
                    .values_list("id", "prefix", "token_sha256")]
        charts, refusals_problem = refusal_charts(account, all_keys, now=now)
        if charts:  # the few keys charted, as keys
            charted = APIKey.objects.in_bulk([row["key"].pk for row in charts])
            charts = [{**row, "key": charted[row["key"].pk]} for row in charts]
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
            "key_page": page,
            "keys_by_status": [(KeyStatus(status).label, keys_by_status[status])
                               for status in KeyStatus.values if status in keys_by_status],
            "edge_problem": edge_problem,
            "refusal_charts": charts,
            "refusals_problem": refusals_problem,
            "abuse_threshold": settings.EDGE_ABUSE_REFUSALS,
            "abuse_window_minutes": settings.EDGE_ABUSE_WINDOW_SECONDS / 60,
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
        # The account's id first: the key's account_id index, not a join of every key to its account.
        account_id = Account.objects.filter(public_id=term).values_list("pk", flat=True).first()
        return Q(prefix__startswith=term[:PREFIX_LENGTH]) | Q(account_id=account_id or 0)
