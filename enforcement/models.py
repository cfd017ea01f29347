"""The decisions: rules, violations, cases, actions, appeals, the email outbox and the audit log.

State lives in ``TextChoices`` fields; the allowed transitions are in
``enforcement.transitions`` and are checked by the services, never here.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from accounts.models import Account, APIKey


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {severity: rank for rank, severity in enumerate(Severity.values)}


class ActionKind(models.TextChoices):
    """The rungs of the ladder, in order."""

    WARNING = "warning", "Warning"
    THROTTLE = "throttle", "Throttle"
    SUSPEND = "suspend", "Suspend"
    TERMINATE = "terminate", "Terminate"


class DsaCategory(models.TextChoices):
    """The EU DSA Transparency Database's statement categories (schema v2)."""

    ANIMAL_WELFARE = "STATEMENT_CATEGORY_ANIMAL_WELFARE", "Animal welfare"
    DATA_PROTECTION = "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS", "Data protection and privacy"
    ILLEGAL_OR_HARMFUL_SPEECH = "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH", "Illegal or harmful speech"
    INTELLECTUAL_PROPERTY = "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS", "Intellectual property"
    CIVIC_DISCOURSE = (
        "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS", "Civic discourse or elections"
    )
    NON_CONSENSUAL_BEHAVIOUR = "STATEMENT_CATEGORY_NON_CONSENSUAL_BEHAVIOUR", "Non-consensual behaviour"
    PORNOGRAPHY = "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT", "Pornography or sexualized content"
    PROTECTION_OF_MINORS = "STATEMENT_CATEGORY_PROTECTION_OF_MINORS", "Protection of minors"
    PUBLIC_SECURITY = "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY", "Risk for public security"
    SCAMS_AND_FRAUD = "STATEMENT_CATEGORY_SCAMS_AND_FRAUD", "Scams and fraud"
    SELF_HARM = "STATEMENT_CATEGORY_SELF_HARM", "Self-harm"
    SCOPE_OF_SERVICE = "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE", "Scope of platform service"
    UNSAFE_PRODUCTS = "STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS", "Unsafe and illegal products"
    VIOLENCE = "STATEMENT_CATEGORY_VIOLENCE", "Violence"
    OTHER_VIOLATION_TC = "STATEMENT_CATEGORY_OTHER_VIOLATION_TC", "Other violation of terms and conditions"


class Rule(models.Model):
    code = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    clause = models.TextField(help_text="The words of the policy this rule enforces.")
    description = models.TextField(blank=True)
    default_severity = models.CharField(max_length=16, choices=Severity.choices)
    ladder_overrides = models.JSONField(
        default=dict,
        blank=True,
        help_text='First rung per severity for this rule, e.g. {"high": "suspend"}; '
        "missing severities use the defaults.",
    )
    strike_window_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Overrides the default strike window."
    )
    act_first = models.BooleanField(
        default=False,
        help_text="A critical violation from a trusted source is suspended at once, reviewed after.",
    )
    auto_action = models.BooleanField(
        default=True,
        help_text="Off for rules that must never be actioned automatically (security research).",
    )
    publishable_key_exposure_is_violation = models.BooleanField(
        default=False,
        help_text="Key exposure only: treat a leaked publishable key as a true positive.",
    )
    dsa_category = models.CharField(
        "DSA category", max_length=80, choices=DsaCategory.choices, default=DsaCategory.SCOPE_OF_SERVICE,
        help_text="The statement-of-reasons category (EU DSA Transparency Database) of actions under this rule.",
    )
    dsa_illegal = models.BooleanField(
        "DSA: illegal content", default=False,
        help_text="Statements give the ground as illegal content (with the legal ground below), "
        "not as content incompatible with the terms.",
    )
    dsa_legal_ground = models.CharField(
        "DSA legal ground", max_length=500, blank=True,
        help_text="Illegal content only: the law it breaks (e.g. \"GDPR Art. 9\").",
    )
    is_active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1, help_text="Bumped by every edit; history in RuleVersion.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(default_severity__in=Severity.values), name="rule_severity_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.code}: {self.title}"


