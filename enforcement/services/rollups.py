"""The metrics' daily roll-up: a few rows per UTC day and figure, so a year of metrics reads thousands of rows
rather than a million cases (``enforcement.metrics`` reads them).

Each fact is counted on the day it happened, and such facts do not change once they have: a report received (by
rule and source), a case opened or closed (by severity), a case's first review (by severity, with the wait since
its opening and whether it met its deadline), an approval (by the action's kind, with the wait since the
proposal), an action applied (by kind, and by each rule it was decided under), an appeal decided (upheld or
overturned, likewise), and each staff member's work (cases reviewed or resolved, actions proposed, approvals,
appeals decided). So recomputing the last two days every few minutes keeps the roll-up exact; a day is replaced
whole, in one transaction, and a run may be repeated or overlap another (``metrics_rollup``). Each month touched
is then summed again from its days, so a long period reads a row a month and a figure. Waits are kept as
histograms (``wait_bucket``), from which a period's percentiles are read.

Derived data, not a decision: nothing here is audited, and rebuilding it (``manage.py rollup_metrics``) changes
nothing else.
"""

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Min, Sum
from django.utils import timezone

from enforcement import sla
from enforcement.models import Appeal, AuditEvent, Case, DailyFigure, EnforcementAction, Violation

REPORTS_BY_RULE = "reports_rule"  # rule: the rule's code
REPORTS_BY_SOURCE = "reports_source"  # dim: the source
CASES_OPENED = "cases_opened"  # dim: the case's severity
CASES_CLOSED = "cases_closed"  # dim: the case's severity
FIRST_REVIEW = "first_review"  # dim: severity; waits from the opening
SLA_ON_TIME = "sla_on_time"  # dim: severity; first reviews by the deadline
SLA_LATE = "sla_late"  # dim: severity; first reviews after it
APPROVAL = "approval"  # dim: the action's kind; waits from the proposal
ACTIONS = "actions"  # applied; rule "" (each action once) or a rule it was decided under; dim: kind
APPEALS = "appeals"  # decided; rule "" or a rule of the action appealed; dim: upheld | overturned
STAFF_CASES = "staff_cases"  # dim: a username; cases they reviewed or resolved
STAFF_PROPOSED = "staff_proposed"  # actions they proposed
STAFF_APPROVED = "staff_approved"  # actions they approved
STAFF_APPEALS = "staff_appeals"  # appeals they decided
COMPUTED = "computed"  # one per day rolled up, so a day without anything is known to be done

REVIEW_VERBS = ("case.reviewed", "case.resolved")


def wait_bucket(seconds: float) -> int:
    """The histogram bucket of a wait, by its lower bound in seconds: to the minute under an hour, five minutes
    under a day, the hour under a week, the day beyond."""
    s = max(0, int(seconds))
    step = 60 if s < 3600 else 300 if s < 86400 else 3600 if s < 7 * 86400 else 86400
    return s // step * step


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def first_reviews(case_ids) -> tuple[dict[int, datetime], dict[int, str]]:
    """Each case's first review (the earlier of its first ``case.reviewed`` event and the first action a person
    proposed on it), and the deadline recorded with that event: two queries."""
    reviewed: dict[int, datetime] = {}
    deadline_at_review: dict[int, str] = {}
    for case_id, at, before in (AuditEvent.objects.filter(verb="case.reviewed", case_id__in=case_ids)
                                .order_by("created_at", "id").values_list("case_id", "created_at", "before")):
        if case_id not in reviewed:
            reviewed[case_id] = at
            deadline_at_review[case_id] = (before or {}).get("review_due_at")
    for case_id, first in (EnforcementAction.objects.filter(case_id__in=case_ids, requested_by__isnull=False)
                           .values("case_id").annotate(first=Min("created_at")).values_list("case_id", "first")):
        if case_id not in reviewed or first < reviewed[case_id]:
            reviewed[case_id] = first
    return reviewed, deadline_at_review


