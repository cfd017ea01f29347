"""The console's admin site: the front page shows the trust-and-safety team's day."""

import csv
import io
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseBadRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from enforcement import metrics, notifications
from enforcement.actors import MANAGE_TOKENS
from enforcement.admin import charts, second_factor
from enforcement.models import ActionKind, Appeal, AuditEvent, Case, EnforcementAction, Notification, Source


def team_day(user, *, now=None) -> list[dict]:
    """The front page's counters: what needs someone today, each with a link to the list behind it."""
    now = now or timezone.now()
    open_cases = Case.objects.open()
    case_list = reverse("admin:enforcement_case_changelist")
    action_list = reverse("admin:enforcement_enforcementaction_changelist")
    tiles = [
        {
            "label": "My open cases",
            "count": open_cases.filter(assignee=user).count(),
            "url": f"{case_list}?assignee=me",
            "tone": "info",
        },
        {
            "label": "Overdue cases",
            "count": Case.objects.overdue(now).count(),
            "url": f"{case_list}?overdue=yes",
            "tone": "danger",
        },
        {
            "label": "Awaiting approval",
            "count": EnforcementAction.objects.filter(status=EnforcementAction.Status.AWAITING_APPROVAL).count(),
            "url": reverse("admin:enforcement_enforcementaction_approvals"),
            "tone": "warning",
        },
        {
            "label": "Act-first reviews",
            "count": open_cases.filter(needs_lead_review=True).count(),
            "url": f"{case_list}?awaiting=review",
            "tone": "warning",
        },
        {
            "label": "Appeals waiting",
            "count": Appeal.objects.filter(status=Appeal.Status.PENDING).count(),
            "url": reverse("admin:enforcement_appeal_queue"),
            "tone": "warning",
        },
        {
            "label": "Failed actions",
            "count": EnforcementAction.objects.filter(status=EnforcementAction.Status.FAILED).count(),
            "url": f"{action_list}?status__exact=failed",
            "tone": "danger",
        },
        {
            "label": "Failed emails",
            "count": Notification.objects.filter(status=Notification.Status.FAILED).count(),
            "url": f"{reverse('admin:enforcement_notification_changelist')}?status__exact=failed",
            "tone": "danger",
        },
        {
            # Told here, not by email: when notices are stuck, the mail server may be why.
            "label": f"Customer notices unsent after {int(notifications.STUCK_AFTER.total_seconds() // 60)} min",
            "count": notifications.stuck_customer_notices(now=now),
            "url": f"{reverse('admin:enforcement_notification_changelist')}?status__exact=pending",
            "tone": "danger",
        },
    ]
    if user.has_perm("enforcement.view_source") or user.has_perm(f"enforcement.{MANAGE_TOKENS}"):
        tiles.append({
            # A detector whose precision fell below the floor: its critical reports wait for a lead.
            "label": "Detectors without act-first",
            "count": Source.objects.filter(act_first_withheld_at__isnull=False).count(),
            "url": f"{reverse('admin:enforcement_source_changelist')}?act_first_withheld_at__isempty=0",
            "tone": "warning",
        })
    return tiles


# What the team decided (the audit log's verbs of a person's decision), for the front page.
DECISION_VERBS = {
    "action.proposed": "proposed an action on",
    "action.approved": "approved an action on",
    "action.confirmed": "confirmed an act-first suspension on",
    "action.cancelled": "cancelled an action on",
    "action.reverted": "reverted an action on",
    "appeal.upheld": "upheld an appeal on",
    "appeal.overturned": "overturned an action on appeal on",
    "case.resolved": "resolved",
    "violation.dismissed": "dismissed a violation on",
}
RECENT_DECISIONS = 15
RECENT_DECISIONS_DAYS = 14


def recent_decisions(*, now=None) -> list[AuditEvent]:
    """The team's latest decisions: staff members' decision events of the last two weeks, newest first (the
    audit log's ``created_at`` index, read backwards and bounded by the window)."""
    now = now or timezone.now()
    events = list(
        AuditEvent.objects.filter(created_at__gte=now - timedelta(days=RECENT_DECISIONS_DAYS),
                                  actor_type=AuditEvent.ActorType.USER, verb__in=list(DECISION_VERBS))
        .only("created_at", "actor_label", "verb", "case_id", "note", "target_type", "target_id")
        .order_by("-created_at", "-id")[:RECENT_DECISIONS]
    )
    for event in events:
        event.what = DECISION_VERBS[event.verb]
    return events