class RuleVersion(models.Model):
    """A rule as it stood at one version: what an action decided under it can be traced back to."""

    rule = models.ForeignKey(Rule, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    policy = models.JSONField(help_text="The rule's fields at this version.")
    saved_by_label = models.CharField(max_length=200)
    saved_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rule", "-version"]
        constraints = [models.UniqueConstraint(fields=["rule", "version"], name="rule_version_unique")]

    def __str__(self) -> str:
        return f"{self.rule.code} v{self.version}"


class CaseStatus(models.TextChoices):
    OPEN = "open", "Open"
    AWAITING_CUSTOMER = "awaiting_customer", "Awaiting customer"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    ACTIONED = "actioned", "Actioned"
    APPEALED = "appealed", "Appealed"
    CLOSED = "closed", "Closed"


class ActionStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    SCHEDULED = "scheduled", "Scheduled"
    APPLIED = "applied", "Applied"
    FAILED = "failed", "Failed"
    REVERTED = "reverted", "Reverted"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


OPEN_CASE_STATUSES = [status for status in CaseStatus.values if status != CaseStatus.CLOSED]


def overdue_q(now) -> Q:
    """An open case whose review deadline has passed (a reviewed case has none)."""
    return Q(status__in=OPEN_CASE_STATUSES, review_due_at__lt=now)


class CaseQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status__in=OPEN_CASE_STATUSES)

    def overdue(self, now):
        return self.filter(overdue_q(now))


class Case(models.Model):
    Status = CaseStatus

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="cases")
    status = models.CharField(max_length=24, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    severity_rank = models.PositiveSmallIntegerField(default=0, editable=False)
    review_due_at = models.DateTimeField(
        null=True, blank=True, help_text="When staff must have reviewed the case; empty once they have acted on it."
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_cases",
    )
    needs_lead_review = models.BooleanField(
        default=False, help_text="An act-first action awaits a lead's confirmation."
    )
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CaseQuerySet.as_manager()

    class Meta:
        ordering = ["review_due_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=~Q(status="closed"),
                name="one_open_case_per_account",
                violation_error_message="This account already has an open case.",
            ),
            models.CheckConstraint(condition=Q(severity__in=Severity.values), name="case_severity_valid"),
            models.CheckConstraint(condition=Q(status__in=CaseStatus.values), name="case_status_valid"),
        ]
        indexes = [
            models.Index(fields=["status", "review_due_at"]),
            models.Index(fields=["assignee", "status"]),
            models.Index(fields=["severity_rank", "review_due_at"]),
            models.Index(fields=["account", "opened_at"]),
            # Closed cases by when they closed (the queue's closed view): a page is read from an index, never a
            # sort of a million rows. The queue's own ordering over every case has a PostgreSQL-only index
            # (migration 0011: NULLS LAST is not SQLite's).
            models.Index(F("closed_at").desc(), F("id").desc(), condition=Q(status="closed"),
                         name="case_closed_idx"),
            models.Index(fields=["opened_at"], name="case_opened_at_idx"),  # the metrics' daily roll-up
            models.Index(fields=["closed_at"], name="case_closed_at_idx"),
        ]

    def __str__(self) -> str:
        return f"Case #{self.pk} ({self.account.public_id})"

    @property
    def is_open(self) -> bool:
        return self.status != self.Status.CLOSED

    def is_overdue(self, now) -> bool:
        return self.is_open and self.review_due_at is not None and self.review_due_at < now


