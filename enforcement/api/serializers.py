"""Input serializers parse and check the shape of a request; output serializers render.

Neither holds business rules: those are in the services, which raise ``ServiceError``s
that the exception handler renders in the one error shape.
"""

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from accounts.models import Account, APIKey, KeyStatus
from enforcement.evidence import PROBLEMS, evidence_problem
from enforcement.ladder import RUNGS, SEVERITIES
from enforcement.models import (
    ActionKind,
    Appeal,
    AuditEvent,
    Case,
    Comment,
    EnforcementAction,
    Notification,
    Rule,
    Severity,
    Violation,
)
from enforcement.selectors import case_timeline
from enforcement.services import MAX_STRIKE_WINDOW_DAYS, SIMULATION_DEFAULT_DAYS, SIMULATION_MAX_DAYS
from enforcement.services.detectors import OUTCOMES

MAX_INT = 2**31 - 1  # PositiveIntegerField's ceiling on every database
MAX_TEXT = 20_000


_DATETIME = serializers.DateTimeField()


def _iso(value):
    """A datetime as every DRF field renders it (one field instance: the batch path renders thousands)."""
    return None if value is None else _DATETIME.to_representation(value)


def iso_renderer():
    """``_iso`` with the current time zone read once, for rendering many times in one response (reading it
    costs more than the rest of a time's rendering). Aware times only; others go to ``_iso``."""
    zone = _DATETIME.default_timezone()
    if zone is None or api_settings.DATETIME_FORMAT != ISO_8601:
        return _iso

    def iso(value):
        if value is None or value.tzinfo is None:
            return _iso(value)
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return iso


# --------------------------------------------------------------------------- errors


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="snake_case, stable: automation branches on it.")
    message = serializers.CharField(help_text="For a person.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors only: the problems per field (nested fields as a.b, list items as a.0.b).",
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


# --------------------------------------------------------------------------- evidence


class EvidenceField(serializers.JSONField):
    """A JSON object, bounded in size and depth, with text the database can store (``enforcement.evidence``)."""

    default_error_messages = PROBLEMS

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        problem = evidence_problem(data)
        if problem is not None:
            self.fail(problem)
        return data


# --------------------------------------------------------------------------- inventory


class AccountUpsertSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(max_length=254)


class AccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = Account
        fields = ["public_id", "name", "email", "status", "created_at", "updated_at"]
        read_only_fields = fields


class KeyUpsertSerializer(serializers.Serializer):
    account = serializers.CharField(max_length=64, help_text="The account's public_id.")
    kind = serializers.ChoiceField(choices=APIKey.Kind.choices)
    token_sha256 = serializers.RegexField(
        r"^[0-9a-f]{64}$", help_text="SHA-256 of the full token, lowercase hex. The token itself is never sent."
    )
    rate_limit_per_minute = serializers.IntegerField(min_value=1, max_value=MAX_INT)
    ip_rate_limit_per_minute = serializers.IntegerField(min_value=1, max_value=MAX_INT)
    label = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class KeySerializer(serializers.ModelSerializer):
    account = serializers.SlugRelatedField(slug_field="public_id", read_only=True)
    status = serializers.ChoiceField(choices=KeyStatus.choices, read_only=True)
    rate_limit_per_minute = serializers.IntegerField(read_only=True, help_text="Effective: after actions in force.")
    ip_rate_limit_per_minute = serializers.IntegerField(read_only=True, help_text="Effective: after actions in force.")
    base_rate_limit_per_minute = serializers.IntegerField(read_only=True, help_text="As mirrored from the platform.")
    base_ip_rate_limit_per_minute = serializers.IntegerField(read_only=True, help_text="As mirrored from the platform.")

    class Meta:
        model = APIKey
        fields = [
            "prefix", "account", "kind", "label", "status", "rate_limit_per_minute", "ip_rate_limit_per_minute",
            "base_rate_limit_per_minute", "base_ip_rate_limit_per_minute", "revoked_at", "state_version",
            "created_at", "updated_at",
        ]
        read_only_fields = fields


class StandingKeySerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=KeyStatus.choices, read_only=True)

    class Meta:
        model = APIKey
        fields = ["prefix", "kind", "status", "rate_limit_per_minute", "ip_rate_limit_per_minute"]
        read_only_fields = fields


