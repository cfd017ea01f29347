"""The email outbox: rows written with the state change that causes them, sent by a task.

A row is unique per (event_key, recipient), so a state change that is retried cannot
write a second email; sending claims the row with a conditional UPDATE (one claim, one
attempt), so two workers running the same send cannot both deliver it. A row ends ``sent``
(with its Message-ID), or ``failed`` on a permanent refusal (a 5xx for that recipient, a broken
template). A passing failure (the server down or slow, a 4xx reply) sets ``next_attempt_at`` with
capped exponential backoff, and the task and the sweep try again when it is due, for
``EMAIL_RETRY_HOURS`` after the first failure: an SMTP outage delays notices, never loses them.
Customer notices pending for over ``STUCK_AFTER`` are shown to staff on the console's front page
and by ``/readyz`` (channels that do not depend on the same SMTP server).
"""

import logging
import smtplib
from datetime import datetime, timedelta
from email.utils import parseaddr

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.utils import timezone

from enforcement.actors import ROLE_LEAD, SYSTEM, WORK_CASE, Actor
from enforcement.audit import audit_record
from enforcement.errors import NotFound
from enforcement.models import EnforcementAction, Notification
from enforcement.notifications.facts import clean
from enforcement.notifications.rendering import render
from lib import queue

log = logging.getLogger(__name__)


SEND_TASK = "enforcement.tasks.send_notification"
CLAIM_LEASE = timedelta(minutes=5)
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 30 * 60
STUCK_AFTER = timedelta(minutes=15)


class SendDeferred(Exception):
    """A passing failure: the notice is tried again at ``retry_at`` (the task retries then; so does the sweep)."""

    def __init__(self, message: str, retry_at: datetime):
        super().__init__(message)
        self.retry_at = retry_at


def retry_delay(attempts: int) -> int:
    """Seconds to wait after the ``attempts``-th failed try: 30 s, 1 min, 2 min ... at most 30 min."""
    return min(FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1), MAX_RETRY_SECONDS)


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
    "staff_detector_act_first": Notification.Audience.STAFF,
}


def notify_recipients(
    *, template, recipients, event_key, case=None, action=None, account=None, context
) -> list[Notification]:
    """Write one notice of ``template`` per recipient, once per event; each is sent after commit."""
    assert template in TEMPLATES, template
    context = clean(context)
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
        queue.enqueue_on_commit(SEND_TASK, notification.pk)
        written.append(notification)
    return written


def notify_customer(*, template: str, event_key: str, action: EnforcementAction, context: dict) -> list[Notification]:
    account = action.account
    return notify_recipients(template=template, recipients=[account.email], event_key=event_key, case=action.case,
                  action=action, account=account, context=context)


def notify_account(*, template: str, event_key: str, account, context: dict, case=None) -> list[Notification]:
    return notify_recipients(template=template, recipients=[account.email], event_key=event_key, case=case,
                  account=account, context=context)


def staff_recipients(*, leads_only: bool) -> list[str]:
    recipients = list(settings.STAFF_ALERT_EMAILS)
    if leads_only:
        leads = get_user_model().objects.filter(
            Q(groups__name=ROLE_LEAD) | Q(is_superuser=True), is_active=True, is_staff=True
        ).exclude(email="").values_list("email", flat=True).distinct().order_by("email")
        recipients = list(leads) or recipients
    return recipients


def notify_staff(*, template: str, event_key: str, context: dict, case=None, action=None,
                 leads_only: bool = False) -> list[Notification]:
    return notify_recipients(template=template, recipients=staff_recipients(leads_only=leads_only), event_key=event_key,
                  case=case, action=action, account=case.account if case else None, context=context)


def _claimable(now: datetime) -> Q:
    """Free to claim now: nobody holds it (or the holder's lease lapsed) and no backoff is running."""
    return (Q(claimed_at__isnull=True) | Q(claimed_at__lte=now - CLAIM_LEASE)) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


def stuck_ids(*, now: datetime, grace: timedelta) -> list[int]:
    """Pending emails due a try whose task seems lost: never tried within the grace, or their backoff ended."""
    due = Q(next_attempt_at__isnull=True, created_at__lte=now - grace) | Q(next_attempt_at__lte=now)
    return list(
        Notification.objects.filter(status=Notification.Status.PENDING).filter(due & _claimable(now))
        .order_by("pk").values_list("pk", flat=True)[:1000]
    )


def stuck_customer_notices(*, now: datetime | None = None) -> int:
    """Customer notices still unsent ``STUCK_AFTER`` after they were written (for the front page, /readyz)."""
    now = now or timezone.now()
    return Notification.objects.filter(
        status=Notification.Status.PENDING, audience=Notification.Audience.CUSTOMER,
        created_at__lte=now - STUCK_AFTER,
    ).count()


def _message_id_domain() -> str:
    return parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "millimetric.ai"


