"""The email outbox: rows written with the state change that causes them, sent by a task.

A row is unique per (event_key, recipient), so a state change that is retried cannot
write a second email; sending claims the row with a conditional UPDATE, so two workers
running the same send cannot both deliver it. A row ends ``sent`` (with its Message-ID)
or, after ``MAX_SEND_ATTEMPTS`` tries or a permanent refusal, ``failed`` (with the error).

What goes into an email is the stored context, redacted again when written and when
rendered; evidence is never part of it.
"""

import copy
import logging
import re
import smtplib
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.defaultfilters import pluralize
from django.template.loader import render_to_string
from django.utils import timezone

from enforcement.actors import ROLE_LEAD, SYSTEM
from enforcement.models import Case, EnforcementAction, Notification
from enforcement.redaction import REDACTED, redact
from lib import queue

log = logging.getLogger(__name__)

MAX_SEND_ATTEMPTS = 5
SEND_TASK = "enforcement.tasks.send_notification"
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

# How an action is named in a sentence ("the suspension on your account").
ACTION_LABELS = {
    "warning": "warning",
    "throttle": "rate limit",
    "suspend": "suspension",
    "terminate": "account closure",
}

KEY_KIND_LABELS = {"pk_live_": "publishable key", "sk_live_": "secret key", "rk_live_": "restricted key"}

# What the customer should do, per rule of the policy; shown under "What to do".
REMEDIATION = {
    "covert-tracking": "Show people a clear notice (and ask for consent where the law requires it) before your "
    "site or app sends their events, or stop sending events about people who were not informed.",
    "special-category-data": "Stop sending the special-category properties described above, or reply with the "
    "legal basis you rely on for them. Remove them from your tracking code and check that no other event "
    "carries them.",
    "childrens-data": "Stop sending events about children, or reply to show us how you comply with COPPA or the "
    "equivalent law (for example, verifiable parental consent).",
    "secrets-in-events": "Remove the field from the events you send, and check your tracking code for other places "
    "that copy form fields or request bodies into events. If a password or secret was sent, change it: treat it "
    "as exposed.",
    "security-abuse": "Stop the traffic described above. If you are doing security research, report it to "
    "security@millimetric.ai and follow our disclosure policy: research in good faith is welcome.",
    "key-exposure": "Replace the exposed key with a new one, remove it from the public place where it was found, "
    "and use the right key type: pk_live_ keys in browsers, sk_live_ keys only on servers, rk_live_ keys for "
    "read-only analytics.",
    "spam-fraud": "Stop sending events that do not come from real visitors of sites you own (bots, click farms, "
    "scraped pages), and reply to tell us how the traffic was produced.",
    "malware-illegal-content": "Remove the malware or content from the site running our snippet, or remove our "
    "snippet from that site, and reply when it is done.",
    "impersonation": "Stop presenting your account, site or events as another person or organisation, and reply "
    "to tell us what you changed.",
    "unlawful-use": "Stop the use described above and reply to tell us what you changed; if you believe the use "
    "is lawful, tell us why.",
    "rate-limit-overuse": "Keep your traffic within the published per-key and per-IP rate limits (batch events and "
    "back off when you get a 429 response), or reply to ask for a higher limit.",
    "sustained-rate-abuse": "Stop sending events on behalf of sites or customers who did not sign up, and reply to "
    "tell us which key or integration produced the traffic.",
    "security-research": "Nothing is required of you. Please report any findings to security@millimetric.ai.",
}
DEFAULT_REMEDIATION = "Stop the activity described above and reply to this email to tell us what you changed."

# Why an act-first action could not wait for a conversation, per rule.
URGENCY = {
    "security-abuse": "Probing and denial-of-service traffic puts the service, and every customer who relies on it, "
    "at risk for as long as it continues.",
    "spam-fraud": "Fraudulent traffic distorts other people's analytics and can inflate their bills for as long as "
    "it continues.",
    "malware-illegal-content": "A site serving malware or illegal content harms its visitors for as long as it "
    "stays up.",
    "sustained-rate-abuse": "The traffic was ongoing and was affecting the service and other customers' bills; a "
    "warning could not have stopped it in time.",
}
DEFAULT_URGENCY = "The activity was ongoing and was causing harm that a warning could not have stopped in time."

