"""The things enforced upon: customer accounts and their API keys.

A key's ``status`` and effective limits are a cache of what the enforcement actions
in force impose on it; ``accounts.services.key_states_recompute`` is the one function
that writes them.
"""

import secrets
import string

from django.db import models
from django.db.models import Q

from accounts.tokens import KIND_PREFIXES, PREFIX_LENGTH


def new_account_public_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "acct_" + "".join(secrets.choice(alphabet) for _ in range(16))


class Account(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        CLOSED = "closed", "Closed"

    public_id = models.CharField(max_length=64, unique=True, default=new_account_public_id)
    name = models.CharField(max_length=200)
    email = models.EmailField("notification email")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["public_id"]
        indexes = [models.Index(fields=["email"])]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.name})"


class KeyStatus(models.TextChoices):
    """Ordered from least to most restrictive; the most restrictive in force wins."""

    ACTIVE = "active", "Active"
    THROTTLED = "throttled", "Throttled"
    SUSPENDED = "suspended", "Suspended"
    REVOKED = "revoked", "Revoked"


STATUS_RANK = {status: rank for rank, status in enumerate(KeyStatus.values)}


class APIKey(models.Model):
    class Kind(models.TextChoices):
        PUBLISHABLE = "publishable", "Publishable (pk_live_)"
        SECRET = "secret", "Secret (sk_live_)"
        RESTRICTED = "restricted", "Restricted (rk_live_)"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="keys")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    prefix = models.CharField(max_length=PREFIX_LENGTH, unique=True)
    token_sha256 = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=200, blank=True)

    base_rate_limit_per_minute = models.PositiveIntegerField(default=1000)
    base_ip_rate_limit_per_minute = models.PositiveIntegerField(default=100)

    # Effective state: derived from the actions in force (see accounts.services).
    status = models.CharField(max_length=16, choices=KeyStatus.choices, default=KeyStatus.ACTIVE)
    rate_limit_per_minute = models.PositiveIntegerField(default=1000)
    ip_rate_limit_per_minute = models.PositiveIntegerField(default=100)
    state_version = models.PositiveBigIntegerField(default=1)
    state_changed_at = models.DateTimeField(null=True, blank=True)

    # Revoked in its own right (exposed publicly, rolled), independent of any action.
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=200, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["prefix"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="publishable", prefix__startswith=KIND_PREFIXES["publishable"])
                | Q(kind="secret", prefix__startswith=KIND_PREFIXES["secret"])
                | Q(kind="restricted", prefix__startswith=KIND_PREFIXES["restricted"]),
                name="apikey_kind_matches_prefix",
            ),
            models.CheckConstraint(
                condition=Q(status__in=KeyStatus.values), name="apikey_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["account", "status"]),
            models.Index(fields=["updated_at"]),  # the edge store's periodic republish of recent changes
        ]

    def __str__(self) -> str:
        return self.prefix