# --------------------------------------------------------------------------- rules


class RuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Rule
        fields = ["code", "title", "default_severity", "act_first", "auto_action", "clause", "description"]
        read_only_fields = fields


class SimulationProposalSerializer(serializers.Serializer):
    """A proposed policy for one rule; a field left out keeps the rule's current value."""

    ladder_overrides = serializers.DictField(
        child=serializers.CharField(), required=False,
        help_text=f"First rung per severity, replacing the rule's overrides, e.g. {{\"medium\": \"suspend\"}}. "
        f"Severities: {', '.join(SEVERITIES)}; rungs: {', '.join(RUNGS)}.",
    )
    act_first = serializers.BooleanField(required=False)
    auto_action = serializers.BooleanField(required=False, help_text="False: never actioned automatically.")
    strike_window_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_STRIKE_WINDOW_DAYS,
        help_text="null: the default strike window.",
    )
    days = serializers.IntegerField(
        min_value=1, max_value=SIMULATION_MAX_DAYS, default=SIMULATION_DEFAULT_DAYS,
        help_text="Replay the decisions (violations of the rule) reported in this many days before now.",
    )


class SimulationDoneSerializer(serializers.Serializer):
    action = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ActionKind.choices)
    status = serializers.ChoiceField(choices=EnforcementAction.Status.choices)


class SimulationDoneSummarySerializer(serializers.Serializer):
    actioned = serializers.IntegerField(help_text="Decisions whose case was actioned after them.")
    as_current = serializers.IntegerField(source="done_as_current",
                                          help_text="... with the rung the current policy recommends.")
    as_proposed = serializers.IntegerField(source="done_as_proposed",
                                           help_text="... with the rung the proposal recommends.")


class SimulationExampleSerializer(serializers.Serializer):
    violation = serializers.IntegerField()
    case = serializers.IntegerField()
    account = serializers.CharField(help_text="The account's public_id.")
    reported_at = serializers.DateTimeField()
    severity = serializers.ChoiceField(choices=Severity.choices)
    strikes = serializers.IntegerField(help_text="The account's strikes then, in the proposal's strike window.")
    before = serializers.CharField(help_text='The current policy\'s recommendation: a rung, "<rung> (act first)" '
                                   'or "none" (a person decides).')
    after = serializers.CharField(help_text="The proposal's recommendation, in the same words.")
    reason = serializers.CharField(help_text="The ladder's reason under the proposal.")
    current_reason = serializers.CharField(help_text="The ladder's reason under the current policy.")
    done = SimulationDoneSerializer(allow_null=True, help_text="The strongest action decided on it (cancelled "
                                    "ones aside); null when nothing was done.")


class SimulationSerializer(serializers.Serializer):
    rule = serializers.CharField()
    days = serializers.IntegerField()
    since = serializers.DateTimeField()
    decisions = serializers.IntegerField(help_text="Violations of the rule reported since then, each replayed under "
                                         "both policies.")
    changed = serializers.IntegerField(help_text="Decisions whose recommended rung (or act-first) would differ.")
    by_change = serializers.DictField(child=serializers.IntegerField(),
                                      help_text='Changed decisions by "<before>-><after>", e.g. "warning->suspend".')
    accounts_affected = serializers.IntegerField(help_text="Accounts with at least one changed decision.")
    done = SimulationDoneSummarySerializer(source="*", help_text="What was done beside what each policy recommends.")
    examples = SimulationExampleSerializer(many=True, help_text="A few changed decisions, each kind of change in "
                                           "turn, the newest first.")


# --------------------------------------------------------------------------- violations


class RecommendationSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ActionKind.choices, allow_null=True, help_text="None: a person decides.")
    reason = serializers.CharField()
    act_first = serializers.BooleanField()


