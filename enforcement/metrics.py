"""The team's figures: review times, the SLA, actions, appeals (a period), and gauges of the moment.

Reads shared by the API (``/api/v1/metrics/summary/``, ``/metrics``) and the admin's charts (``/admin/metrics/``).
Each is a handful of grouped queries, whatever the size of the tables' history in the period.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone

from enforcement import sla
from enforcement.models import (
    ActionKind,
    ActionStatus,
    Appeal,
    AuditEvent,
    Case,
    EnforcementAction,
    Notification,
    Severity,
    Violation,
)

DEFAULT_PERIOD = timedelta(days=30)
OUTBOX_STATUSES = (Notification.Status.PENDING, Notification.Status.FAILED)


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (no interpolation: a figure someone actually waited); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil(n * fraction), at least the first
    return ordered[int(rank) - 1]


def period(since: datetime | None, until: datetime | None, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    until = until or now or timezone.now()
    return since or until - DEFAULT_PERIOD, until


def _first_reviews(case_ids) -> tuple[dict[int, datetime], dict[int, str]]:
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


def summary(*, since: datetime, until: datetime, now: datetime | None = None) -> dict:
    """Cases opened in [since, until): time to first review and the SLA; actions applied, appeals decided in it.

    A case's first review is the earlier of its first ``case.reviewed`` event and the first action a person
    proposed on it; its deadline is the one in force when it was reviewed (recorded with ``case.reviewed``), else
    its severity's SLA from its opening. A case not reviewed and past its deadline is a breach too."""
    now = now or timezone.now()
    cases = {c["id"]: c for c in Case.objects.filter(opened_at__gte=since, opened_at__lt=until)
             .values("id", "opened_at", "severity", "review_due_at")}
    reviewed, deadline_at_review = _first_reviews(cases)
    waits, breaches, on_time = [], 0, 0
    for case_id, case in cases.items():
        recorded = deadline_at_review.get(case_id)
        deadline = (datetime.fromisoformat(recorded) if recorded
                    else sla.review_deadline(case["severity"], case["opened_at"],
                                             sla_hours=settings.ENFORCEMENT["SLA_HOURS"]))
        if case_id in reviewed:
            waits.append((reviewed[case_id] - case["opened_at"]).total_seconds())
            if reviewed[case_id] > deadline:
                breaches += 1
            else:
                on_time += 1
        elif case["review_due_at"] is not None and case["review_due_at"] < now:
            breaches += 1

    applied = EnforcementAction.objects.filter(applied_at__gte=since, applied_at__lt=until)
    by_kind = dict(applied.order_by().values_list("kind").annotate(n=Count("id")))
    by_rule: dict[str, int] = {}
    for decided_under in applied.values_list("decided_under", flat=True):
        for code in (decided_under or {}).get("rules") or {}:
            by_rule[code] = by_rule.get(code, 0) + 1
    decided = Appeal.objects.filter(decided_at__gte=since, decided_at__lt=until).exclude(status=Appeal.Status.PENDING)
    appeal_counts = dict(decided.order_by().values_list("status").annotate(n=Count("id")))
    n_decided = sum(appeal_counts.values())
    overturned = appeal_counts.get(Appeal.Status.OVERTURNED, 0)
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "review": {
            "time_to_first_review_p50_s": percentile(waits, 0.5),
            "time_to_first_review_p90_s": percentile(waits, 0.9),
        },
        "sla": {"breaches": breaches, "on_time": on_time},
        "actions": {"by_kind": dict(sorted(by_kind.items())), "by_rule": dict(sorted(by_rule.items()))},
        "appeals": {
            "decided": n_decided, "overturned": overturned,
            "overturn_rate": round(overturned / n_decided, 4) if n_decided else None,
        },
    }


def gauges(*, now: datetime | None = None) -> dict:
    """The state of the moment, for Prometheus and the charts: four grouped queries."""
    now = now or timezone.now()
    outbox = dict(Notification.objects.filter(status__in=OUTBOX_STATUSES)
                  .order_by().values_list("status").annotate(n=Count("id")))
    actions = {(kind, status): n for kind, status, n in (
        EnforcementAction.objects.filter(status__in=[ActionStatus.APPLIED, ActionStatus.FAILED]).order_by()
        .values_list("kind", "status").annotate(n=Count("id")))}
    open_cases = dict(Case.objects.open().order_by().values_list("severity").annotate(n=Count("id")))
    return {
        "outbox": {status: outbox.get(status, 0) for status in OUTBOX_STATUSES},
        "actions": {status: {kind: actions.get((kind, status), 0) for kind in ActionKind.values}
                    for status in (ActionStatus.APPLIED, ActionStatus.FAILED)},
        "sla_breaches": Case.objects.overdue(now).count(),
        "open_cases": {severity: open_cases.get(severity, 0) for severity in Severity.values},
    }


REPORT_KINDS = list(ActionKind.values)
REPORT_COLUMNS = ["month", "rule", "reports", *[f"actions_{kind}" for kind in REPORT_KINDS], "appeals_decided",
                  "appeals_overturned", "median_time_to_first_review_seconds"]


def monthly_report(year: int) -> list[list]:
    """The transparency report of a calendar year (UTC): a row per month and rule with anything in it, in
    ``REPORT_COLUMNS``' order. Reports by when they were received; actions by when applied, under the rules they
    were decided under; appeals by when decided, under their action's rules; the median wait for a first review
    over the cases opened in the month with a report of the rule. A handful of queries, whatever the year holds."""
    start = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    rows: dict[tuple[int, str], dict] = {}

    def row(month: int, rule: str) -> dict:
        return rows.setdefault((month, rule), {"reports": 0, "kinds": {}, "decided": 0, "overturned": 0,
                                               "waits": []})

    for at, rule in (Violation.objects.filter(reported_at__gte=start, reported_at__lt=end)
                     .values_list("reported_at", "rule__code")):
        row(at.astimezone(UTC).month, rule)["reports"] += 1
    for at, kind, decided_under in (EnforcementAction.objects.filter(applied_at__gte=start, applied_at__lt=end)
                                    .values_list("applied_at", "kind", "decided_under")):
        for rule in (decided_under or {}).get("rules") or {}:
            kinds = row(at.astimezone(UTC).month, rule)["kinds"]
            kinds[kind] = kinds.get(kind, 0) + 1
    for at, status, decided_under in (Appeal.objects.filter(decided_at__gte=start, decided_at__lt=end)
                                      .exclude(status=Appeal.Status.PENDING)
                                      .values_list("decided_at", "status", "action__decided_under")):
        for rule in (decided_under or {}).get("rules") or {}:
            entry = row(at.astimezone(UTC).month, rule)
            entry["decided"] += 1
            entry["overturned"] += status == Appeal.Status.OVERTURNED
    opened = dict(Case.objects.filter(opened_at__gte=start, opened_at__lt=end).values_list("id", "opened_at"))
    reviewed, _ = _first_reviews(list(opened))
    case_rules = set(Violation.objects.filter(case_id__in=list(reviewed)).values_list("case_id", "rule__code"))
    for case_id, rule in case_rules:
        row(opened[case_id].astimezone(UTC).month, rule)["waits"].append(
            (reviewed[case_id] - opened[case_id]).total_seconds())
    made = []
    for (month, rule), entry in sorted(rows.items()):
        median = percentile(entry["waits"], 0.5)
        made.append([f"{year}-{month:02d}", rule, entry["reports"],
                     *[entry["kinds"].get(kind, 0) for kind in REPORT_KINDS], entry["decided"], entry["overturned"],
                     "" if median is None else round(median)])
    return made
