"""The email outbox: rows written with the state change that causes them, sent by a task.

A row is unique per (event_key, recipient), so a state change that is retried cannot
write a second email; sending claims the row with a conditional UPDATE, so two workers
running the same send cannot both deliver it.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from enforcement.actors import ROLE_LEAD, SYSTEM
from enforcement.models import Case, EnforcementAction, Notification

log = logging.getLogger(__name__)

MAX_SEND_ATTEMPTS = 5
CLAIM_LEASE = timedelta(minutes=5)

# Every template, with who it is for; the admin's preview lists these.
TEMPLATES = {
    "customer_warning": Notification.Audience.CUSTOMER,
    "customer_throttle": Notification.Audience.CUSTOMER,
    "customer_suspend": Notification.Audience.CUSTOMER,
    "customer_terminate": Notification.Audience.CUSTOMER,
    "customer_lifted": Notification.Audience.CUSTOMER,
    "customer_appeal_received": Notification.Audience.CUSTOMER,
    "customer_appeal_decided": Notification.Audience.CUSTOMER,
    "customer_key_revoked": Notification.Audience.CUSTOMER,
    "staff_critical_case": Notification.Audience.STAFF,
    "staff_awaiting_approval": Notification.Audience.STAFF,
    "staff_action_failed": Notification.Audience.STAFF,
    "staff_act_first_review": Notification.Audience.STAFF,
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def case_context(case: Case, *, violation=None) -> dict:
    rules = sorted({(v.rule.code, v.rule.title) for v in case.violations.select_related("rule")})
    context = {
        "case_id": case.pk,
        "case_severity": case.severity,
        "review_due_at": _iso(case.review_due_at),
        "account_id": case.account.public_id,
        "account_name": case.account.name,
        "rules": [{"code": code, "title": title} for code, title in rules],
    }
    if violation is not None:
        context["violation"] = {
            "id": violation.pk,
            "rule": violation.rule.code,
            "rule_title": violation.rule.title,
            "rule_clause": violation.rule.clause,
            "severity": violation.severity,
            "summary": violation.summary,
            "observed_at": _iso(violation.observed_at),
            "api_key": violation.api_key.prefix if violation.api_key_id else None,
        }
    return context


def action_context(action: EnforcementAction) -> dict:
    case = action.case
    violations = list(case.violations.select_related("rule").filter(status="open").order_by("-reported_at")[:5])
    return {
        **case_context(case),
        "action_id": action.pk,
        "action_kind": action.kind,
        "action_status": action.status,
        "reason": action.reason,
        "act_first": action.act_first,
        "rate_limit_per_minute": action.rate_limit_per_minute,
        "ip_rate_limit_per_minute": action.ip_rate_limit_per_minute,
        "expires_at": _iso(action.expires_at),
        "remediation_deadline": _iso(action.remediation_deadline),
        "keys": list(action.keys.values_list("prefix", flat=True)) if action.pk else [],
        "requested_by": action.requested_by_label,
        "last_error": action.last_error[:300],
        "violations": [
            {"rule": v.rule.code, "rule_title": v.rule.title, "rule_clause": v.rule.clause,
             "summary": v.summary, "severity": v.severity}
            for v in violations
        ],
    }


def _write(*, template, recipients, event_key, case=None, action=None, account=None, context) -> list[Notification]:
    from enforcement import tasks

    assert template in TEMPLATES, template
    written = []
    for recipient in dict.fromkeys(r for r in recipients if r):
        try:
            with transaction.atomic():
                notification = Notification.objects.create(
                    event_key=event_key, template=template, audience=TEMPLATES[template], recipient=recipient,
                    context=context, case=case, action=action, account=account,
                )
        except IntegrityError:
            continue  # this event was already written for this recipient
        tasks.enqueue_on_commit(tasks.send_notification, notification.pk)
        written.append(notification)
    return written


def notify_customer(*, template: str, event_key: str, action: EnforcementAction, context: dict) -> list[Notification]:
    account = action.account
    return _write(template=template, recipients=[account.email], event_key=event_key, case=action.case,
                  action=action, account=account, context=context)


def notify_account(*, template: str, event_key: str, account, context: dict, case=None) -> list[Notification]:
    return _write(template=template, recipients=[account.email], event_key=event_key, case=case,
                  account=account, context=context)


def staff_recipients(*, leads_only: bool) -> list[str]:
    recipients = list(settings.STAFF_ALERT_EMAILS)
    if leads_only:
        leads = get_user_model().objects.filter(
            Q(groups__name=ROLE_LEAD) | Q(is_superuser=True), is_active=True, is_staff=True
        ).exclude(email="").values_list("email", flat=True).distinct()
        recipients = list(leads) or recipients
    return recipients


def notify_staff(*, template: str, event_key: str, context: dict, case=None, action=None,
                 leads_only: bool = False) -> list[Notification]:
    return _write(template=template, recipients=staff_recipients(leads_only=leads_only), event_key=event_key,
                  case=case, action=action, account=case.account if case else None, context=context)


def render(template: str, context: dict) -> tuple[str, str, str]:
    """Subject, plain text and HTML of one email."""
    ctx = {**context, "support_email": settings.EMAIL_REPLY_TO}
    subject = render_to_string(f"emails/{template}.subject.txt", ctx).strip()
    text = render_to_string(f"emails/{template}.txt", ctx)
    html = render_to_string(f"emails/{template}.html", ctx)
    return " ".join(subject.split()), text, html


def stuck_ids(*, now: datetime, grace: timedelta) -> list[int]:
    """Pending emails whose send task seems lost (or whose claim lapsed)."""
    return list(
        Notification.objects.filter(status=Notification.Status.PENDING, created_at__lte=now - grace)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lte=now - CLAIM_LEASE))
        .values_list("pk", flat=True)[:1000]
    )


def notification_send(*, notification_id: int) -> Notification | None:
    """Send one email at most once: claim the row, send outside any transaction, record the result."""
    now = timezone.now()
    claimed = (
        Notification.objects.filter(pk=notification_id, status=Notification.Status.PENDING)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lte=now - CLAIM_LEASE))
        .update(claimed_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None  # sent already, failed for good, or another worker holds it
    notification = Notification.objects.get(pk=notification_id)
    message_id = make_msgid(domain="millimetric.ai")
    try:
        subject, text, html = render(notification.template, notification.context)
        message = EmailMultiAlternatives(
            subject=subject, body=text, to=[notification.recipient], reply_to=[settings.EMAIL_REPLY_TO],
            headers={"Message-ID": message_id, "Auto-Submitted": "auto-generated"},
        )
        message.attach_alternative(html, "text/html")
        message.send(fail_silently=False)
    except Exception as exc:
        notification_record_failure(notification_id=notification_id, error=f"{type(exc).__name__}: {exc}")
        raise
    with transaction.atomic():
        updated = Notification.objects.filter(pk=notification_id, status=Notification.Status.PENDING).update(
            status=Notification.Status.SENT, sent_at=timezone.now(), message_id=message_id, subject=subject[:300],
            last_error="",
        )
        if updated:
            _audit(notification, "notification.sent", {"status": "sent", "message_id": message_id})
    notification.refresh_from_db()
    return notification


def notification_record_failure(*, notification_id: int, error: str) -> Notification:
    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(pk=notification_id)
        if notification.status != Notification.Status.PENDING:
            return notification
        notification.last_error = error[:2000]
        notification.claimed_at = None
        fields = ["last_error", "claimed_at"]
        if notification.attempts >= MAX_SEND_ATTEMPTS:
            notification.status = Notification.Status.FAILED
            fields.append("status")
            _audit(notification, "notification.failed", {"status": "failed", "error": error[:300]})
        notification.save(update_fields=fields)
        return notification


def notification_resend(*, actor, notification_id: int) -> Notification:
    """Put a failed email back in the outbox (admin button)."""
    from enforcement import tasks
    from enforcement.audit import audit_record

    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(pk=notification_id)
        if notification.status != Notification.Status.FAILED:
            return notification
        notification.status = Notification.Status.PENDING
        notification.attempts = 0
        notification.claimed_at = None
        notification.save(update_fields=["status", "attempts", "claimed_at"])
        audit_record(actor=actor, verb="notification.resent", target=notification, case=notification.case,
                     account=notification.account, before={"status": "failed"}, after={"status": "pending"})
        tasks.enqueue_on_commit(tasks.send_notification, notification.pk)
    return notification


def _audit(notification: Notification, verb: str, after: dict) -> None:
    from enforcement.audit import audit_record

    audit_record(actor=SYSTEM, verb=verb, target=notification, case=notification.case,
                 account=notification.account, after={**after, "template": notification.template,
                                                      "recipient": notification.recipient})


def sample_context(template: str) -> dict:
    """Made-up but realistic data for previewing a template (admin) and for template tests."""
    base = {
        "case_id": 1042,
        "case_severity": "high",
        "review_due_at": "2026-11-29T14:00:00+00:00",
        "account_id": "acct_demo00000000001",
        "account_name": "Acme Analytics Ltd",
        "rules": [{"code": "secrets-in-events", "title": "Card numbers, government IDs, passwords or secrets in events"}],
        "action_id": 77,
        "action_kind": template.removeprefix("customer_").removeprefix("staff_"),
        "action_status": "applied",
        "reason": "high severity, 1 strike in 90 days -> throttle",
        "act_first": template == "customer_suspend",
        "rate_limit_per_minute": 60,
        "ip_rate_limit_per_minute": 10,
        "expires_at": "2026-12-06T12:00:00+00:00",
        "remediation_deadline": "2026-12-06T12:00:00+00:00",
        "keys": ["sk_live_4eC39HqL"],
        "requested_by": "agent.alex",
        "last_error": "OperationalError: could not connect to server",
        "violations": [
            {
                "rule": "secrets-in-events",
                "rule_title": "Card numbers, government IDs, passwords or secrets in events",
                "rule_clause": "Don't send full credit-card numbers, government IDs, passwords, or other secrets.",
                "summary": "Event property card_number carried [CARD REDACTED ...1111] in 312 events.",
                "severity": "high",
            }
        ],
        "violation": {
            "id": 9001,
            "rule": "secrets-in-events",
            "rule_title": "Card numbers, government IDs, passwords or secrets in events",
            "rule_clause": "Don't send full credit-card numbers, government IDs, passwords, or other secrets.",
            "severity": "critical",
            "summary": "Event property card_number carried [CARD REDACTED ...1111] in 312 events.",
            "observed_at": "2026-11-29T11:40:00+00:00",
            "api_key": "sk_live_4eC39HqL",
        },
        "how": "reverted",
        "outcome": "overturned",
        "note": "The events were from a test harness and have been deleted.",
        "appeal_id": 12,
        "key_prefix": "sk_live_4eC39HqL",
        "leak_url": "https://github.com/example/repo/blob/main/.env",
    }
    return base