# Never put into an email, whatever a caller passes.
_NEVER_RENDERED = {"evidence", "token", "raw_token"}


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


# Labels of the people and tokens that acted: names, not secrets ("token:abuse-detector").
_VERBATIM = {"requested_by"}


def _secret_field(key: str | None) -> bool:
    return key is not None and redact("x", key=key) == REDACTED


def _clean(value, *, key: str | None = None):
    """Drop what must never be emailed; redact card numbers, key tokens and secrets in the rest."""
    if key in _VERBATIM and isinstance(value, str):
        return value
    if isinstance(value, dict | list | tuple) and _secret_field(key):
        return REDACTED
    if isinstance(value, dict):
        return {k: _clean(v, key=str(k)) for k, v in value.items() if k not in _NEVER_RENDERED}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return redact(value, key=key)


def _write(*, template, recipients, event_key, case=None, action=None, account=None, context) -> list[Notification]:
    assert template in TEMPLATES, template
    context = _clean(context)
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


# --------------------------------------------------------------------------- rendering


def _parse_dates(value, *, key: str = ""):
    """ISO strings under ``*_at`` / ``*_deadline`` keys become aware datetimes, for the ``date`` filter."""
    if isinstance(value, dict):
        return {k: _parse_dates(v, key=k) for k, v in value.items()}
    if isinstance(value, list):
        return [_parse_dates(item) for item in value]
    if isinstance(value, str) and (key.endswith("_at") or key.endswith("_deadline")):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)
    return value


def _with_guidance(violation: dict) -> dict:
    rule = violation.get("rule")
    return {**violation, "what_to_do": REMEDIATION.get(rule, DEFAULT_REMEDIATION),
            "why_urgent": URGENCY.get(rule, DEFAULT_URGENCY)}


def _render_context(context: dict) -> dict:
    ctx = _parse_dates(_clean(copy.deepcopy(context)))
    violations = [_with_guidance(v) for v in ctx.get("violations") or [] if isinstance(v, dict)]
    violation = _with_guidance(ctx["violation"]) if isinstance(ctx.get("violation"), dict) else None
    ctx["violations"] = violations
    ctx["violation"] = violation
    # The one violation the email leads with: the reported one, or the latest open one.
    ctx["primary"] = violation or (violations[0] if violations else None)
    ctx["guidance"] = list(dict.fromkeys(v["what_to_do"] for v in violations or [violation] if v)) or [
        DEFAULT_REMEDIATION
    ]
    keys = ctx.get("keys") or []
    ctx["keys_phrase"] = (
        f"your API key{pluralize(keys)} {', '.join(keys)}" if keys else "all API keys of your account"
    )
    kind = ctx.get("action_kind") or ""
    ctx["action_label"] = ACTION_LABELS.get(kind, kind)
    ctx["action_status_label"] = (ctx.get("action_status") or "").replace("_", " ")
    key_prefix = ctx.get("key_prefix") or ""
    ctx["key_kind_label"] = next((label for p, label in KEY_KIND_LABELS.items() if key_prefix.startswith(p)), "key")
    leak_url = ctx.get("leak_url") or ""
    ctx["leak_link"] = leak_url if leak_url.startswith(("https://", "http://")) else ""
    ctx["support_email"] = settings.EMAIL_REPLY_TO or parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    ctx["appeal_window_days"] = settings.ENFORCEMENT["APPEAL_WINDOW_DAYS"]
    base_url = getattr(settings, "CONSOLE_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    ctx["console_base_url"] = base_url
    ctx["case_url"] = f"{base_url}/admin/enforcement/case/{ctx['case_id']}/change/" if ctx.get("case_id") else ""
    return ctx


def _tidy_text(text: str) -> str:
    """Template tags leave blank lines behind: keep at most one between paragraphs."""
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def render(template: str, context: dict) -> tuple[str, str, str]:
    """Subject, plain text and HTML of one email."""
    ctx = _render_context(context)
    subject = render_to_string(f"emails/{template}.subject.txt", ctx)
    text = render_to_string(f"emails/{template}.txt", ctx)
    html = render_to_string(f"emails/{template}.html", {**ctx, "subject": " ".join(subject.split())})
    return " ".join(subject.split()), _tidy_text(text), html


# --------------------------------------------------------------------------- sending


def stuck_ids(*, now: datetime, grace: timedelta) -> list[int]:
    """Pending emails whose send task seems lost (or whose claim lapsed)."""
    return list(
        Notification.objects.filter(status=Notification.Status.PENDING, created_at__lte=now - grace)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lte=now - CLAIM_LEASE))
        .values_list("pk", flat=True)[:1000]
    )