class Violation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DISMISSED = "dismissed", "Dismissed"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="violations")
    api_key = models.ForeignKey(
        APIKey, null=True, blank=True, on_delete=models.PROTECT, related_name="violations"
    )
    rule = models.ForeignKey(Rule, on_delete=models.PROTECT, related_name="violations")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="violations")
    severity = models.CharField(max_length=16, choices=Severity.choices)
    source = models.CharField(max_length=64)
    external_id = models.CharField(max_length=200)
    source_trusted = models.BooleanField(default=False)
    reported_by = models.CharField(max_length=200, help_text="Who reported it (actor label).")
    reporter_kind = models.CharField(
        max_length=8, blank=True, help_text="user, token or system: a person's report is not automated detection."
    )
    observed_at = models.DateTimeField()
    reported_at = models.DateTimeField(auto_now_add=True)
    summary = models.TextField()
    evidence = models.JSONField(default=dict, blank=True, help_text="Redacted before storage.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_reason = models.TextField(blank=True)
    outcome = models.CharField(
        max_length=12, default="pending", db_default="pending", editable=False,
        help_text="What came of the report (actioned, dismissed, overturned, pending): kept by the services in the "
                  "transaction that decides it, counted per source in SourceTally (enforcement.services.detectors).",
    )

    class Meta:
        ordering = ["-reported_at"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="violation_source_external_id_unique"),
            models.CheckConstraint(condition=Q(severity__in=Severity.values), name="violation_severity_valid"),
        ]
        indexes = [
            models.Index(fields=["account", "reported_at"]),
            models.Index(fields=["case", "reported_at"]),
            models.Index(fields=["rule", "reported_at"]),
            # The queue's rule filter: EXISTS on (case_id, rule_id).
            models.Index(fields=["case", "rule"], name="violation_case_rule_idx"),
            models.Index(fields=["reported_at"], name="violation_reported_at_idx"),  # the daily roll-up
            models.Index(fields=["source", "reported_at"], name="violation_source_reported_idx"),
            # A source's precision over its last decided reports: the decided ones alone, newest first.
            models.Index(fields=["source", "-reported_at", "-id"], condition=~Q(outcome="pending"),
                         name="violation_source_decided_idx"),
        ]

    def __str__(self) -> str:
        return f"Violation #{self.pk} {self.rule.code} ({self.severity})"


