"""The audit log: read-only for everyone, superusers included, and exportable as CSV with the filters
and search of the list it was exported from."""

import csv
import json

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path
from django.utils import timezone

from enforcement.admin.base import WorkflowAdmin, case_number
from enforcement.admin.filters import VerbFamilyFilter
from enforcement.models import AuditEvent


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


def audit_csv_rows(queryset):
    writer = csv.writer(_Echo())
    yield writer.writerow(AUDIT_COLUMNS)
    for event in queryset.select_related("account").iterator(chunk_size=2000):
        yield writer.writerow(csv_cell(cell) for cell in [
            event.pk, event.created_at.isoformat(), event.actor_type, event.actor_label, event.verb,
            event.target_type, event.target_id, event.case_id or "",
            event.account.public_id if event.account_id else "",
            json.dumps(event.before, sort_keys=True) if event.before is not None else "",
            json.dumps(event.after, sort_keys=True) if event.after is not None else "",
            event.note,
        ])


def audit_export(model_admin, request):
    """The audit log as CSV, with the filters and search of the list it was exported from."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    try:
        changelist = model_admin.get_changelist_instance(request)
    except IncorrectLookupParameters:
        return HttpResponse("Unknown filter.", status=400, content_type="text/plain")
    response = StreamingHttpResponse(audit_csv_rows(changelist.queryset), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{timezone.now():%Y%m%d-%H%M%S}.csv"'
    return response