def _message_id_domain() -> str:
    return parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "millimetric.ai"


def _is_permanent(exc: Exception) -> bool:
    """Errors that another try cannot fix: a refused recipient or message, a broken template."""
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

    Returns None when there is nothing to do (sent already, failed for good, or another
    worker holds the claim). Raises after a failure that is worth another try.
    """
    now = timezone.now()
    claimed = (
        Notification.objects.filter(pk=notification_id, status=Notification.Status.PENDING)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lte=now - CLAIM_LEASE))
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
        raise
    with transaction.atomic():
        updated = Notification.objects.filter(pk=notification_id, status=Notification.Status.PENDING).update(
            status=Notification.Status.SENT, sent_at=timezone.now(), subject=message.subject[:300], last_error="",
        )
        if updated:
            _audit(notification, "notification.sent", {"status": "sent", "message_id": notification.message_id})
    notification.refresh_from_db()
    return notification


def notification_record_failure(*, notification_id: int, error: str, final: bool = False) -> Notification:
    """Record a failed try; the row fails for good after the last try or when ``final``."""
    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(pk=notification_id)
        if notification.status != Notification.Status.PENDING:
            return notification
        notification.last_error = error[:2000]
        notification.claimed_at = None
        fields = ["last_error", "claimed_at"]
        if final or notification.attempts >= MAX_SEND_ATTEMPTS:
            notification.status = Notification.Status.FAILED
            fields.append("status")
            _audit(notification, "notification.failed", {"status": "failed", "error": error[:300]})
        notification.save(update_fields=fields)
        return notification


def notification_resend(*, actor, notification_id: int) -> Notification:
    """Put a failed email back in the outbox (admin button)."""
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
        queue.enqueue_on_commit(SEND_TASK, notification.pk)
    return notification


def _audit(notification: Notification, verb: str, after: dict) -> None:
    from enforcement.audit import audit_record

    audit_record(actor=SYSTEM, verb=verb, target=notification, case=notification.case,
                 account=notification.account, after={**after, "template": notification.template,
                                                      "recipient": notification.recipient})


# --------------------------------------------------------------------------- sample data


_SAMPLE_CASE = {
    "case_id": 1042,
    "case_severity": "medium",
    "review_due_at": "2026-11-30T11:40:00+00:00",
    "account_id": "acct_demo00000000001",
    "account_name": "Acme Analytics Ltd",
    "rules": [{"code": "secrets-in-events", "title": "Card numbers, government IDs, passwords or secrets in events"}],
}
_SAMPLE_SECRETS = {
    "rule": "secrets-in-events",
    "rule_title": "Card numbers, government IDs, passwords or secrets in events",
    "rule_clause": "Don't send full credit-card numbers, government IDs, passwords, or other secrets. "
    "They don't belong in analytics events.",
    "summary": "The event property card_number carried a full card number ([CARD REDACTED ...1111]) "
    "in 312 checkout events sent with key sk_live_4eC39HqL.",
    "severity": "medium",
}
_SAMPLE_ABUSE = {
    "rule": "sustained-rate-abuse",
    "rule_title": "Sustained abuse of the ingest path",
    "rule_clause": "Sustained abuse (sending events on behalf of a customer who didn't sign up, deliberately "
    "spiking another customer's bill, etc.) is grounds for immediate suspension.",
    "summary": "Key sk_live_4eC39HqL sent 2.1 million events in 30 minutes on behalf of 212 sites that are "
    "not registered to the account.",
    "severity": "critical",
}
_SAMPLE_ACTION = {
    "action_id": 77,
    "action_kind": "warning",
    "action_status": "applied",
    "reason": "medium severity, no strikes in 90 days -> warning",
    "act_first": False,
    "rate_limit_per_minute": None,
    "ip_rate_limit_per_minute": None,
    "expires_at": None,
    "remediation_deadline": None,
    "keys": [],
    "requested_by": "agent.alex",
    "last_error": "",
    "violations": [_SAMPLE_SECRETS],
}


def _sample_action(**changes) -> dict:
    return {**_SAMPLE_CASE, **_SAMPLE_ACTION, **changes}


def _sample_abuse_case(**changes) -> dict:
    return _sample_action(
        case_severity="critical", review_due_at="2026-11-29T12:40:00+00:00",
        rules=[{"code": "sustained-rate-abuse", "title": "Sustained abuse of the ingest path"}],
        violations=[_SAMPLE_ABUSE], **changes,
    )


def _samples() -> dict[str, dict]:
    suspension = {
        "action_kind": "suspend", "act_first": True, "requested_by": "token:abuse-detector (act-first)",
        "reason": "Act first on sustained-rate-abuse: critical severity under an act-first rule, trusted source "
        "-> suspend",
    }
    return {
        "customer_warning": _sample_action(remediation_deadline="2026-12-06T12:00:00+00:00"),
        "customer_throttle": _sample_action(
            action_id=78, action_kind="throttle", case_severity="medium", rate_limit_per_minute=60,
            ip_rate_limit_per_minute=10, expires_at="2026-12-20T12:00:00+00:00", keys=["sk_live_4eC39HqL"],
            requested_by="system", reason="Warning #77 passed its remediation deadline unresolved -> throttle",
        ),
        "customer_suspend": _sample_abuse_case(**suspension, action_id=79),
        "customer_terminate": _sample_action(
            action_id=80, action_kind="terminate", case_severity="high", requested_by="lead.sam",
            reason="third strike in 90 days -> terminate",
            rules=[*_SAMPLE_CASE["rules"], {"code": "sustained-rate-abuse",
                                            "title": "Sustained abuse of the ingest path"}],
            violations=[_SAMPLE_ABUSE, _SAMPLE_SECRETS],
        ),
        "customer_lifted": _sample_abuse_case(**suspension, action_id=79, action_status="reverted", how="reverted"),
        "customer_appeal_received": _sample_abuse_case(**suspension, action_id=79, appeal_id=12),
        "customer_appeal_decided": _sample_abuse_case(
            **suspension, action_id=79, action_status="reverted", outcome="overturned",
            note="The traffic came from a load test against your own staging sites; we have lifted the suspension.",
        ),
        "customer_key_revoked": {
            **_SAMPLE_CASE,
            "rules": [{"code": "key-exposure", "title": "API key shared publicly or of the wrong type"}],
            "key_prefix": "sk_live_4eC39HqL",
            "key_kind": "secret",
            "leak_url": "https://github.com/acme-analytics/shop/blob/3f2a9c1/config/settings.py",
            "leak_source": "commit",
            "revoked_at": "2026-11-29T11:41:07+00:00",
        },
        "staff_critical_case": {
            **_SAMPLE_CASE, "case_severity": "critical", "review_due_at": "2026-11-29T12:40:00+00:00",
            "rules": [{"code": "sustained-rate-abuse", "title": "Sustained abuse of the ingest path"}],
            "violation": {**_SAMPLE_ABUSE, "id": 9002, "observed_at": "2026-11-29T11:40:00+00:00",
                          "api_key": "sk_live_4eC39HqL"},
        },
        "staff_awaiting_approval": _sample_action(
            action_id=81, action_kind="suspend", action_status="awaiting_approval", case_severity="high",
            requested_by="agent.alex", reason="Card numbers again after the warning; the throttle did not stop it.",
        ),
        "staff_action_failed": _sample_action(
            action_id=78, action_kind="throttle", action_status="failed", rate_limit_per_minute=60,
            ip_rate_limit_per_minute=10, requested_by="system",
            reason="Warning #77 passed its remediation deadline unresolved -> throttle",
            last_error="OperationalError: could not connect to server: Connection refused",
        ),
        "staff_act_first_review": _sample_abuse_case(**suspension, action_id=79, action_status="scheduled"),
    }


def sample_context(template: str) -> dict:
    """Made-up but realistic data for previewing a template (admin) and for template tests.

    Each sample has the shape the services write for that template; a fresh copy every call.
    """
    samples = _samples()
    if template not in samples:
        raise KeyError(f"No email template {template!r}; see notifications.TEMPLATES.")
    return copy.deepcopy(samples[template])