_SEVERITIES = frozenset(Severity.values)
_EVIDENCE = EvidenceField(required=False)


def _plain_text(value, max_length: int) -> bool:
    """A string every check of a ``CharField`` passes unchanged: not blank, not padded (it would be trimmed), not
    too long, ASCII (no surrogates) without NUL."""
    return (type(value) is str and 0 < len(value) <= max_length and value.isascii() and "\x00" not in value
            and not value[0].isspace() and not value[-1].isspace())


def _plain_report(data) -> dict | None:
    """``ViolationReportSerializer``'s validated data for a report that passes every check as it stands (the
    common case: a detector's JSON), in a fraction of the fields' time; None for anything else, which the fields
    then check (and word the errors of) as always."""
    if type(data) is not dict:
        return None
    report = {}
    for name, max_length in _REPORT_TEXT:
        if not _plain_text(data.get(name), max_length):
            return None
        report[name] = data[name]
    if "api_key" in data:
        key = data["api_key"]
        if key is not None and key != "" and not _plain_text(key, _KEY_MAX_LENGTH):
            return None
        report["api_key"] = key
    if "severity" in data:
        if data["severity"] is not None and (type(data["severity"]) is not str or data["severity"] not in _SEVERITIES):
            return None
        report["severity"] = data["severity"]
    if "observed_at" in data:
        if data["observed_at"] is not None:
            return None  # parsed by the field
        report["observed_at"] = None
    if "evidence" in data:
        if type(data["evidence"]) is not dict:
            return None
        try:
            report["evidence"] = _EVIDENCE.run_validation(data["evidence"])
        except serializers.ValidationError:
            return None
    return report


class ViolationReportSerializer(serializers.Serializer):
    """A report as the fields check it; a plain one (``_plain_report``) skips them, with the same result."""

    account = serializers.CharField(max_length=64, help_text="The account's public_id.")
    api_key = serializers.CharField(
        max_length=16, required=False, allow_null=True, allow_blank=True,
        help_text="A key prefix, e.g. sk_live_4eC39HqL.",
    )
    rule = serializers.CharField(max_length=64, help_text="A rule code, see GET /api/v1/rules/.")
    severity = serializers.ChoiceField(
        choices=Severity.choices, required=False, allow_null=True, help_text="Defaults to the rule's."
    )
    source = serializers.CharField(
        max_length=64, help_text="Which detector; with external_id, makes the report idempotent."
    )
    external_id = serializers.CharField(max_length=200)
    observed_at = serializers.DateTimeField(required=False, allow_null=True)
    summary = serializers.CharField(max_length=MAX_TEXT)
    evidence = EvidenceField(required=False, help_text="A JSON object; redacted before it is stored.")

    def run_validation(self, data=serializers.empty):
        report = _plain_report(data)
        return report if report is not None else super().run_validation(data)


# The plain path's limits are the fields' own, read from them: one place to change a limit.
_REPORT_TEXT = tuple((name, ViolationReportSerializer._declared_fields[name].max_length)
                     for name in ("account", "rule", "source", "external_id", "summary"))
_KEY_MAX_LENGTH = ViolationReportSerializer._declared_fields["api_key"].max_length


class ViolationBatchSerializer(serializers.Serializer):
    """Parses the envelope only: each item is checked on its own, so one bad item fails alone."""

    violations = serializers.ListField(child=serializers.JSONField(), min_length=1, max_length=500)


class ViolationBatchRequestSerializer(serializers.Serializer):
    """The batch request as documented in the schema."""

    violations = ViolationReportSerializer(many=True, min_length=1, max_length=500)