class EnforcementAction(models.Model):
    Status = ActionStatus

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="actions")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="enforcement_actions")
    kind = models.CharField(max_length=16, choices=ActionKind.choices)
    status = models.CharField(max_length=24, choices=ActionStatus.choices)
    reason = models.TextField()
    keys = models.ManyToManyField(
        APIKey, blank=True, related_name="enforcement_actions", help_text="None: every key of the account."
    )
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    ip_rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    remediation_deadline = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    act_first = models.BooleanField(default=False)
    overturned = models.BooleanField(default=False, help_text="Reverted because an appeal succeeded.")
    decided_under = models.JSONField(
        default=dict, blank=True,
        help_text="What the decision rested on: the violations behind it, the rule versions, the ladder's reason.",
    )
    approval_due_at = models.DateTimeField(
        null=True, blank=True, help_text="Awaiting approval: a lead decides by then (by the case's severity)."
    )

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_by_token = models.ForeignKey(
        "ServiceToken", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_by_label = models.CharField(max_length=200)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_by_token = models.ForeignKey(
        "ServiceToken", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_by_label = models.CharField(max_length=200, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Reverted, expired, cancelled or failed.")
    reviewed_at = models.DateTimeField(null=True, blank=True, help_text="Act-first: confirmed by a lead.")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    requeued_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text="When the sweep last handed this action to a task (apply or expire); it waits out "
                  "SWEEP_REQUEUE_BACKOFF_SECONDS before sending the same action again.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=ActionKind.values), name="action_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=ActionStatus.values), name="action_status_valid"),
        ]
        indexes = [
            # /metrics: the actions in force and the failed ones by kind, counted from the index alone.
            models.Index(fields=["status", "kind"], condition=Q(status__in=["applied", "failed"]),
                         name="action_in_force_or_failed_idx"),
            models.Index(fields=["case", "created_at"]),
            models.Index(fields=["account", "status"]),
            models.Index(fields=["status", "scheduled_at"]),
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["status", "remediation_deadline"]),
            models.Index(fields=["applied_at", "id"], name="action_applied_idx"),  # statements, newest first
            # The metrics' daily roll-up: proposals, approvals and applications of a day.
            models.Index(fields=["created_at"], name="action_created_at_idx"),
            models.Index(fields=["approved_at"], name="action_approved_at_idx"),
        ]
        permissions = [
            ("work_case", "Can work cases: report, assign, comment, resolve, dismiss"),
            ("propose_action", "Can propose warnings and throttles, and request suspensions"),
            ("suspend_action", "Can suspend without approval and revert suspensions"),
            ("approve_action", "Can approve suspensions and terminations"),
            ("decide_appeal", "Can decide appeals"),
            ("submit_appeal", "Can record a customer's appeal"),
            ("manage_inventory", "Can change mirrored accounts and keys, and revoke a key"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"


class Appeal(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        UPHELD = "upheld", "Upheld"
        OVERTURNED = "overturned", "Overturned"

    action = models.OneToOneField(EnforcementAction, on_delete=models.PROTECT, related_name="appeal")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="appeals")
    message = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    submitted_by_label = models.CharField(max_length=200)
    submitted_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_by_label = models.CharField(max_length=200, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    due_at = models.DateTimeField(null=True, blank=True, help_text="A lead decides by then (APPEAL_DECISION_HOURS).")

    class Meta:
        ordering = ["submitted_at"]
        indexes = [models.Index(fields=["status", "submitted_at"]), models.Index(fields=["status", "due_at"]),
                   models.Index(fields=["decided_at"], name="appeal_decided_at_idx")]

    def __str__(self) -> str:
        return f"Appeal #{self.pk} of action #{self.action_id}"


class Comment(models.Model):
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    author_label = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["case", "created_at"])]

    def __str__(self) -> str:
        return f"Comment #{self.pk} on case #{self.case_id}"


class Notification(models.Model):
    """The email outbox: written with the state change that causes it, sent by a task."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    class Audience(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        STAFF = "staff", "Staff"

    event_key = models.CharField(max_length=200, help_text="What caused it; with the recipient, unique.")
    template = models.CharField(max_length=64)
    audience = models.CharField(max_length=16, choices=Audience.choices)
    recipient = models.EmailField()
    context = models.JSONField(default=dict, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.PROTECT, related_name="notifications")
    action = models.ForeignKey(
        EnforcementAction, null=True, blank=True, on_delete=models.PROTECT, related_name="notifications"
    )
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    message_id = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="After a transient failure: not tried again before this time."
    )
    retry_until = models.DateTimeField(
        null=True, blank=True, help_text="Passing failures are retried until then (EMAIL_RETRY_HOURS after the first).",
    )
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["event_key", "recipient"], name="notification_once_per_event_recipient"),
        ]
        indexes = [
            models.Index(fields=["created_at"], condition=Q(status="pending"), name="notification_pending_idx"),
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="notification_due_idx"),
            models.Index(fields=["created_at"], condition=Q(status="failed"), name="notification_failed_idx"),
            models.Index(fields=["case", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.template} to {self.recipient} ({self.status})"


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("The audit log is append-only.")

    def delete(self):
        raise PermissionError("The audit log is append-only.")


class AuditEvent(models.Model):
    """Append-only: refused updates and deletes here and, on PostgreSQL, by a trigger."""

    class ActorType(models.TextChoices):
        USER = "user", "Staff member"
        TOKEN = "token", "Service token"
        SYSTEM = "system", "System"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_token = models.ForeignKey(
        "ServiceToken", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    verb = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events")
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    note = models.TextField(blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id", "created_at"]),
            models.Index(fields=["case", "created_at"]),
            models.Index(fields=["actor_label", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.verb} {self.target_type}:{self.target_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("The audit log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The audit log is append-only.")


class ServiceToken(models.Model):
    """A token automation authenticates with; only its SHA-256 is stored."""

    class Scope(models.TextChoices):
        VIOLATIONS_WRITE = "violations:write"
        CASES_READ = "cases:read"
        CASES_WRITE = "cases:write"
        ACTIONS_WRITE = "actions:write"
        ACTIONS_APPROVE = "actions:approve"
        APPEALS_WRITE = "appeals:write"
        INVENTORY_WRITE = "inventory:write"
        GATE_CHECK = "gate:check"
        AUDIT_READ = "audit:read"

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=16, help_text="The first characters, to recognise it.")
    token_sha256 = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    trusted = models.BooleanField(default=False, help_text="Its reports count as a trusted source (act-first).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class Source(models.Model):
    """A reporting source (a detector's name, "github-secret-scanning" ...) and the reporter it belongs to.

    (source, external_id) is a report's idempotency key, so a source is scoped to its reporter: the first token
    or staff member that reports under it owns it, and nobody else may report, replay or read under it. A
    reserved source (no owner, ``reserved``) is the system's own (the GitHub endpoint, the edge). Leads may
    hand a source to another reporter in the admin."""

    name = models.CharField(max_length=64, unique=True)
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    owner_token = models.ForeignKey(
        ServiceToken, null=True, blank=True, on_delete=models.PROTECT, related_name="sources"
    )
    reserved = models.BooleanField(default=False, help_text="The system's own: only the console reports under it.")
    act_first_withheld_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Since when its precision is below the floor: its critical reports wait for a lead.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SourceTally(models.Model):
    """A source's report counts by outcome, in a few shards per source (``SHARDS``): a transaction adds to one
    shard picked at random, so parallel reports and decisions of one detector do not queue on one row; a reader
    sums the shards. Kept by ``enforcement.services.detectors`` (``tally_add``) in the transaction that changes a
    report's outcome; ``manage.py recount_sources`` rebuilds it from the violations."""

    SHARDS = 8

    source = models.CharField(max_length=64)
    shard = models.PositiveSmallIntegerField(default=0)
    reports = models.BigIntegerField(default=0)
    actioned = models.BigIntegerField(default=0)
    dismissed = models.BigIntegerField(default=0)
    overturned = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "shard"], name="source_tally_source_shard_unique")]

    def __str__(self) -> str:
        return f"{self.source}/{self.shard}"


