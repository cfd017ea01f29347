"""Saved views of the case queue and what the console remembers per staff member.

A saved view is a person's: only its owner renames, re-filters, shares or deletes it; a shared view is offered
to the whole team, read-only to everyone else. Creating, changing, sharing and deleting a view are audit
events (a shared view is what the team works from). Remembered timeline filters are a person's display
preference: stored, not audited."""

from django.db import IntegrityError, transaction
from django.db.models import Q

from enforcement.actors import Actor
from enforcement.audit import audit_record, snapshot
from enforcement.errors import BLANK, Conflict, Forbidden, NotFound, ValidationFailed
from enforcement.models import SavedView, StaffPreference

VIEW_FIELDS = ["name", "query", "shared"]
MAX_VIEWS_PER_OWNER = 50
TIMELINE_KINDS = ("violation", "action", "notification", "comment", "appeal", "audit")


def _require_person(actor: Actor, message: str) -> None:
    user = actor.user_or_none
    if user is None or not (user.is_active and user.is_staff and user.has_perm("enforcement.view_case")):
        raise Forbidden(message, code="person_required" if user is None else None)


def _clean(name: str, query: str) -> tuple[str, str]:
    name = (name or "").strip()
    query = (query or "").strip().lstrip("?")
    problems: dict[str, list[str]] = {}
    if not name:
        problems["name"] = [BLANK]
    elif len(name) > SavedView._meta.get_field("name").max_length:
        problems["name"] = ["At most 80 characters."]
    if len(query) > SavedView._meta.get_field("query").max_length:
        problems["query"] = ["At most 1000 characters of filters."]
    if problems:
        raise ValidationFailed("The view cannot be saved as it is.", fields=problems)
    return name, query


def _own_view(actor: Actor, view_id: int) -> SavedView:
    view = SavedView.objects.select_for_update().filter(pk=view_id).first() if 0 < view_id < 2**63 else None
    if view is None or (view.owner_id != actor.user.pk and not view.shared):
        raise NotFound("No such saved view.")
    if view.owner_id != actor.user.pk:
        raise Forbidden("Only the view's owner may change or delete it.")
    return view


@transaction.atomic
def saved_view_save(*, actor: Actor, name: str, query: str, shared: bool = False) -> SavedView:
    """Save the queue's current filters under a name; saving again under one of one's names updates that view."""
    _require_person(actor, "Only staff members save views.")
    name, query = _clean(name, query)
    view = SavedView.objects.select_for_update().filter(owner=actor.user, name=name).first()
    if view is None:
        if SavedView.objects.filter(owner=actor.user).count() >= MAX_VIEWS_PER_OWNER:
            raise Conflict(f"You have {MAX_VIEWS_PER_OWNER} saved views already: delete one first.")
        try:
            with transaction.atomic():
                view = SavedView.objects.create(owner=actor.user, name=name, query=query, shared=shared)
        except IntegrityError:
            raise Conflict("You already have a view of that name.") from None
        audit_record(actor=actor, verb="saved_view.created", target=view, after=snapshot(view, VIEW_FIELDS))
        return view
    before = snapshot(view, VIEW_FIELDS)
    view.query, view.shared = query, shared
    if snapshot(view, VIEW_FIELDS) != before:
        view.save(update_fields=["query", "shared", "updated_at"])
        audit_record(actor=actor, verb="saved_view.updated", target=view, before=before,
                     after=snapshot(view, VIEW_FIELDS))
    return view


@transaction.atomic
def saved_view_share(*, actor: Actor, view_id: int, shared: bool) -> SavedView:
    """Offer one's view to the team (or take it back)."""
    _require_person(actor, "Only staff members share views.")
    view = _own_view(actor, view_id)
    if view.shared == shared:
        return view
    before = snapshot(view, VIEW_FIELDS)
    view.shared = shared
    view.save(update_fields=["shared", "updated_at"])
    audit_record(actor=actor, verb="saved_view.shared" if shared else "saved_view.unshared", target=view,
                 before=before, after=snapshot(view, VIEW_FIELDS))
    return view


@transaction.atomic
def saved_view_delete(*, actor: Actor, view_id: int) -> None:
    _require_person(actor, "Only staff members delete views.")
    view = _own_view(actor, view_id)
    audit_record(actor=actor, verb="saved_view.deleted", target=view, before=snapshot(view, VIEW_FIELDS))
    view.delete()


def visible_views(user):
    """The views a staff member may open: their own and the team's shared ones."""
    return SavedView.objects.filter(Q(owner=user) | Q(shared=True)).select_related("owner").order_by("name", "pk")


def timeline_hidden(user) -> list[str]:
    """The timeline kinds this staff member hid on the case page last time (none: everything shown)."""
    hidden = StaffPreference.objects.filter(user=user).values_list("timeline_hidden", flat=True).first()
    return [kind for kind in (hidden or []) if kind in TIMELINE_KINDS]


def timeline_filters_save(*, actor: Actor, hidden: list[str]) -> list[str]:
    """Remember which timeline kinds a staff member hides (unknown kinds are refused)."""
    _require_person(actor, "Only staff members have preferences.")
    unknown = sorted(set(hidden) - set(TIMELINE_KINDS))
    if unknown:
        raise ValidationFailed("Unknown timeline kinds.", fields={"hidden": [", ".join(unknown)]})
    kept = [kind for kind in TIMELINE_KINDS if kind in hidden]
    StaffPreference.objects.update_or_create(user=actor.user, defaults={"timeline_hidden": kept})
    return kept