class ConsoleAdminSite(admin.AdminSite):
    site_header = "Millimetric Trust & Safety"
    site_title = "T&S console"
    index_title = "Today"
    site_url = None  # the console is the site: no "view site" link
    index_template = "admin/console_index.html"
    enable_nav_sidebar = False  # the queue's columns need the width

    def index(self, request, extra_context=None):
        context = dict(extra_context or {})
        if request.user.has_perm("enforcement.view_case"):
            from enforcement.admin import queue  # the queue's admin registers on this site: imported once it exists

            context["team_day"] = team_day(request.user)
            context["view_tiles"] = queue.view_tiles(self._registry[Case], request)
            context["recent_decisions"] = recent_decisions()
            context["recent_decisions_days"] = RECENT_DECISIONS_DAYS
        return super().index(request, context)

    def get_urls(self):
        def page(view):
            return self.admin_view(lambda request: view(self, request))

        return [
            path("second-factor/", page(second_factor.verify_page), name="second_factor_verify"),
            path("second-factor/enrol/", page(second_factor.enrol_page), name="second_factor_enrol"),
            path("second-factor/mine/", page(second_factor.devices_page), name="second_factor_devices"),
            path("second-factor/recovery-codes/", page(second_factor.recovery_codes_page),
                 name="second_factor_recovery_codes"),
            path("second-factor/staff/", page(second_factor.staff_page), name="second_factor_staff"),
            path("metrics/", self.admin_view(self.metrics_view), name="metrics"),
            path("metrics/report.csv", self.admin_view(self.metrics_report_view), name="metrics_report"),
            *super().get_urls(),
        ]

    def metrics_view(self, request):
        """The figures of ``/api/v1/metrics/summary/`` (a period of UTC days, default the last 30) and ``/metrics``
        as charts drawn on the server."""
        if not request.user.has_perm("enforcement.view_case"):
            raise PermissionDenied
        try:
            first, last = metrics_days(request.GET, today=timezone.now().astimezone(UTC).date())
        except ValueError as exc:
            return HttpResponseBadRequest(str(exc), content_type="text/plain")
        since = datetime.combine(first, time.min, tzinfo=UTC)
        until = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
        summary, gauges = metrics.summary(since=since, until=until), metrics.gauges(actions=False)
        context = {**self.each_context(request), "title": "Metrics", "charts": metrics_charts(summary, gauges),
                   "summary": summary, "gauges": gauges, "report_year": last.year, "first": first, "last": last,
                   "presets": [{"days": n, "label": f"{n} days", "current": (last - first).days + 1 == n}
                               for n in (7, 30, 90, 365)]}
        return TemplateResponse(request, "admin/enforcement/metrics.html", context)

    def metrics_report_view(self, request):
        """The transparency report of a year (``?year=``, default this one) as CSV: a row per month and rule."""
        if not request.user.has_perm("enforcement.view_case"):
            raise PermissionDenied
        raw = request.GET.get("year") or str(timezone.now().year)
        if not (raw.isascii() and raw.isdigit() and len(raw) == 4 and 2000 <= int(raw) <= 9998):
            return HttpResponseBadRequest("year: a year such as 2026.", content_type="text/plain")
        from enforcement.admin.audit import csv_cell  # audit registers on this site: imported once it exists

        year = int(raw)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(metrics.REPORT_COLUMNS)
        for row in metrics.monthly_report(year):
            writer.writerow([csv_cell(cell) for cell in row])
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="transparency-report-{year}.csv"'
        return response


BAR_AREA = 260  # px of the widest bar; labels take the left 170 px
MAX_METRICS_DAYS = metrics.MAX_PERIOD.days


def metrics_days(query, *, today: date) -> tuple[date, date]:
    """The metrics page's period: ``?days=N`` (the last N days to today), or ``?since=`` and ``?until=`` (days,
    inclusive); default the last 30 days. ValueError with a plain message for the staff member."""
    def day(name: str) -> date | None:
        raw = (query.get(name) or "").strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"{name}: a day such as {today.isoformat()}.") from None

    raw_days = (query.get("days") or "").strip()
    if raw_days:
        if not (raw_days.isascii() and raw_days.isdigit() and 1 <= int(raw_days) <= MAX_METRICS_DAYS):
            raise ValueError(f"days: a number of days from 1 to {MAX_METRICS_DAYS}.")
        return today - timedelta(days=int(raw_days) - 1), today
    last = day("until") or today
    try:
        first = day("since") or last - timedelta(days=29)
        last + timedelta(days=1)  # the period ends at the start of the next day
    except OverflowError:
        raise ValueError("The period is out of range: days from 0001-01-01 to 9999-12-30.") from None
    if first > last:
        raise ValueError("since: the first day must not be after the last.")
    if (last - first).days + 1 > MAX_METRICS_DAYS:
        raise ValueError(f"The period is too long: at most {MAX_METRICS_DAYS} days.")
    return first, last