class ViolationSerializer(serializers.ModelSerializer):
    """Rendered by hand (``to_representation``): the batch path renders 500 at a time."""

    account = serializers.CharField(source="account.public_id", read_only=True)
    api_key = serializers.CharField(source="api_key.prefix", read_only=True, allow_null=True)
    rule = serializers.CharField(source="rule.code", read_only=True)
    case = serializers.IntegerField(source="case_id", read_only=True)
    outcome = serializers.ChoiceField(
        choices=OUTCOMES, read_only=True,
        help_text="What became of the report: actioned (an action was applied on its case after it), dismissed, "
        "overturned (such an action was overturned on appeal) or pending.",
    )

    class Meta:
        model = Violation
        fields = [
            "id", "case", "account", "api_key", "rule", "severity", "source", "external_id", "source_trusted",
            "reported_by", "observed_at", "reported_at", "summary", "evidence", "status", "dismissed_at",
            "dismissed_reason", "outcome",
        ]
        read_only_fields = fields

    def to_representation(self, v: Violation) -> dict:
        return violation_dict(v)


def violation_dict(v: Violation, iso=_iso) -> dict:
    """A violation as ``ViolationSerializer`` renders it; ``iso``: ``_iso`` or an ``iso_renderer()``."""
    return {
        "id": v.pk,
        "case": v.case_id,
        "account": v.account.public_id,
        "api_key": v.api_key.prefix if v.api_key_id else None,
        "rule": v.rule.code,
        "severity": v.severity,
        "source": v.source,
        "external_id": v.external_id,
        "source_trusted": v.source_trusted,
        "reported_by": v.reported_by,
        "observed_at": iso(v.observed_at),
        "reported_at": iso(v.reported_at),
        "summary": v.summary,
        "evidence": v.evidence,
        "status": v.status,
        "dismissed_at": iso(v.dismissed_at),
        "dismissed_reason": v.dismissed_reason,
        "outcome": v.outcome,
    }


class ViolationReportResultSerializer(ViolationSerializer):
    created = serializers.BooleanField(read_only=True, help_text="False: the same (source, external_id) was known.")
    recommended_action = RecommendationSerializer(read_only=True)
    act_first_action = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The suspension scheduled at once under act-first, if any."
    )

    class Meta(ViolationSerializer.Meta):
        fields = [*ViolationSerializer.Meta.fields, "created", "recommended_action", "act_first_action"]
        read_only_fields = fields

    @staticmethod
    def render(result, iso=_iso) -> dict:
        """A ``services.ReportResult`` as the API shows it (``iso``: as for ``violation_dict``)."""
        out = violation_dict(result.violation, iso)
        out["created"] = result.created
        out["recommended_action"] = result.recommendation.as_dict()
        out["act_first_action"] = result.act_first_action.pk if result.act_first_action else None
        return out

    def to_representation(self, result) -> dict:
        return self.render(result)


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="ViolationBatchItem",
        serializers=[ViolationReportResultSerializer, ErrorSerializer],
        resource_type_field_name=None,
    )
)
class BatchItemField(serializers.DictField):
    """One item of a batch answer: the report's result, or ``{"error": {...}}`` for that item alone."""


class ViolationBatchResultSerializer(serializers.Serializer):
    results = serializers.ListField(child=BatchItemField(), help_text="One per item, in the order sent.")
    created = serializers.IntegerField(help_text="Items that made a new violation.")
    replayed = serializers.IntegerField(help_text="Items whose (source, external_id) was already known.")
    failed = serializers.IntegerField(help_text="Items answered with an error.")


class DismissSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=MAX_TEXT, required=False, allow_blank=True, default="")


# --------------------------------------------------------------------------- actions, appeals


class ActionSerializer(serializers.ModelSerializer):
    case = serializers.IntegerField(source="case_id", read_only=True)
    account = serializers.CharField(source="account.public_id", read_only=True)
    keys = serializers.SerializerMethodField(help_text="Key prefixes; empty: every key of the account.")
    requested_by = serializers.CharField(source="requested_by_label", read_only=True)
    approved_by = serializers.CharField(source="approved_by_label", read_only=True)

    class Meta:
        model = EnforcementAction
        fields = [
            "id", "case", "account", "kind", "status", "reason", "keys", "rate_limit_per_minute",
            "ip_rate_limit_per_minute", "expires_at", "remediation_deadline", "escalated_at", "act_first",
            "overturned", "requested_by", "approved_by", "created_at", "approved_at", "scheduled_at", "applied_at",
            "ended_at", "reviewed_at", "attempts", "last_error",
        ]
        read_only_fields = fields

    def get_keys(self, action) -> list[str]:
        return sorted(key.prefix for key in action.keys.all())


class ActionProposeSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=ActionKind.choices, required=False, allow_null=True,
        help_text="Omitted: the ladder's recommendation for the case.",
    )
    reason = serializers.CharField(
        max_length=MAX_TEXT, required=False, allow_blank=True, default="",
        help_text="Required with a kind; without one, the ladder's reason is used when omitted.",
    )
    keys = serializers.ListField(
        child=serializers.CharField(max_length=16), required=False, max_length=100,
        help_text="Key prefixes of the case's account; omitted: every key.",
    )
    rate_limit_per_minute = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False, allow_null=True)
    ip_rate_limit_per_minute = serializers.IntegerField(
        min_value=1, max_value=MAX_INT, required=False, allow_null=True
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    remediation_deadline = serializers.DateTimeField(required=False, allow_null=True)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=MAX_TEXT, required=False, allow_blank=True, default="")


class AppealSerializer(serializers.ModelSerializer):
    action = serializers.IntegerField(source="action_id", read_only=True)
    case = serializers.IntegerField(source="case_id", read_only=True)
    submitted_by = serializers.CharField(source="submitted_by_label", read_only=True)
    decided_by = serializers.CharField(source="decided_by_label", read_only=True)

    class Meta:
        model = Appeal
        fields = [
            "id", "action", "case", "message", "status", "submitted_by", "submitted_at", "decided_by", "decided_at",
            "decision_note",
        ]
        read_only_fields = fields


class AppealSubmitSerializer(serializers.Serializer):
    action = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    message = serializers.CharField(max_length=MAX_TEXT)


class AppealDecideSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=[Appeal.Status.UPHELD, Appeal.Status.OVERTURNED])
    note = serializers.CharField(max_length=MAX_TEXT, required=False, allow_blank=True, default="")


# --------------------------------------------------------------------------- cases


class CaseSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="account.public_id", read_only=True)
    assignee = serializers.CharField(source="assignee.username", read_only=True, allow_null=True, default=None)
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = Case
        fields = [
            "id", "account", "status", "severity", "review_due_at", "overdue", "assignee", "needs_lead_review",
            "opened_at", "closed_at", "resolution", "updated_at",
        ]
        read_only_fields = fields

    def get_overdue(self, case) -> bool:
        now = self.context.get("now")
        if now is None:
            from django.utils import timezone

            now = self.context["now"] = timezone.now()
        return case.is_overdue(now)


class NotificationSerializer(serializers.ModelSerializer):
    action = serializers.IntegerField(source="action_id", read_only=True, allow_null=True)

    class Meta:
        model = Notification
        fields = [
            "id", "template", "audience", "recipient", "subject", "status", "action", "attempts", "last_error",
            "created_at", "sent_at",
        ]
        read_only_fields = fields


class CommentSerializer(serializers.ModelSerializer):
    case = serializers.IntegerField(source="case_id", read_only=True)
    author = serializers.CharField(source="author_label", read_only=True)

    class Meta:
        model = Comment
        fields = ["id", "case", "author", "body", "created_at"]
        read_only_fields = fields


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=["violation", "action", "notification", "comment", "appeal", "audit"])
    title = serializers.CharField()
    detail = serializers.CharField(allow_blank=True)
    id = serializers.IntegerField(allow_null=True, help_text="The id of the violation, action, ... it is about.")


class CaseDetailSerializer(CaseSerializer):
    violations = ViolationSerializer(many=True, read_only=True)
    actions = ActionSerializer(many=True, read_only=True)
    notifications = NotificationSerializer(many=True, read_only=True)
    comments = CommentSerializer(many=True, read_only=True)
    appeals = AppealSerializer(many=True, read_only=True)
    timeline = serializers.SerializerMethodField()

    class Meta(CaseSerializer.Meta):
        fields = [*CaseSerializer.Meta.fields, "violations", "actions", "notifications", "comments", "appeals",
                  "timeline"]
        read_only_fields = fields

    @extend_schema_field(TimelineEntrySerializer(many=True))
    def get_timeline(self, case) -> list[dict]:
        return [entry.as_dict() for entry in case_timeline(case)]

    def to_representation(self, case):
        # Violations of a case share its account: spare the renderer one query per violation.
        for violation in case.violations.all():
            violation.account = case.account
        return super().to_representation(case)