def review_deadline(case: dict, recorded: str | None) -> datetime:
    """The deadline a first review is held to: the one recorded with it, else the severity's SLA from opening."""
    if recorded:
        return datetime.fromisoformat(recorded)
    return sla.review_deadline(case["severity"], case["opened_at"], sla_hours=settings.ENFORCEMENT["SLA_HOURS"])


class _Day:
    """The rows of one day being made: (figure, rule, dim) -> count and waits."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.waits: dict[tuple, Counter] = defaultdict(Counter)

    def add(self, figure: str, rule: str = "", dim: str = "", n: int = 1) -> None:
        self.counts[(figure, rule or "", dim or "")] += n

    def wait(self, figure: str, dim: str, seconds: float) -> None:
        self.add(figure, "", dim)
        self.waits[(figure, "", dim)][str(wait_bucket(seconds))] += 1

    def rows(self, day: date, now: datetime) -> list[DailyFigure]:
        made = [DailyFigure(day=day, figure=figure, rule=rule[:64], dim=dim[:200], count=n,
                            waits=dict(self.waits.get((figure, rule, dim), {})), computed_at=now)
                for (figure, rule, dim), n in sorted(self.counts.items()) if n]
        return [*made, DailyFigure(day=day, figure=COMPUTED, count=0, computed_at=now)]


def _rules_of(decided_under) -> list[str]:
    return list((decided_under or {}).get("rules") or {})


def day_figures(day: date) -> _Day:
    """Everything that happened on ``day`` (UTC), counted: about a dozen queries on indexed date ranges."""
    start, end = day_bounds(day)
    out = _Day()
    for rule, source, n in (Violation.objects.filter(reported_at__gte=start, reported_at__lt=end).order_by()
                            .values_list("rule__code", "source").annotate(n=Count("id"))):
        out.add(REPORTS_BY_RULE, rule, "", n)
        out.add(REPORTS_BY_SOURCE, "", source, n)
    for figure, field in ((CASES_OPENED, "opened_at"), (CASES_CLOSED, "closed_at")):
        for severity, n in (Case.objects.filter(**{f"{field}__gte": start, f"{field}__lt": end}).order_by()
                            .values_list("severity").annotate(n=Count("id"))):
            out.add(figure, "", severity, n)

    # First reviews made today: of the cases someone reviewed or proposed on today, those not reviewed before.
    candidates = set(AuditEvent.objects.filter(verb="case.reviewed", created_at__gte=start, created_at__lt=end)
                     .values_list("case_id", flat=True))
    for case_id, username in (EnforcementAction.objects.filter(created_at__gte=start, created_at__lt=end,
                                                               requested_by__isnull=False)
                              .values_list("case_id", "requested_by__username")):
        candidates.add(case_id)
        out.add(STAFF_PROPOSED, "", username)
    candidates.discard(None)
    if candidates:
        reviewed, recorded = first_reviews(candidates)
        today = [case_id for case_id, at in reviewed.items() if start <= at < end]
        for case in Case.objects.filter(pk__in=today).values("id", "opened_at", "severity"):
            at = reviewed[case["id"]]
            out.wait(FIRST_REVIEW, case["severity"], (at - case["opened_at"]).total_seconds())
            late = at > review_deadline(case, recorded.get(case["id"]))
            out.add(SLA_LATE if late else SLA_ON_TIME, "", case["severity"])

    for kind, created, approved, approver in (EnforcementAction.objects.filter(approved_at__gte=start,
                                                                               approved_at__lt=end)
                                              .values_list("kind", "created_at", "approved_at",
                                                           "approved_by__username")):
        out.wait(APPROVAL, kind, (approved - created).total_seconds())
        if approver is not None:
            out.add(STAFF_APPROVED, "", approver)
    for kind, decided_under in (EnforcementAction.objects.filter(applied_at__gte=start, applied_at__lt=end)
                                .values_list("kind", "decided_under")):
        out.add(ACTIONS, "", kind)
        for rule in _rules_of(decided_under):
            out.add(ACTIONS, rule, kind)
    for status, decided_under, decider in (Appeal.objects.filter(decided_at__gte=start, decided_at__lt=end)
                                           .values_list("status", "action__decided_under", "decided_by__username")):
        if decider is not None:
            out.add(STAFF_APPEALS, "", decider)
        if status == Appeal.Status.PENDING:
            continue
        out.add(APPEALS, "", status)
        for rule in _rules_of(decided_under):
            out.add(APPEALS, rule, status)

    handled = set(AuditEvent.objects.filter(verb__in=REVIEW_VERBS, created_at__gte=start, created_at__lt=end,
                                            actor_user__isnull=False, case__isnull=False)
                  .values_list("actor_user__username", "case_id").distinct())
    for username, _case in handled:
        out.add(STAFF_CASES, "", username)
    return out


def _replace(span: str, day: date, rows: list[DailyFigure]) -> int:
    """Replace a day's (or a month's) rows in one transaction; a run that meets another writing the same rows
    leaves it that one's (they count the same facts)."""
    try:
        with transaction.atomic():
            DailyFigure.objects.filter(span=span, day=day).delete()
            DailyFigure.objects.bulk_create(rows)
    except IntegrityError:
        return 0
    return len(rows)


