"""The console's list filters (the case queue's, the outbox's, the audit log's) and a paginator that never
counts a huge table."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.functional import cached_property

from enforcement import notifications
from enforcement.actors import ROLE_AGENT, ROLE_LEAD
from enforcement.models import (
    OPEN_CASE_STATUSES,
    Appeal,
    CaseStatus,
    EnforcementAction,
    Rule,
    Severity,
    Violation,
    overdue_q,
)


class CappedCountPaginator(Paginator):
    """Counts at most ``cap`` rows (``SELECT COUNT(*) FROM (... LIMIT cap+1)``), so a page stays cheap
    on a table of millions; beyond the cap the list says "more than" and asks for a narrower filter."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        counted = self.object_list.order_by()[: self.cap + 1].count()
        self.capped = counted > self.cap
        return min(counted, self.cap)

    capped = False


# --------------------------------------------------------------------------- case queue filters


class CaseStatusFilter(admin.SimpleListFilter):
    """Open cases by default; closed ones only when asked for."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("all", "Any, including closed"), *CaseStatus.choices]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset.filter(status__in=OPEN_CASE_STATUSES)
        if value == "all":
            return queryset
        if value in CaseStatus.values:
            return queryset.filter(status=value)
        return queryset

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Open (not closed)",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }


class SeverityFilter(admin.SimpleListFilter):
    title = "severity"
    parameter_name = "severity"

    def lookups(self, request, model_admin):
        return list(reversed(Severity.choices))

    def queryset(self, request, queryset):
        if self.value() in Severity.values:
            return queryset.filter(severity=self.value())
        return queryset


class RuleFilter(admin.SimpleListFilter):
    title = "rule"
    parameter_name = "rule"

    def lookups(self, request, model_admin):
        return [(code, code) for code in Rule.objects.order_by("code").values_list("code", flat=True)]

    def queryset(self, request, queryset):
        if self.value():
            # The rule's id first, then EXISTS on (case_id, rule_id): an index probe per case, not a join on the
            # rule's code across every violation.
            rule_id = Rule.objects.filter(code=self.value()).values_list("pk", flat=True).first()
            if rule_id is None:
                return queryset.none()
            return queryset.filter(Exists(Violation.objects.filter(case_id=OuterRef("pk"), rule_id=rule_id)))
        return queryset


def assignable_staff():
    """Active staff who work cases (agents, leads, superusers), for assignment."""
    return (
        get_user_model().objects.filter(is_active=True, is_staff=True)
        .filter(Q(groups__name__in=[ROLE_AGENT, ROLE_LEAD]) | Q(is_superuser=True))
        .distinct()
        .order_by("username")
    )


class AssigneeFilter(admin.SimpleListFilter):
    title = "assignee"
    parameter_name = "assignee"

    def lookups(self, request, model_admin):
        staff = [(str(user.pk), user.get_username()) for user in assignable_staff()]
        return [("me", "Assigned to me"), ("none", "Unassigned"), *staff]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "me":
            return queryset.filter(assignee=request.user)
        if value == "none":
            return queryset.filter(assignee__isnull=True)
        if value and value.isdigit() and len(value) <= 18:  # a longer number is no user's id
            return queryset.filter(assignee_id=int(value))
        return queryset


class OverdueFilter(admin.SimpleListFilter):
    title = "review deadline"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Overdue"), ("no", "Not overdue"), ("reviewed", "Reviewed")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(overdue_q(now))
        if self.value() == "no":
            return queryset.filter(Q(review_due_at__gte=now) | Q(review_due_at__isnull=True))
        if self.value() == "reviewed":
            return queryset.filter(review_due_at__isnull=True)
        return queryset


class AwaitingFilter(admin.SimpleListFilter):
    title = "awaiting a lead"
    parameter_name = "awaiting"

    def lookups(self, request, model_admin):
        return [("approval", "Action awaiting approval"), ("review", "Act-first review")]

    def queryset(self, request, queryset):
        if self.value() == "approval":
            return queryset.filter(
                Exists(EnforcementAction.objects.filter(
                    case_id=OuterRef("pk"), status=EnforcementAction.Status.AWAITING_APPROVAL
                ))
            )
        if self.value() == "review":
            return queryset.filter(needs_lead_review=True)
        return queryset


class AppealedFilter(admin.SimpleListFilter):
    title = "appeal"
    parameter_name = "appealed"

    def lookups(self, request, model_admin):
        return [("pending", "Appeal waiting"), ("any", "Ever appealed")]

    def queryset(self, request, queryset):
        appeals = Appeal.objects.filter(case_id=OuterRef("pk"))
        if self.value() == "pending":
            return queryset.filter(Exists(appeals.filter(status=Appeal.Status.PENDING)))
        if self.value() == "any":
            return queryset.filter(Exists(appeals))
        return queryset


# --------------------------------------------------------------------------- outbox and audit log filters


class TemplateFilter(admin.SimpleListFilter):
    title = "template"
    parameter_name = "template"

    def lookups(self, request, model_admin):
        return [(name, name) for name in notifications.TEMPLATES]

    def queryset(self, request, queryset):
        return queryset.filter(template=self.value()) if self.value() else queryset


class VerbFamilyFilter(admin.SimpleListFilter):
    title = "what"
    parameter_name = "family"
    FAMILIES = ["case", "violation", "action", "appeal", "notification", "account", "key", "rule", "service_token"]

    def lookups(self, request, model_admin):
        return [(family, family.replace("_", " ")) for family in self.FAMILIES]

    def queryset(self, request, queryset):
        if self.value() in self.FAMILIES:
            return queryset.filter(verb__startswith=f"{self.value()}.")
        return queryset
