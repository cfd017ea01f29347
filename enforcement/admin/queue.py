"""The case queue as views: the querystring of a queue view (filters, search, sort) turned back into its
cases, so the case page knows the previous and next case of the view it was opened from, the front page
counts each saved view, and staff save, share and delete views. Counts are bounded (``bounded_count``)."""

import copy
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ORDER_VAR, SEARCH_VAR
from django.core.exceptions import PermissionDenied
from django.db import DataError
from django.http import HttpResponseRedirect, QueryDict
from django.urls import reverse

from enforcement import services
from enforcement.admin.base import call_service, next_url, post_only, require
from enforcement.admin.buttons import actor_for
from enforcement.admin.display import case_url
from enforcement.errors import ServiceError
from enforcement.services.saved_views import TIMELINE_KINDS

COUNT_CAP = 1000  # a view's count on the front page: exact up to this, then "1000+"
NEIGHBOUR_WINDOW = 500  # the case page looks for its neighbours among the view's first cases
FRONT_PAGE_VIEWS = 12
FILTERS_PARAM = "_changelist_filters"  # where Django's admin keeps the queue's querystring on a case link


def view_params(model_admin) -> set[str]:
    """The querystring keys a queue view keeps: its filters, its search and its sort (not the page)."""
    return {f.parameter_name for f in model_admin.list_filter} | {SEARCH_VAR, ORDER_VAR}


def clean_query(model_admin, query: str) -> str:
    """A queue querystring with only what a view is made of, in a stable order."""
    allowed = view_params(model_admin)
    params = QueryDict(query or "")
    return urlencode(sorted((key, value) for key in params if key in allowed for value in params.getlist(key)))


def queue_queryset(model_admin, request, query: str):
    """The cases of a queue view, filtered, searched and sorted exactly as the queue shows them (the queue's
    own ChangeList, which fetches no page); None when the querystring is not one the queue accepts."""
    shadow = copy.copy(request)
    shadow.GET = QueryDict(clean_query(model_admin, query))
    shadow._queue_only = True
    try:
        return model_admin.get_changelist_instance(shadow).queryset
    except (IncorrectLookupParameters, DataError, OverflowError, ValueError):
        return None


def bounded_count(queryset, cap: int | None = None) -> str:
    """Rows of a query, counted up to ``cap`` (``COUNT(*)`` over ``LIMIT cap+1``): "1000+" beyond."""
    cap = COUNT_CAP if cap is None else cap
    counted = queryset.order_by()[: cap + 1].count()
    return f"{cap}+" if counted > cap else str(counted)


def case_link(case_id: int, query: str) -> str:
    """A case page opened from a queue view: the view goes along, as the queue's own links carry it."""
    return f"{case_url(case_id)}?{urlencode({FILTERS_PARAM: query})}" if query else case_url(case_id)


def queue_link(query: str) -> str:
    base = reverse("admin:enforcement_case_changelist")
    return f"{base}?{query}" if query else base


def neighbours(model_admin, request, case_id: int, query: str) -> dict:
    """The previous and next case of the view the case page was opened from. After the last case the next is
    the view's first again (a reviewed case sinks to the bottom of the queue: the next to work is its top); a
    case that has left the view (assigned away, closed) has no previous one, and its next is the view's first."""
    queryset = queue_queryset(model_admin, request, query)
    ids = list(queryset.values_list("pk", flat=True)[:NEIGHBOUR_WINDOW]) if queryset is not None else []
    wraps = False
    if case_id in ids:
        index = ids.index(case_id)
        previous_id = ids[index - 1] if index > 0 else None
        next_id = ids[index + 1] if index + 1 < len(ids) else None
        if next_id is None and len(ids) > 1 and len(ids) < NEIGHBOUR_WINDOW:
            next_id, wraps = ids[0], True
        position = index + 1
    else:
        previous_id, next_id, position = None, next((pk for pk in ids if pk != case_id), None), None
    return {
        "query": query,
        "queue_url": queue_link(query),
        "previous_url": case_link(previous_id, query) if previous_id else "",
        "next_url": case_link(next_id, query) if next_id else "",
        "next_id": next_id,
        "wraps": wraps,
        "position": position,
        "size": f"{NEIGHBOUR_WINDOW}+" if len(ids) >= NEIGHBOUR_WINDOW else str(len(ids)),
    }


def view_tiles(model_admin, request) -> list[dict]:
    """The saved views a staff member sees on the front page, each with its bounded count."""
    tiles = []
    for view in services.visible_views(request.user)[:FRONT_PAGE_VIEWS]:
        queryset = queue_queryset(model_admin, request, view.query)
        tiles.append({
            "view": view,
            "count": bounded_count(queryset) if queryset is not None else "?",
            "url": queue_link(view.query),
            "mine": view.owner_id == request.user.pk,
        })
    return tiles


def current_view(views, query: str):
    """The saved view among ``views`` (those visible to the user) that this queue querystring is, if any."""
    return next((view for view in views if view.query == query), None)


# --------------------------------------------------------------------------- buttons


@post_only
def view_save(model_admin, request):
    """Save the queue's current filters (``query``) as a named view of one's own."""
    require(request, model_admin.has_view_permission(request))
    query = clean_query(model_admin, request.POST.get("query", ""))
    view = call_service(
        request,
        lambda: services.saved_view_save(actor=actor_for(request), name=request.POST.get("name", ""), query=query,
                                         shared=request.POST.get("shared") == "on"),
        lambda view: f"View \u201c{view.name}\u201d saved{' and shared with the team' if view.shared else ''}.",
    )
    return HttpResponseRedirect(queue_link(view.query if view else query))


@post_only
def view_share(model_admin, request, view_id: int):
    require(request, model_admin.has_view_permission(request))
    shared = request.POST.get("shared") == "on"
    call_service(
        request,
        lambda: services.saved_view_share(actor=actor_for(request), view_id=view_id, shared=shared),
        lambda view: f"View \u201c{view.name}\u201d is {'shared with the team' if view.shared else 'yours alone'} now.",
    )
    return HttpResponseRedirect(next_url(request, queue_link("")))


@post_only
def view_delete(model_admin, request, view_id: int):
    require(request, model_admin.has_view_permission(request))
    call_service(request, lambda: services.saved_view_delete(actor=actor_for(request), view_id=view_id),
                 "View deleted.")
    return HttpResponseRedirect(next_url(request, queue_link("")))


@post_only
def timeline_filters(model_admin, request):
    """Remember which kinds of timeline entry this staff member shows (the boxes ticked)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    shown = set(request.POST.getlist("show"))
    hidden = [kind for kind in TIMELINE_KINDS if kind not in shown]
    try:
        services.timeline_filters_save(actor=actor_for(request), hidden=hidden)
    except ServiceError as exc:
        messages.error(request, exc.message)
    return HttpResponseRedirect(next_url(request, queue_link("")))