class SavedView(models.Model):
    """A staff member's named case-queue view: the queue's filters, search and sort as a querystring. Shared
    views are offered to the whole team; only their owner renames, shares or deletes them."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=80)
    query = models.CharField(max_length=1000, blank=True, help_text="The queue's querystring (filters, q, o).")
    shared = models.BooleanField(default=False, help_text="Offered to the whole team.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="saved_view_name_unique_per_owner")]
        indexes = [models.Index(fields=["shared", "name"], condition=Q(shared=True), name="saved_view_shared_idx")]

    def __str__(self) -> str:
        return self.name


class StaffPreference(models.Model):
    """What the console remembers for one staff member between pages (the case timeline's filters)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_preference")
    timeline_hidden = models.JSONField(default=list, blank=True, help_text="Timeline kinds hidden on the case page.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Preferences of {self.user_id}"


class DailyFigure(models.Model):
    """A day's roll-up of one figure (UTC days), so the metrics of a year read a few thousand rows, not a
    million cases; and each month's sum of its days (``span`` "month", ``day`` its first day), so a long period
    reads a row a month. Recomputed for recent days, idempotently, by beat (``services.metrics_rollup``); each
    fact is counted on the day it happened (a report received, a case opened or closed, a first review, an
    approval, an action applied, an appeal decided), so a day once past does not change.

    ``figure`` names what is counted; ``rule`` and ``dim`` break it down (a rule's code, a source, a severity, an
    action's kind, a staff member); ``waits`` is a histogram of waits in seconds for the timed figures
    (``{bucket's lower bound: count}``; see ``services.rollups.wait_bucket``)."""

    class Span(models.TextChoices):
        DAY = "day", "Day"
        MONTH = "month", "Month"

    span = models.CharField(max_length=5, choices=Span.choices, default=Span.DAY)
    day = models.DateField()
    figure = models.CharField(max_length=32)
    rule = models.CharField(max_length=64, blank=True)
    dim = models.CharField(max_length=200, blank=True)
    count = models.PositiveIntegerField(default=0)
    waits = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["span", "day", "figure", "rule", "dim"]
        constraints = [
            models.UniqueConstraint(fields=["span", "day", "figure", "rule", "dim"], name="daily_figure_unique"),
        ]
        indexes = [models.Index(fields=["span", "figure", "day"], name="daily_figure_by_figure_idx")]

    def __str__(self) -> str:
        return f"{self.span} {self.day} {self.figure} {self.rule}/{self.dim}: {self.count}"