def _is_permanent(exc: Exception) -> bool:
    """Errors that another try cannot fix: the recipient or the message refused with a 5xx, a broken template.
    Everything else (refused connections, timeouts, 4xx replies, our sender refused) passes."""
    if isinstance(exc, TemplateDoesNotExist | TemplateSyntaxError):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPDataError) and exc.smtp_code >= 500


def _build_message(notification: Notification) -> EmailMultiAlternatives:
    context = dict(notification.context)
    if notification.account_id:
        context.setdefault("account_id", notification.account.public_id)
        context.setdefault("account_name", notification.account.name)
    if notification.case_id:
        context.setdefault("case_id", notification.case_id)
    subject, text, html = render(notification.template, context)
    # Mandatory service notices: no List-Unsubscribe; Auto-Submitted keeps auto-replies away.
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[notification.recipient],
        reply_to=[settings.EMAIL_REPLY_TO] if settings.EMAIL_REPLY_TO else None,
        headers={"Message-ID": notification.message_id, "Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(html, "text/html")
    return message


def notification_send(*, notification_id: int) -> Notification | None:
    """Send one email at most once: claim the row, send outside any transaction, record the result.

    Returns None when there is nothing to do (sent already, failed for good, another worker
    holds the claim, or its backoff is still running). Raises ``SendDeferred`` after a passing failure.
    """
    now = timezone.now()
    claimed = (
        Notification.objects.filter(pk=notification_id, status=Notification.Status.PENDING)
        .filter(_claimable(now))
        .update(claimed_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    # One Message-ID per email, kept across tries, so a duplicate after a lost reply can be recognised.
    Notification.objects.filter(pk=notification_id, message_id="").update(
        message_id=make_msgid(idstring=f"n{notification_id}", domain=_message_id_domain())
    )
    notification = Notification.objects.select_related("account").get(pk=notification_id)
    try:
        message = _build_message(notification)
        message.send(fail_silently=False)
    except Exception as exc:
        permanent = _is_permanent(exc)
        log.warning("sending notification %s failed (try %s%s): %s", notification_id, notification.attempts,
                    ", permanent" if permanent else "", exc)
        notification = notification_record_failure(
            notification_id=notification_id, error=f"{type(exc).__name__}: {exc}", final=permanent
        )
        if notification.status == Notification.Status.FAILED:
            return notification
        raise SendDeferred(str(exc), notification.next_attempt_at) from exc
    with transaction.atomic():
        updated = Notification.objects.filter(pk=notification_id, status=Notification.Status.PENDING).update(
            status=Notification.Status.SENT, sent_at=timezone.now(), subject=message.subject[:300], last_error="",
        )
        if updated:
            _audit(notification, "notification.sent", {"status": "sent", "message_id": notification.message_id})
    notification.refresh_from_db()
    return notification


def notification_record_failure(*, notification_id: int, error: str, final: bool = False) -> Notification:
    """Record a failed try (its claim ends): a permanent one (``final``) or one past ``retry_until`` fails the
    notice for good; a passing one sets when to try again."""
    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(pk=notification_id)
        if notification.status != Notification.Status.PENDING:
            return notification
        now = timezone.now()
        notification.last_error = error[:2000]
        notification.claimed_at = None
        if notification.retry_until is None:
            notification.retry_until = now + timedelta(hours=settings.ENFORCEMENT["EMAIL_RETRY_HOURS"])
        fields = ["last_error", "claimed_at", "retry_until", "next_attempt_at"]
        if final or now >= notification.retry_until:
            notification.status = Notification.Status.FAILED
            notification.next_attempt_at = None
            fields.append("status")
            _audit(notification, "notification.failed", {"status": "failed", "error": error[:300]})
        else:
            notification.next_attempt_at = now + timedelta(seconds=retry_delay(notification.attempts))
        notification.save(update_fields=fields)
        return notification


def notification_resend(*, actor: Actor, notification_id: int) -> Notification:
    """Put a failed email back in the outbox (admin button)."""
    actor.require(WORK_CASE, "You may not resend emails.")
    with transaction.atomic():
        notification = Notification.objects.select_for_update().filter(pk=notification_id).first()
        if notification is None:
            raise NotFound(f"No email {notification_id}.")
        if notification.status != Notification.Status.FAILED:
            return notification
        notification.status = Notification.Status.PENDING
        notification.attempts = 0
        notification.claimed_at = notification.next_attempt_at = notification.retry_until = None
        notification.save(update_fields=["status", "attempts", "claimed_at", "next_attempt_at", "retry_until"])
        audit_record(actor=actor, verb="notification.resent", target=notification, case=notification.case,
                     account=notification.account, before={"status": "failed"}, after={"status": "pending"})
        queue.enqueue_on_commit(SEND_TASK, notification.pk)
    return notification


def _audit(notification: Notification, verb: str, after: dict) -> None:
    audit_record(actor=SYSTEM, verb=verb, target=notification, case=notification.case,
                 account=notification.account, after={**after, "template": notification.template,
                                                      "recipient": notification.recipient})

