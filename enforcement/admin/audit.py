"""The audit log: read-only for everyone, superusers included, and exportable as CSV with the filters
and search of the list it was exported from."""

import csv
import json
from datetime import datetime, time, timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from enforcement.admin.base import WorkflowAdmin, case_number
from enforcement.admin.filters import VerbFamilyFilter
from enforcement.models import AuditEvent
from enforcement.selectors import keyset_chunks


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

    def search_condition(self, term):
        target_type, sep, target_id = term.partition(":")
        number = case_number(term)
        if sep and target_type and target_id:
            condition = Q(target_type=target_type, target_id=target_id)
        elif number is not None:
            condition = Q(case_id=number) | Q(target_id=str(number))
        elif term.startswith("acct_"):
            condition = Q(account__public_id=term)
        elif "." in term:
            condition = Q(verb__startswith=term)
        else:
            condition = Q(actor_label__istartswith=term)
        return condition

    def get_urls(self):
        return [
            path("export/", self.wrap(audit_export), name="enforcement_auditevent_export"),
            *super().get_urls(),
        ]


# --------------------------------------------------------------------------- CSV export


class _Echo:
    def write(self, value):
        return value


AUDIT_COLUMNS = ["id", "created_at", "actor_type", "actor_label", "verb", "target_type", "target_id", "case",
                 "account", "before", "after", "note"]


# OWASP's CSV injection rule: a cell a spreadsheet would read as a formula is prefixed with a quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def audit_csv_rows(queryset, *, chunk_size: int | None = None):
    """The CSV, a line at a time, read from the database in keyset chunks as the client takes it: the first row
    goes out after one chunk's query, and a download cancelled (the generator closed) runs no further query."""
    writer = csv.writer(_Echo())
    yield writer.writerow(AUDIT_COLUMNS)
    events = keyset_chunks(queryset.select_related("account"),
                           chunk_size=chunk_size or settings.AUDIT_EXPORT_CHUNK_SIZE,
                           statement_timeout_ms=settings.AUDIT_EXPORT_STATEMENT_TIMEOUT_MS)
    for event in events:
        yield writer.writerow(csv_cell(cell) for cell in [
            event.pk, event.created_at.isoformat(), event.actor_type, event.actor_label, event.verb,
            event.target_type, event.target_id, event.case_id or "",
            event.account.public_id if event.account_id else "",
            json.dumps(event.before, sort_keys=True) if event.before is not None else "",
            json.dumps(event.after, sort_keys=True) if event.after is not None else "",
            event.note,
        ])


def _moment(value: str | None):
    """A bound of the list's "By created at" filter (a date or a date and time), aware; None if absent."""
    if not value:
        return None
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            return None
        moment = datetime.combine(day, time.min)
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def export_range_problem(params) -> str | None:
    """Why the export cannot run with these list parameters: it needs a date range of at most
    ``AUDIT_EXPORT_MAX_DAYS`` days (the list's "By created at" filter). None when it can."""
    max_days = settings.AUDIT_EXPORT_MAX_DAYS
    since, until = _moment(params.get("created_at__gte")), _moment(params.get("created_at__lt")) or timezone.now()
    if since is None:
        return (f"Choose a date range under \"By created at\" before exporting (today, the past 7 days, this month "
                f"or this year): the export covers at most {max_days} days.")
    if until - since > timedelta(days=max_days):
        return f"That date range is too long to export: at most {max_days} days."
    return None


def audit_export(model_admin, request):
    """The audit log as CSV, with the filters and search of the list it was exported from, over a date range."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    list_url = reverse("admin:enforcement_auditevent_changelist") + (
        f"?{request.GET.urlencode()}" if request.GET else "")
    problem = export_range_problem(request.GET)
    if problem:
        messages.error(request, problem)
        return HttpResponseRedirect(list_url)
    try:
        changelist = model_admin.get_changelist_instance(request)
    except IncorrectLookupParameters:
        messages.error(request, "Unknown filter: nothing was exported.")
        return HttpResponseRedirect(reverse("admin:enforcement_auditevent_changelist"))
    response = StreamingHttpResponse(audit_csv_rows(changelist.queryset), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{timezone.now():%Y%m%d-%H%M%S}.csv"'
    return response
