"""What the console's admins and pages share: the read-only admins, and the plumbing of every page and
button. Every button POSTs to a view that parses, checks the role, calls one service and reports the
outcome as an admin message. Nothing here writes a model."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.admin.views.main import SEARCH_VAR
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import DataError
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.tokens import PREFIX_LENGTH, kind_of
from enforcement.actors import PROPOSE_ACTION, WORK_CASE
from enforcement.admin.buttons import actor_for
from enforcement.admin.display import account_link, case_link, case_url, status_badge
from enforcement.admin.filters import CappedCountPaginator
from enforcement.errors import ServiceError

MAX_BULK = 500
QUEUE_PAGE_SIZE = 50


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Rows that change only through the services: listed and shown, never added, edited or deleted here.

    Lists are built for big tables: no full COUNT(*), no per-filter counts.
    """

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    list_per_page = 50

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        """A full API key in the search (a browser without scripts) is not kept: the list is answered at
        an address that names the key's prefix only, which finds the same key."""
        term = request.GET.get(SEARCH_VAR, "").strip()
        if kind_of(term) and len(term) > PREFIX_LENGTH:
            query = request.GET.copy()
            query[SEARCH_VAR] = term[:PREFIX_LENGTH]
            return HttpResponseRedirect(f"{request.path}?{query.urlencode()}")
        try:
            response = super().changelist_view(request, extra_context)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()  # here, so that a filter the database cannot take is caught here
        except (DataError, OverflowError):
            messages.error(request, "A filter value is out of range; the list is shown without filters.")
            return HttpResponseRedirect(request.path)
        return response

    def get_search_results(self, request, queryset, search_term):
        """The search box: ``search_condition`` of the stripped term; nothing typed, no filter."""
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(self.search_condition(term)), False

    def search_condition(self, term: str) -> Q:
        raise NotImplementedError


def case_number(term: str) -> int | None:
    """"#12" or "12" as a case (or row) number; None for anything else, or a number no row can have."""
    digits = term.lstrip("#")
    if not digits.isdigit() or len(digits) > 18:
        return None
    return int(digits)


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

    # Columns most workflow lists show (the admin instance is shared between requests: nothing per request on it).
    @admin.display(description="Case", ordering="case_id")
    def case_col(self, row):
        return case_link(row.case_id)

    @admin.display(description="Account")
    def account_col(self, row):
        return account_link(self.account_of(row))

    def account_of(self, row):
        return row.account if row.account_id else None

    @admin.display(description="Status", ordering="status")
    def status_col(self, row):
        return status_badge(row.status, row.get_status_display())

    def redirect_to_case(self, request, object_id, anchor: str):
        obj = None
        if (number := case_number(str(object_id))) is not None:
            obj = self.model.objects.filter(pk=number).only("pk", "case_id").first()
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, str(object_id))
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        return HttpResponseRedirect(f"{case_url(obj.case_id)}#{anchor}-{obj.pk}")


# --------------------------------------------------------------------------- pages and buttons


def admin_context(model_admin, request, **extra) -> dict:
    return {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta, **extra}


def queue_page(request, queryset):
    paginator = Paginator(queryset, QUEUE_PAGE_SIZE)
    return paginator.get_page(request.GET.get("p"))


def next_url(request, default: str) -> str:
    """Where to go after a button: the page it was pressed on, if that is one of ours."""
    candidate = request.POST.get("next") or request.GET.get("next")
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def error_text(exc: ServiceError) -> str:
    details = " ".join(f"{field}: {' '.join(problems)}" for field, problems in exc.fields.items())
    return f"{exc.message} {details}".strip()


def form_error_text(form) -> str:
    return " ".join(
        f"{form.fields[name].label or name if name in form.fields else name}: {' '.join(errors)}"
        for name, errors in form.errors.items()
    )


def show_service_error(request, form, exc: ServiceError) -> None:
    """A service's refusal as an admin message, with each field's problem on its form field."""
    messages.error(request, error_text(exc))
    for field, problems in exc.fields.items():
        if field in form.fields:
            form.add_error(field, problems)


def call_service(request, call: Callable, success: Callable[[object], str] | str):
    """Run one service call; its refusal becomes an error message, never a traceback."""
    try:
        result = call()
    except ServiceError as exc:
        messages.error(request, error_text(exc))
        return None
    messages.success(request, success(result) if callable(success) else success)
    return result


def post_only(view):
    """Buttons change state, so they answer POST alone (and the admin's CSRF check applies)."""

    def wrapper(model_admin, request, *args, **kwargs):
        if request.method != "POST":
            response = render(request, "admin/button_is_post.html", status=405)
            response["Allow"] = "POST"
            return response
        return view(model_admin, request, *args, **kwargs)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def require(request, allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied("Your role does not allow this.")
