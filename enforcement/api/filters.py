"""Query-string filters of the list routes (django-filter)."""

from datetime import UTC

from django import forms
from django.utils import timezone
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField

from enforcement.models import (
    ActionKind,
    ActionStatus,
    Appeal,
    AuditEvent,
    Case,
    CaseStatus,
    EnforcementAction,
    Severity,
    Violation,
    overdue_q,
)

MAX_ID = 2**63 - 1  # the largest id any database here stores; a larger one is a 400, not an overflow


class IntegerFilter(filters.NumberFilter):
    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class UTCDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant, compared in UTC: an offset the database cannot store (PostgreSQL's end at
    +-15:59) or an instant outside the years 1-9999 once in UTC is a validation error, not a server error."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None or timezone.is_naive(parsed):
            return parsed
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Out of range.", code="invalid") from None


class UTCDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


class StrictBooleanField(forms.NullBooleanField):
    """true/false (or 1/0); anything else is an error rather than silently no filter."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        if value in (True, "true", "True", "1"):
            return True
        if value in (False, "false", "False", "0"):
            return False
        raise forms.ValidationError("Must be true or false.", code="invalid")

    def validate(self, value):
        pass


class StrictBooleanFilter(filters.BooleanFilter):
    field_class = StrictBooleanField

    def __init__(self, *args, **kwargs):
        kwargs["widget"] = forms.TextInput  # the default widgets turn anything unknown into "no filter"
        super().__init__(*args, **kwargs)


class MultipleChoiceFilter(filters.MultipleChoiceFilter):
    """Any of several values of the row's own column: no ``SELECT DISTINCT`` (django-filter's default, needed
    only across a to-many join) over a wide row."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("distinct", False)
        super().__init__(*args, **kwargs)


class CaseFilter(filters.FilterSet):
    status = MultipleChoiceFilter(choices=CaseStatus.choices, help_text="Repeat for several.")
    severity = MultipleChoiceFilter(choices=Severity.choices, help_text="Repeat for several.")
    account = filters.CharFilter(field_name="account__public_id", help_text="An account's public_id.")
    assignee = filters.CharFilter(field_name="assignee__username", help_text="A staff member's username.")
    overdue = StrictBooleanFilter(method="filter_overdue", help_text="Open and past its review deadline.")

    class Meta:
        model = Case
        fields = ["status", "severity", "account", "assignee", "overdue"]

    def filter_overdue(self, queryset, name, value):
        late = overdue_q(timezone.now())
        return queryset.filter(late) if value else queryset.exclude(late)


class ViolationFilter(filters.FilterSet):
    account = filters.CharFilter(field_name="account__public_id", help_text="An account's public_id.")
    case = IntegerFilter(field_name="case_id")
    rule = filters.CharFilter(field_name="rule__code", help_text="A rule code.")
    severity = MultipleChoiceFilter(choices=Severity.choices)
    status = filters.ChoiceFilter(choices=Violation.Status.choices)
    source = filters.CharFilter()
    external_id = filters.CharFilter()

    class Meta:
        model = Violation
        fields = ["account", "case", "rule", "severity", "status", "source", "external_id"]


class ActionFilter(filters.FilterSet):
    status = MultipleChoiceFilter(choices=ActionStatus.choices)
    kind = MultipleChoiceFilter(choices=ActionKind.choices)
    case = IntegerFilter(field_name="case_id")
    account = filters.CharFilter(field_name="account__public_id")

    class Meta:
        model = EnforcementAction
        fields = ["status", "kind", "case", "account"]


class AppealFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Appeal.Status.choices)
    case = IntegerFilter(field_name="case_id")
    action = IntegerFilter(field_name="action_id")

    class Meta:
        model = Appeal
        fields = ["status", "case", "action"]


class AuditEventFilter(filters.FilterSet):
    target = filters.CharFilter(
        method="filter_target", help_text="type:id (e.g. case:12) or a type alone (e.g. action)."
    )
    actor = filters.CharFilter(field_name="actor_label", help_text="e.g. a username or token:NAME.")
    since = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte")
    verb = filters.CharFilter()
    case = IntegerFilter(field_name="case_id")

    class Meta:
        model = AuditEvent
        fields = ["target", "actor", "since", "verb", "case"]

    def filter_target(self, queryset, name, value):
        target_type, _, target_id = value.partition(":")
        queryset = queryset.filter(target_type=target_type)
        return queryset.filter(target_id=target_id) if target_id else queryset


class StatementFilter(filters.FilterSet):
    """Statements by the day their action was applied: ``since`` inclusive, ``until`` exclusive."""

    since = UTCDateTimeFilter(field_name="applied_at", lookup_expr="gte", help_text="Applied at or after (ISO 8601).")
    until = UTCDateTimeFilter(field_name="applied_at", lookup_expr="lt", help_text="Applied before (ISO 8601).")

    class Meta:
        model = EnforcementAction
        fields = ["since", "until"]


class StatementExportFilter(StatementFilter):
    # A position in the statements' order (actions and leaked-key revocations together): the view applies it.
    after = filters.CharFilter(method="by_view", help_text="The next batch: the `next` link sets it.")

    class Meta:
        model = EnforcementAction
        fields = ["since", "until", "after"]

    def by_view(self, queryset, name, value):
        return queryset
