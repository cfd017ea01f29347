"""The console's admin site: the front page shows the trust-and-safety team's day."""

from django.contrib import admin
from django.urls import path, reverse
from django.utils import timezone

from enforcement import notifications
from enforcement.admin import second_factor
from enforcement.models import Appeal, Case, EnforcementAction, Notification


def team_day(user, *, now=None) -> list[dict]:
    """The front page's counters: what needs someone today, each with a link to the list behind it."""
    now = now or timezone.now()
    open_cases = Case.objects.open()
    case_list = reverse("admin:enforcement_case_changelist")
    action_list = reverse("admin:enforcement_enforcementaction_changelist")
    return [
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
            context["team_day"] = team_day(request.user)
        return super().index(request, context)

    def get_urls(self):
        def page(view):
            return self.admin_view(lambda request: view(self, request))

        return [
            path("second-factor/", page(second_factor.verify_page), name="second_factor_verify"),
            path("second-factor/enrol/", page(second_factor.enrol_page), name="second_factor_enrol"),
            path("second-factor/mine/", page(second_factor.devices_page), name="second_factor_devices"),
            path("second-factor/staff/", page(second_factor.staff_page), name="second_factor_staff"),
            *super().get_urls(),
        ]
