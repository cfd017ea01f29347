"""The console's admin site: the front page shows the trust-and-safety team's day."""

import csv
import io
from datetime import timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseBadRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from enforcement import metrics, notifications
from enforcement.actors import MANAGE_TOKENS
from enforcement.admin import second_factor
from enforcement.models import Appeal, AuditEvent, Case, EnforcementAction, Notification, Source


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
        """The figures of ``/api/v1/metrics/summary/`` (last 30 days) and ``/metrics`` as bar charts."""
        if not request.user.has_perm("enforcement.view_case"):
            raise PermissionDenied
        since, until = metrics.period(None, None)
        summary, gauges = metrics.summary(since=since, until=until), metrics.gauges()
        review = summary["review"]
        charts = [
            bar_chart("Time to first review (minutes)", {
                "p50": round((review["time_to_first_review_p50_s"] or 0) / 60, 1),
                "p90": round((review["time_to_first_review_p90_s"] or 0) / 60, 1)}),
            bar_chart("Review SLA", {"on time": summary["sla"]["on_time"], "breached": summary["sla"]["breaches"]}),
            bar_chart("Actions applied, by kind", summary["actions"]["by_kind"]),
            bar_chart("Actions applied, by rule", summary["actions"]["by_rule"]),
            bar_chart("Appeals decided", {"upheld": summary["appeals"]["decided"] - summary["appeals"]["overturned"],
                                          "overturned": summary["appeals"]["overturned"]}),
            bar_chart("Open cases by severity (now)", gauges["open_cases"]),
            bar_chart("Actions in force (now)", gauges["actions"]["applied"]),
            bar_chart("Email outbox (now)", gauges["outbox"]),
        ]
        context = {**self.each_context(request), "title": "Metrics", "charts": charts, "summary": summary,
                   "gauges": gauges, "report_year": timezone.now().year}
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


def bar_chart(title: str, figures: dict) -> dict:
    """A horizontal bar chart's geometry, drawn as SVG by the template (no script, no CDN)."""
    top = max([value for value in figures.values() if value] or [1])
    bars = [{"label": str(label), "value": value, "y": 8 + index * 26,
             "width": round(BAR_AREA * (value or 0) / top, 1)} for index, (label, value) in enumerate(figures.items())]
    return {"title": title, "bars": bars, "height": 16 + 26 * max(len(bars), 1), "empty": not bars}