class CaseAssignSerializer(serializers.Serializer):
    assignee = serializers.CharField(
        max_length=150, allow_null=True, help_text="A staff member's username; null to unassign."
    )


class CaseCommentSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=MAX_TEXT)


class CaseResolveSerializer(serializers.Serializer):
    resolution = serializers.CharField(max_length=MAX_TEXT, required=False, allow_blank=True, default="")


class StandingSerializer(serializers.Serializer):
    account = serializers.CharField(source="account.public_id")
    status = serializers.ChoiceField(choices=Account.Status.choices)
    strikes = serializers.IntegerField()
    strike_window_days = serializers.IntegerField()
    open_case = CaseSerializer(allow_null=True)
    active_actions = ActionSerializer(many=True)
    keys = StandingKeySerializer(many=True)


# --------------------------------------------------------------------------- audit


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True)
    target = serializers.SerializerMethodField()
    case = serializers.IntegerField(source="case_id", read_only=True, allow_null=True)
    account = serializers.CharField(source="account.public_id", read_only=True, allow_null=True, default=None)

    class Meta:
        model = AuditEvent
        fields = [
            "id", "created_at", "actor_type", "actor", "verb", "target", "target_type", "target_id", "case",
            "account", "before", "after", "note",
        ]
        read_only_fields = fields

    def get_target(self, event) -> str:
        return f"{event.target_type}:{event.target_id}"


# --------------------------------------------------------------------------- transparency


class StatementSerializer(serializers.Serializer):
    """A statement of reasons in the EU DSA Transparency Database's field names and values (schema v2)."""

    puid = serializers.CharField()
    decision_provision = serializers.CharField()
    decision_account = serializers.CharField(allow_null=True)
    account_type = serializers.CharField()
    end_date_service_restriction = serializers.DateField(allow_null=True)
    decision_ground = serializers.CharField()
    illegal_content_legal_ground = serializers.CharField(allow_null=True)
    illegal_content_explanation = serializers.CharField(allow_null=True)
    incompatible_content_ground = serializers.CharField(allow_null=True)
    incompatible_content_explanation = serializers.CharField(allow_null=True)
    incompatible_content_illegal = serializers.CharField(allow_null=True)
    category = serializers.CharField()
    content_type = serializers.ListField(child=serializers.CharField())
    content_type_other = serializers.CharField()
    decision_facts = serializers.CharField()
    automated_detection = serializers.ChoiceField(choices=["Yes", "No"])
    automated_decision = serializers.CharField()
    source_type = serializers.CharField()
    application_date = serializers.DateField()
    content_date = serializers.DateField()
    territorial_scope = serializers.ListField(child=serializers.CharField())

    def to_representation(self, instance: dict) -> dict:
        return instance  # built by enforcement.statements, already in the database's terms


class StatementBatchSerializer(serializers.Serializer):
    statements = StatementSerializer(many=True, help_text="At most 100, as the batch endpoint takes them.")
    next = serializers.URLField(allow_null=True)


class SourceSerializer(serializers.Serializer):
    source = serializers.CharField()
    owner = serializers.CharField(allow_null=True, help_text="token:NAME, a username, or console (reserved).")
    reports = serializers.IntegerField()
    actioned = serializers.IntegerField()
    dismissed = serializers.IntegerField()
    overturned = serializers.IntegerField()
    precision = serializers.FloatField(
        allow_null=True, help_text="Actioned share of its last DETECTOR_MIN_DECIDED decided reports.")
    act_first_allowed = serializers.BooleanField()


class _WaitsSerializer(serializers.Serializer):
    p50_s = serializers.IntegerField(allow_null=True)
    p90_s = serializers.IntegerField(allow_null=True)


