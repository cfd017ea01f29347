"""Reads shared by the admin and the API: a case's timeline, an account's standing, queues."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.models import Account, APIKey
from enforcement.actors import Actor
from enforcement.models import (
    Appeal,
    AuditEvent,
    Case,
    Comment,
    EnforcementAction,
    Notification,
    Source,
    Violation,
)
from enforcement.services.detectors import source_record, tallies
from enforcement.services.recommendations import strikes_for
from enforcement.transitions import IN_FORCE


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # violation, action, notification, comment, appeal, audit
    title: str
    detail: str
    obj: object

    def as_dict(self) -> dict:
        return {"at": self.at.isoformat(), "kind": self.kind, "title": self.title, "detail": self.detail,
                "id": getattr(self.obj, "pk", None)}


def case_detail_queryset(*, evidence: bool = True, audit_changes: bool = True) -> QuerySet[Case]:
    """A case with everything its page shows, in a constant number of queries. ``evidence=False`` leaves the
    violations' evidence and the audit events' before and after unread (the case page reads them for the few
    rows it shows, in one query each); ``audit_changes=False`` the audit events' before and after alone (the
    API's timeline names each event, without its changes)."""
    # Thousands of violations share a few rules and keys: each read once (a prefetch), not joined to every row.
    violations = Violation.objects.order_by("reported_at").prefetch_related("rule", "api_key")
    audit_events = AuditEvent.objects.order_by("created_at", "id")
    action_keys = APIKey.objects.all()
    if not evidence:
        violations = violations.defer("evidence")
        action_keys = action_keys.only("id", "account_id", "prefix")  # an action's card names its keys
    if not evidence or not audit_changes:
        audit_events = audit_events.defer("before", "after")
    return Case.objects.select_related("account", "assignee").prefetch_related(
        Prefetch("violations", queryset=violations),
        Prefetch(
            "actions",
            queryset=EnforcementAction.objects.select_related("appeal", "requested_by_token", "approved_by_token")
            .prefetch_related(Prefetch("keys", queryset=action_keys)).order_by("created_at"),
        ),
        Prefetch("notifications", queryset=Notification.objects.order_by("created_at")),
        Prefetch("comments", queryset=Comment.objects.order_by("created_at")),
        Prefetch("appeals", queryset=Appeal.objects.order_by("submitted_at")),
        Prefetch("audit_events", queryset=audit_events),
    )


def case_timeline(case: Case) -> list[TimelineEntry]:
    """Everything about a case in time order. Use on a case from ``case_detail_queryset``."""
    entries: list[TimelineEntry] = []
    for v in case.violations.all():
        title = f"{v.rule.code} ({v.severity}) reported by {v.reported_by}"
        entries.append(TimelineEntry(v.reported_at, "violation", title, v.summary, v))
    for a in case.actions.all():
        title = f"{a.kind} proposed by {a.requested_by_label} ({a.status})"
        entries.append(TimelineEntry(a.created_at, "action", title, a.reason, a))
    for n in case.notifications.all():
        entries.append(TimelineEntry(n.created_at, "notification", f"email {n.template} to {n.recipient} ({n.status})",
                                     n.subject or n.last_error, n))
    for c in case.comments.all():
        entries.append(TimelineEntry(c.created_at, "comment", f"comment by {c.author_label}", c.body, c))
    for ap in case.appeals.all():
        entries.append(TimelineEntry(ap.submitted_at, "appeal", f"appeal of action #{ap.action_id} ({ap.status})",
                                     ap.message, ap))
    for e in case.audit_events.all():
        entries.append(TimelineEntry(e.created_at, "audit", f"{e.actor_label} {e.verb} {e.target_type}:{e.target_id}",
                                     e.note, e))
    entries.sort(key=lambda entry: entry.at)
    return entries