def rollup_day(day: date, *, now: datetime | None = None) -> int:
    """Replace ``day``'s rows with freshly counted ones; the number of rows."""
    return _replace(DailyFigure.Span.DAY, day, day_figures(day).rows(day, now or timezone.now()))


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def rollup_month(first: date, *, now: datetime | None = None) -> int:
    """Sum the days of the month starting ``first`` into its month rows (two queries and a write)."""
    now = now or timezone.now()
    days = DailyFigure.objects.filter(span=DailyFigure.Span.DAY, day__gte=first, day__lt=next_month(first))
    rows = [DailyFigure(span=DailyFigure.Span.MONTH, day=first, figure=figure, rule=rule, dim=dim, count=n,
                        computed_at=now)
            for figure, rule, dim, n in (days.exclude(figure=COMPUTED).order_by()
                                         .values_list("figure", "rule", "dim").annotate(n=Sum("count")))]
    waits: dict[tuple, Counter] = defaultdict(Counter)
    for figure, rule, dim, histogram in (days.filter(figure__in=(FIRST_REVIEW, APPROVAL))
                                         .values_list("figure", "rule", "dim", "waits")):
        waits[(figure, rule, dim)].update(histogram)
    for row in rows:
        row.waits = dict(waits.get((row.figure, row.rule, row.dim), {}))
    return _replace(DailyFigure.Span.MONTH, first, rows)


def _first_day_with_data() -> date | None:
    firsts = [at for at in (Violation.objects.aggregate(at=Min("reported_at"))["at"],
                            Case.objects.aggregate(at=Min("opened_at"))["at"]) if at is not None]
    return min(firsts).astimezone(UTC).date() if firsts else None


def metrics_rollup(*, since: date | None = None, until: date | None = None, now: datetime | None = None) -> list[date]:
    """Roll up the days from ``since`` to ``until`` (inclusive; default: from the day before the last one rolled
    up, or the first day with data, to today); the days done. Idempotent: run by beat every
    ``METRICS_ROLLUP_INTERVAL_SECONDS``, so the figures of today are at most that old."""
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    until = min(until or today, today)
    if since is None:
        last = (DailyFigure.objects.filter(span=DailyFigure.Span.DAY, figure=COMPUTED)
                .aggregate(day=Max("day"))["day"])
        since = (min(last, today) - timedelta(days=1)) if last else (_first_day_with_data() or today)
    days = []
    day = since
    while day <= until:
        rollup_day(day, now=now)
        days.append(day)
        if day == until or next_month(day) == day + timedelta(days=1):
            # The month is summed once its days in this run are done: a run stopped half way (a time limit)
            # leaves no month short of days it counted, and the next run starts again before where it stopped.
            rollup_month(month_start(day), now=now)
        day += timedelta(days=1)
    return days