class _SeverityReviewSerializer(_WaitsSerializer):
    reviewed = serializers.IntegerField()


class _ReviewSerializer(serializers.Serializer):
    time_to_first_review_p50_s = serializers.IntegerField(allow_null=True)
    time_to_first_review_p90_s = serializers.IntegerField(allow_null=True)
    reviewed = serializers.IntegerField(help_text="First reviews made in the period.")
    by_severity = serializers.DictField(child=_SeverityReviewSerializer())


class _KindApprovalSerializer(_WaitsSerializer):
    approved = serializers.IntegerField()


class _ApprovalSerializer(serializers.Serializer):
    time_to_approval_p50_s = serializers.IntegerField(allow_null=True)
    time_to_approval_p90_s = serializers.IntegerField(allow_null=True)
    approved = serializers.IntegerField()
    by_kind = serializers.DictField(child=_KindApprovalSerializer())


class _SlaCountsSerializer(serializers.Serializer):
    breaches = serializers.IntegerField()
    on_time = serializers.IntegerField()


class _SlaSerializer(_SlaCountsSerializer):
    late_reviews = serializers.IntegerField()
    overdue_unreviewed = serializers.IntegerField()
    by_severity = serializers.DictField(child=_SlaCountsSerializer())


class _ActionsSerializer(serializers.Serializer):
    by_kind = serializers.DictField(child=serializers.IntegerField())
    by_rule = serializers.DictField(child=serializers.IntegerField())
    by_rule_and_kind = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))


class _AppealCountsSerializer(serializers.Serializer):
    decided = serializers.IntegerField()
    overturned = serializers.IntegerField()
    overturn_rate = serializers.FloatField(allow_null=True)


class _AppealsSerializer(_AppealCountsSerializer):
    by_rule = serializers.DictField(child=_AppealCountsSerializer())


class _DaysSerializer(serializers.Serializer):
    first = serializers.DateField()
    last = serializers.DateField()


class _ReportsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_rule = serializers.DictField(child=serializers.IntegerField())
    by_source = serializers.DictField(child=serializers.IntegerField())


class _CasesSerializer(serializers.Serializer):
    opened = serializers.IntegerField()
    closed = serializers.IntegerField()
    opened_by_severity = serializers.DictField(child=serializers.IntegerField())


class _DaySerializer(serializers.Serializer):
    day = serializers.DateField()
    reports = serializers.IntegerField()
    reports_by_rule = serializers.DictField(child=serializers.IntegerField())
    reports_by_source = serializers.DictField(child=serializers.IntegerField())
    cases_opened = serializers.IntegerField()
    cases_closed = serializers.IntegerField()


class _StaffSerializer(serializers.Serializer):
    staff = serializers.CharField()
    cases_handled = serializers.IntegerField(help_text="Cases they reviewed or resolved (once a case a day).")
    actions_proposed = serializers.IntegerField()
    approvals = serializers.IntegerField()
    appeals_decided = serializers.IntegerField()


class _DetectorSerializer(serializers.Serializer):
    source = serializers.CharField()
    reports = serializers.IntegerField(help_text="Reports received in the period.")
    precision = serializers.FloatField(allow_null=True)
    decided = serializers.IntegerField(help_text="Of its last DETECTOR_MIN_DECIDED reports, those decided.")
    act_first_allowed = serializers.BooleanField()


class MetricsSummarySerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    days = _DaysSerializer(help_text="The UTC days counted (from since's to until's).")
    rolled_up_at = serializers.DateTimeField(allow_null=True, help_text="When the figures were last rolled up.")
    reports = _ReportsSerializer()
    cases = _CasesSerializer()
    per_day = _DaySerializer(many=True)
    review = _ReviewSerializer()
    approval = _ApprovalSerializer()
    sla = _SlaSerializer()
    actions = _ActionsSerializer()
    appeals = _AppealsSerializer()
    staff = _StaffSerializer(many=True)
    detectors = _DetectorSerializer(many=True)