def account_standing(account: Account, *, now: datetime | None = None) -> dict:
    """An account's strikes, open case and actions in force, in a fixed number of queries whatever the number
    of actions (its keys: each caller lists them its own way, by the page or as rows)."""
    now = now or timezone.now()
    window = settings.ENFORCEMENT["STRIKE_WINDOW_DAYS"]
    open_case = account.cases.exclude(status=Case.Status.CLOSED).first()
    active_actions = list(
        EnforcementAction.objects.filter(account=account, status__in=IN_FORCE)
        .prefetch_related(Prefetch("keys", queryset=APIKey.objects.only("id", "prefix")))
        .order_by("created_at")
    )
    for action in active_actions:
        action.account = account  # known already: not a query per action for its public_id
    return {
        "account": account,
        "status": account.status,
        "strikes": strikes_for(account_id=account.pk, window_days=window, now=now),
        "strike_window_days": window,
        "open_case": open_case,
        "active_actions": active_actions,
    }


# The case queue: cases awaiting review by deadline (so overdue first), the most severe first within one
# deadline; reviewed cases (no deadline) last.
CASE_QUEUE_ORDERING = (F("review_due_at").asc(nulls_last=True), "-severity_rank", "-id")
# Closed cases (all without a deadline): the most recently closed first.
CLOSED_CASES_ORDERING = ("-closed_at", "-id")


def approvals_queue() -> QuerySet[EnforcementAction]:
    """Actions awaiting a lead: by approval deadline, then the case's severity, then age."""
    return (
        EnforcementAction.objects.filter(status=EnforcementAction.Status.AWAITING_APPROVAL)
        .select_related("case", "account")
        .order_by(F("approval_due_at").asc(nulls_last=True), "-case__severity_rank", "created_at")
    )


def appeals_queue() -> QuerySet[Appeal]:
    """Appeals awaiting a lead: by decision deadline, then the case's severity, then age."""
    return Appeal.objects.filter(status=Appeal.Status.PENDING).select_related("action", "case__account").order_by(
        F("due_at").asc(nulls_last=True), "-case__severity_rank", "submitted_at"
    )


def sources_overview() -> list[dict]:
    """Every reporting source with its track record and whether its critical reports may act first now."""
    counts = tallies()
    rows = []
    for source in Source.objects.select_related("owner_user", "owner_token").order_by("name"):
        record = source_record(source.name, counts=counts.get(source.name, {}))
        if source.reserved:
            owner, owner_trusted = "console", True
        elif source.owner_token_id:
            owner = f"token:{source.owner_token.name}"
            owner_trusted = source.owner_token.trusted and source.owner_token.revoked_at is None
        elif source.owner_user_id:
            owner, owner_trusted = source.owner_user.get_username(), Actor.for_user(source.owner_user).is_trusted_source
        else:
            owner, owner_trusted = None, False
        rows.append({
            "source": source.name, "owner": owner, "reports": record.reports, "actioned": record.actioned,
            "dismissed": record.dismissed, "overturned": record.overturned, "precision": record.precision,
            "act_first_allowed": owner_trusted and not record.below_floor,
        })
    return rows


# --------------------------------------------------------------------------- streaming a big read


def keyset_chunks(queryset: QuerySet, *, chunk_size: int, statement_timeout_ms: int | None = None):
    """Yield ``queryset``'s rows in (created_at, id) order, ``chunk_size`` at a time, each chunk its own query
    resuming after the last row of the one before (keyset pagination: every chunk costs the same, however deep).

    Nothing stays open between chunks (no cursor, no transaction), so closing the generator, as a server does
    when a download is cancelled, ends the reading: no further query runs. On PostgreSQL each chunk's query
    runs under ``statement_timeout_ms``."""
    ordered = queryset.order_by("created_at", "id")
    last = None
    while True:
        page = ordered
        if last is not None:
            # created_at >= t bounds the index scan; the OR only breaks ties at t.
            page = page.filter(created_at__gte=last[0]).filter(Q(created_at__gt=last[0]) | Q(id__gt=last[1]))
        with transaction.atomic():
            if statement_timeout_ms and connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{statement_timeout_ms}ms"])
            rows = list(page[:chunk_size])
        yield from rows
        if len(rows) < chunk_size:
            return
        key = (rows[-1].created_at, rows[-1].pk)
        if last is not None and key <= last:  # never loop on a key that does not advance
            raise RuntimeError(f"keyset pagination did not advance past {last}")
        last = key
