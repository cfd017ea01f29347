"""The team's figures: review times, the SLA, actions, appeals (a period), and gauges of the moment.

Reads shared by the API (``/api/v1/metrics/summary/``, ``/metrics``) and the admin's charts (``/admin/metrics/``).
Each is a handful of grouped queries, whatever the size of the tables' history in the period.
"""

import logging
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from accounts import edge
from accounts.models import APIKey
from enforcement.models import (
    ActionKind,
    ActionStatus,
    Appeal,
    Case,
    DailyFigure,
    EnforcementAction,
    Notification,
    Severity,
    Source,
    Violation,
)
from enforcement.services import detectors, rollups

log = logging.getLogger(__name__)
DEFAULT_PERIOD = timedelta(days=30)
MAX_PERIOD = timedelta(days=731)  # the longest period a summary covers (two years and a day)
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


def days_of(since: datetime, until: datetime) -> tuple[date, date]:
    """The UTC days a period covers: from since's day to the day of its last instant (until is exclusive)."""
    return since.astimezone(UTC).date(), (until - timedelta(microseconds=1)).astimezone(UTC).date()


def histogram_percentile(histogram: dict, fraction: float) -> int | None:
    """Nearest-rank percentile of a wait histogram ({bucket's lower bound: count}): the bucket it falls in."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(1, -(-total * fraction // 1))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return bucket
    return None  # unreachable


def _waits(histogram: dict) -> dict:
    return {"p50_s": histogram_percentile(histogram, 0.5), "p90_s": histogram_percentile(histogram, 0.9)}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summary(*, since: datetime, until: datetime, now: datetime | None = None) -> dict:
    """The team's figures over the UTC days of [since, until), read from the daily roll-up
    (``services.rollups``: each fact on the day it happened) in six queries, plus one per detector shown.

    Time to first review: the first reviews made in the period (from the case's opening to its first
    ``case.reviewed`` event or first staff action), by severity. SLA: those first reviews by their deadline
    (``on_time``) or after it, plus the cases not reviewed yet whose deadline passed in the period (``breaches``).
    Time to approval: from the proposal to the approval, for the approvals of the period. Percentiles are
    nearest-rank over the roll-up's histograms: to the minute under an hour, five minutes under a day, the hour
    beyond (``wait_bucket``, rounded down)."""
    now = now or timezone.now()
    first, last = days_of(since, until)
    start, end = datetime.combine(first, time.min, tzinfo=UTC), datetime.combine(last, time.min, tzinfo=UTC)
    end += timedelta(days=1)
    per_day_figures = (rollups.REPORTS_BY_RULE, rollups.REPORTS_BY_SOURCE, rollups.CASES_OPENED,
                       rollups.CASES_CLOSED)
    timed = (rollups.FIRST_REVIEW, rollups.APPROVAL)

    # The figures per day: a row a day, figure and breakdown.
    day_list = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    per_day = {day: {"day": day.isoformat(), "reports": 0, "reports_by_rule": {}, "reports_by_source": {},
                     "cases_opened": 0, "cases_closed": 0} for day in day_list}
    totals: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    days = DailyFigure.objects.filter(span=DailyFigure.Span.DAY, day__gte=first, day__lte=last)
    for day, figure, rule, dim, n in (days.filter(figure__in=per_day_figures).order_by()
                                      .values_list("day", "figure", "rule", "dim", "count")):
        entry = per_day[day]
        if figure == rollups.REPORTS_BY_RULE:
            entry["reports_by_rule"][rule] = n
            entry["reports"] += n
        elif figure == rollups.REPORTS_BY_SOURCE:
            entry["reports_by_source"][dim] = n
        else:
            entry[figure] += n
        totals[figure][(rule, dim)] = totals[figure].get((rule, dim), 0) + n

    # The rest over the period: whole months from their month rows, the days at either end from theirs.
    covered = _span_rows(first, last).exclude(figure__in=(rollups.COMPUTED, *per_day_figures))
    for figure, rule, dim, n in (covered.exclude(figure__in=timed).order_by()
                                 .values_list("figure", "rule", "dim").annotate(n=Sum("count"))):
        totals[figure][(rule, dim)] = n
    waits = _merged_waits(covered.filter(figure__in=timed))
    rolled_up_at = days.filter(figure=rollups.COMPUTED).aggregate(at=Max("computed_at"))["at"]
    overdue = dict(Case.objects.overdue(now).filter(review_due_at__gte=start, review_due_at__lt=end).order_by()
                   .values_list("severity").annotate(n=Count("id")))

    def by(figure: str, *, rule: str | None = "", key: str = "dim") -> dict:
        out: dict[str, int] = {}
        for (r, d), n in totals[figure].items():
            if rule is not None and r != rule:
                continue
            if rule is None and r == "":
                continue
            label = d if key == "dim" else r
            out[label] = out.get(label, 0) + n
        return dict(sorted(out.items()))

    reviews = waits[rollups.FIRST_REVIEW]
    all_reviews = sum(reviews.values(), Counter())
    on_time, late = by(rollups.SLA_ON_TIME), by(rollups.SLA_LATE)
    approvals = waits[rollups.APPROVAL]
    all_approvals = sum(approvals.values(), Counter())
    appeals = by(rollups.APPEALS)
    appeals_by_rule: dict[str, dict] = {}
    for (rule, status), n in totals[rollups.APPEALS].items():
        if rule:
            entry = appeals_by_rule.setdefault(rule, {"decided": 0, "overturned": 0})
            entry["decided"] += n
            entry["overturned"] += n if status == Appeal.Status.OVERTURNED else 0
    for entry in appeals_by_rule.values():
        entry["overturn_rate"] = _rate(entry["overturned"], entry["decided"])
    decided = sum(appeals.values())
    overturned = appeals.get(Appeal.Status.OVERTURNED, 0)
    actions_by_rule_kind: dict[str, dict[str, int]] = {}
    for (rule, kind), n in sorted(totals[rollups.ACTIONS].items()):
        if rule:
            actions_by_rule_kind.setdefault(rule, {})[kind] = n

    staff: dict[str, dict] = {}
    for figure, field in ((rollups.STAFF_CASES, "cases_handled"), (rollups.STAFF_PROPOSED, "actions_proposed"),
                          (rollups.STAFF_APPROVED, "approvals"), (rollups.STAFF_APPEALS, "appeals_decided")):
        for username, n in by(figure).items():
            staff.setdefault(username, {"staff": username, "cases_handled": 0, "actions_proposed": 0,
                                        "approvals": 0, "appeals_decided": 0})[field] = n
    reports_by_source = by(rollups.REPORTS_BY_SOURCE)
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "days": {"first": first.isoformat(), "last": last.isoformat()},
        "rolled_up_at": rolled_up_at.isoformat() if rolled_up_at else None,
        "reports": {
            "total": sum(reports_by_source.values()),
            "by_rule": by(rollups.REPORTS_BY_RULE, rule=None, key="rule"),
            "by_source": reports_by_source,
        },
        "cases": {
            "opened": sum(by(rollups.CASES_OPENED).values()), "closed": sum(by(rollups.CASES_CLOSED).values()),
            "opened_by_severity": {sev: by(rollups.CASES_OPENED).get(sev, 0) for sev in Severity.values},
        },
        "per_day": list(per_day.values()),
        "review": {
            "time_to_first_review_p50_s": histogram_percentile(all_reviews, 0.5),
            "time_to_first_review_p90_s": histogram_percentile(all_reviews, 0.9),
            "reviewed": sum(all_reviews.values()),
            "by_severity": {sev: {"reviewed": sum(reviews[sev].values()), **_waits(reviews[sev])}
                            for sev in Severity.values},
        },
        "approval": {
            "time_to_approval_p50_s": histogram_percentile(all_approvals, 0.5),
            "time_to_approval_p90_s": histogram_percentile(all_approvals, 0.9),
            "approved": sum(all_approvals.values()),
            "by_kind": {kind: {"approved": sum(approvals[kind].values()), **_waits(approvals[kind])}
                        for kind in ActionKind.values if approvals[kind]},
        },
        "sla": {
            "breaches": sum(late.values()) + sum(overdue.values()), "on_time": sum(on_time.values()),
            "late_reviews": sum(late.values()), "overdue_unreviewed": sum(overdue.values()),
            "by_severity": {sev: {"breaches": late.get(sev, 0) + overdue.get(sev, 0), "on_time": on_time.get(sev, 0)}
                            for sev in Severity.values},
        },
        "actions": {
            "by_kind": by(rollups.ACTIONS),
            "by_rule": {rule: sum(kinds.values()) for rule, kinds in actions_by_rule_kind.items()},
            "by_rule_and_kind": actions_by_rule_kind,
        },
        "appeals": {
            "decided": decided, "overturned": overturned, "overturn_rate": _rate(overturned, decided),
            "by_rule": dict(sorted(appeals_by_rule.items())),
        },
        "staff": sorted(staff.values(), key=lambda row: row["staff"]),
        "detectors": detector_figures(reports_by_source),
    }


def _span_rows(first: date, last: date):
    """The roll-up's rows covering the days first..last: the month rows of the whole months among them, the day
    rows of the other days."""
    months_from = rollups.month_start(first) if first.day == 1 else rollups.next_month(first)
    months_to = months_from  # exclusive
    while rollups.next_month(months_to) <= last + timedelta(days=1):
        months_to = rollups.next_month(months_to)
    day_rows = Q(span=DailyFigure.Span.DAY, day__gte=first, day__lte=last)
    if months_to == months_from:
        return DailyFigure.objects.filter(day_rows)
    return DailyFigure.objects.filter(
        (day_rows & ~Q(day__gte=months_from, day__lt=months_to))
        | Q(span=DailyFigure.Span.MONTH, day__gte=months_from, day__lt=months_to))


def _merged_waits(rows) -> dict[str, dict[str, Counter]]:
    """The wait histograms of ``rows`` summed by figure and breakdown: on PostgreSQL in the query (jsonb_each),
    elsewhere here."""
    waits: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    if connection.vendor == "postgresql":
        sql, params = rows.order_by().values("id").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT f.figure, f.dim, w.key::integer, sum(w.value::integer) FROM enforcement_dailyfigure f "
                f"CROSS JOIN LATERAL jsonb_each_text(f.waits) w WHERE f.id IN ({sql}) GROUP BY 1, 2, 3", params)
            for figure, dim, bucket, n in cursor.fetchall():
                waits[figure][dim][bucket] += n
        return waits
    for figure, dim, histogram in rows.values_list("figure", "dim", "waits"):
        waits[figure][dim].update({int(bucket): n for bucket, n in histogram.items()})
    return waits


MAX_DETECTORS = 20


def detector_figures(reports_by_source: dict[str, int]) -> list[dict]:
    """The sources that reported in the period (the most reports first, at most ``MAX_DETECTORS``) and those
    without act-first: precision over their last ``DETECTOR_MIN_DECIDED`` decided reports (two queries each)."""
    withheld = dict(Source.objects.filter(act_first_withheld_at__isnull=False).values_list("name",
                                                                                            "act_first_withheld_at"))
    names = [*withheld, *sorted(reports_by_source, key=lambda name: (-reports_by_source[name], name))]
    out = []
    for name in list(dict.fromkeys(names))[:MAX_DETECTORS]:
        recent = detectors.recent_precision(name)
        out.append({"source": name, "reports": reports_by_source.get(name, 0), "precision": recent.precision,
                    "decided": recent.recent_decided, "act_first_allowed": name not in withheld})
    return out


def gauges(*, now: datetime | None = None, actions: bool = True) -> dict:
    """The state of the moment, for Prometheus and the charts: five small queries (four without ``actions``,
    the count of every action in force, which the metrics page leaves to Prometheus: it reads the whole table)."""
    now = now or timezone.now()
    # One count per status, each on its partial index (an IN over both scans the whole table).
    outbox = {status: Notification.objects.filter(status=status).count() for status in OUTBOX_STATUSES}
    actions = {(kind, status): n for kind, status, n in (
        EnforcementAction.objects.filter(status__in=[ActionStatus.APPLIED, ActionStatus.FAILED]).order_by()
        .values_list("kind", "status").annotate(n=Count("id")))} if actions else {}
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
    reviewed, _ = rollups.first_reviews(list(opened))
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


PUBLISH_LAG_WINDOW = timedelta(hours=1)
PUBLISH_LAG_KEYS = 1000


def edge_publish_lag(*, now: datetime | None = None) -> tuple[float, int]:
    """How far the edge store is behind the database's key states: the age in seconds of the oldest change not
    yet published, and how many keys are behind, among the keys changed in the last ``PUBLISH_LAG_WINDOW`` (the
    newest ``PUBLISH_LAG_KEYS`` of them: one indexed query on ``updated_at`` and one batched read of the store).
    A key is behind when the store has no record of it or an older ``state_version``. (-1, -1) when the store
    cannot be read."""
    now = now or timezone.now()
    rows = list(APIKey.objects.filter(updated_at__gte=now - PUBLISH_LAG_WINDOW).order_by("-updated_at")
                .values_list("token_sha256", "state_version", "updated_at")[:PUBLISH_LAG_KEYS])
    if not rows:
        return 0.0, 0
    try:
        stored = edge.get_store().get_many([sha for sha, _, _ in rows])
    except edge.EdgeUnavailable as exc:
        log.warning("edge publish lag: the edge store did not answer (%s)", exc)
        return -1.0, -1
    behind = [changed for sha, version, changed in rows
              if stored.get(sha) is None or stored[sha].version < version]
    if not behind:
        return 0.0, 0
    return max(0.0, (now - min(behind)).total_seconds()), len(behind)


def reports_by_source() -> dict[str, int]:
    """Every report received, by source, from the sources' tallies (a few rows a source)."""
    return {source: row["reports"] for source, row in detectors.tallies().items()}