def _minutes(seconds) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def metrics_charts(summary: dict, gauges: dict) -> list[dict]:
    """The metrics page's charts, from ``metrics.summary`` and ``metrics.gauges``."""
    days = [entry["day"] for entry in summary["per_day"]]

    def per_day(key: str) -> dict[str, list[int]]:
        names = sorted({name for entry in summary["per_day"] for name in entry[key]})
        return {name: [entry[key].get(name, 0) for entry in summary["per_day"]] for name in names}

    review, approval, sla = summary["review"], summary["approval"], summary["sla"]
    appeals = summary["appeals"]["by_rule"]
    kinds_used = {kind for kinds in summary["actions"]["by_rule_and_kind"].values() for kind in kinds}
    return [
        charts.daily_chart("Reports per day, by rule", days, per_day("reports_by_rule")),
        charts.daily_chart("Reports per day, by source", days, per_day("reports_by_source")),
        charts.daily_chart("Cases opened and closed per day", days, {
            "opened": [entry["cases_opened"] for entry in summary["per_day"]],
            "closed": [entry["cases_closed"] for entry in summary["per_day"]]}, stacked=False),
        charts.grouped_bars("Time to first review by severity (minutes)", {
            f"{sev} ({row['reviewed']})": {"p50": _minutes(row["p50_s"]), "p90": _minutes(row["p90_s"])}
            for sev, row in review["by_severity"].items()}, unit=" min"),
        charts.grouped_bars("Time to approval by kind (minutes)", {
            f"{kind} ({row['approved']})": {"p50": _minutes(row["p50_s"]), "p90": _minutes(row["p90_s"])}
            for kind, row in approval["by_kind"].items()}, unit=" min"),
        charts.grouped_bars("Review SLA by severity", {
            sev: {"on time": row["on_time"], "breached": row["breaches"]} for sev, row in sla["by_severity"].items()}),
        bar_chart("Actions applied, by kind", summary["actions"]["by_kind"]),
        charts.grouped_bars("Actions applied, by rule", {
            rule: {kind: kinds.get(kind, 0) for kind in ActionKind.values if kind in kinds_used}
            for rule, kinds in summary["actions"]["by_rule_and_kind"].items()}),
        charts.grouped_bars("Appeals decided, by rule (overturn rate)", {
            f"{rule} ({round(row['overturn_rate'] * 100)}%)": {
                "upheld": row["decided"] - row["overturned"], "overturned": row["overturned"]}
            for rule, row in appeals.items()}),
        charts.grouped_bars("Staff workload", {
            row["staff"]: {"cases handled": row["cases_handled"], "actions proposed": row["actions_proposed"],
                           "approvals": row["approvals"], "appeals decided": row["appeals_decided"]}
            for row in summary["staff"]}),
        charts.grouped_bars("Detector precision (%)", {
            f"{row['source']}{'' if row['act_first_allowed'] else ' (no act-first)'}": {
                "precision": None if row["precision"] is None else round(row["precision"] * 100, 1)}
            for row in summary["detectors"]}, unit="%", marker=settings.DETECTOR_MIN_PRECISION * 100,
            marker_label=f"act-first floor {settings.DETECTOR_MIN_PRECISION:.0%}"),
        bar_chart("Open cases by severity (now)", gauges["open_cases"]),
        bar_chart("Email outbox (now)", gauges["outbox"]),
    ]


def bar_chart(title: str, figures: dict) -> dict:
    """A horizontal bar chart's geometry, drawn as SVG by the template (no script, no CDN)."""
    top = max([value for value in figures.values() if value] or [1])
    bars = [{"label": str(label), "value": value, "y": 8 + index * 26,
             "width": round(BAR_AREA * (value or 0) / top, 1)} for index, (label, value) in enumerate(figures.items())]
    return {"kind": "bars", "title": title, "bars": bars, "height": 16 + 26 * max(len(bars), 1), "empty": not bars}
