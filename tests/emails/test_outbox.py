"""The Notification outbox: written once per (event, recipient), sent at most once, retried, failed, resent, swept."""

import smtplib
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connection
from django.utils import timezone

from config.celery import app as celery_app
from enforcement import notifications, services, tasks
from enforcement.models import AuditEvent, EnforcementAction, Notification
from enforcement.notifications import TEMPLATES, notification_send, outbox, sample_context
from tests.factories import AccountFactory, APIKeyFactory, UserFactory

pytestmark = pytest.mark.django_db
BACKENDS = "tests.emails.test_outbox"


@pytest.fixture
def warned(account, keys, as_agent, django_capture_on_commit_callbacks):
    """A warning applied on a case; its customer email is written but not sent (the callbacks are dropped)."""
    with django_capture_on_commit_callbacks(execute=False):
        case = services.violation_report(
            actor=as_agent, account=account, rule="secrets-in-events", source="detector", external_id="e-1",
            summary="card 4111 1111 1111 1111 in 3 events", api_key=keys[1],
            evidence={"card_number": "4111111111111111", "visitor": "shopper@victim.example"},
        ).violation.case
        action = services.action_propose(actor=as_agent, case_id=case.pk, kind="warning", reason="card numbers")
        services.action_apply(action_id=action.pk)
    return Notification.objects.get(template="customer_warning")


def send_task(notification_id: int) -> str:
    return tasks.send_notification.apply(args=[notification_id]).get()


# ------------------------------------------------------------------ writing


def test_an_event_is_written_once_per_recipient(account, as_agent, django_capture_on_commit_callbacks, warned):
    action = warned.action
    with django_capture_on_commit_callbacks() as callbacks:
        again = notifications.notify_customer(template="customer_warning", event_key=warned.event_key,
                                              action=action, context=notifications.action_context(action))
    assert again == [] and callbacks == []
    assert Notification.objects.filter(event_key=warned.event_key).count() == 1
    # The same event for two staff addresses (one given twice) is two rows, two sends.
    with django_capture_on_commit_callbacks() as callbacks:
        written = notifications.notify_recipients(
            template="staff_action_failed", recipients=["a@x.test", "b@x.test", "a@x.test"], event_key="test:1",
            context=sample_context("staff_action_failed"),
        )
    assert [n.recipient for n in written] == ["a@x.test", "b@x.test"] and len(callbacks) == 2


def test_context_is_stored_without_evidence_or_secrets(account):
    action_context = {**sample_context("customer_appeal_decided"), "note": "card 4242424242424242, token=abc123",
                      "evidence": {"ip": "203.0.113.9"}}
    [row] = notifications.notify_account(template="customer_appeal_decided", event_key="test:ctx", account=account,
                                         context=action_context)
    stored = str(Notification.objects.get(pk=row.pk).context)
    assert "4242424242424242" not in stored and "abc123" not in stored and "203.0.113.9" not in stored
    assert "[CARD REDACTED ...4242]" in stored


def test_leads_get_approval_requests_and_everyone_else_goes_to_the_alert_list(settings, lead, second_lead, agent):
    settings.STAFF_ALERT_EMAILS = ["oncall@millimetric.ai", "tns@millimetric.ai"]
    UserFactory(username="retired-lead", role="tns_lead", is_active=False)
    assert sorted(notifications.staff_recipients(leads_only=True)) == ["lead2@millimetric.ai", "lead@millimetric.ai"]
    assert notifications.staff_recipients(leads_only=False) == ["oncall@millimetric.ai", "tns@millimetric.ai"]


def test_without_any_lead_approval_requests_go_to_the_alert_list(settings):
    settings.STAFF_ALERT_EMAILS = ["oncall@millimetric.ai"]
    assert notifications.staff_recipients(leads_only=True) == ["oncall@millimetric.ai"]


# ------------------------------------------------------------------ sending at most once


def test_send_task_twice_sends_once(warned, settings):
    assert send_task(warned.pk) == "sent"
    assert send_task(warned.pk) == "skipped"
    assert len(mail.outbox) == 1
    warned.refresh_from_db()
    assert warned.status == "sent" and warned.attempts == 1 and warned.sent_at and warned.last_error == ""
    message = mail.outbox[0]
    assert warned.message_id == message.extra_headers["Message-ID"]
    assert warned.message_id.startswith("<") and warned.message_id.endswith("@millimetric.ai>")
    assert warned.subject == message.subject and message.to == [warned.recipient]
    assert AuditEvent.objects.filter(verb="notification.sent", target_id=str(warned.pk)).count() == 1


def test_headers_of_a_mandatory_notice(warned, settings):
    settings.DEFAULT_FROM_EMAIL = "T&S <notices@millimetric.example>"
    settings.EMAIL_REPLY_TO = "appeals@millimetric.example"
    send_task(warned.pk)
    message = mail.outbox[0].message()
    assert message["From"] == "T&S <notices@millimetric.example>"
    assert message["Reply-To"] == "appeals@millimetric.example"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.get_payload()] == ["text/plain", "text/html"]
    assert message["Message-ID"].endswith("@millimetric.example>")


def test_no_reply_to_when_not_configured(warned, settings):
    settings.EMAIL_REPLY_TO = ""
    send_task(warned.pk)
    assert mail.outbox[0].message()["Reply-To"] is None


class ReentrantBackend(LocmemBackend):
    """While one worker is sending, a second worker runs the same send: it must find the row claimed."""

    second_try = None

    def send_messages(self, messages):
        notification_id = int(messages[0].extra_headers["Message-ID"].split("n", 1)[1].split("@")[0].split(".")[0])
        ReentrantBackend.second_try = notification_send(notification_id=notification_id)
        return super().send_messages(messages)


def test_a_claimed_email_is_not_sent_by_a_second_worker(warned, settings, monkeypatch):
    settings.EMAIL_BACKEND = f"{BACKENDS}.ReentrantBackend"
    monkeypatch.setattr(outbox, "make_msgid", lambda idstring, domain: f"<x.n{warned.pk}@{domain}>")
    assert send_task(warned.pk) == "sent"
    assert ReentrantBackend.second_try is None
    assert len(mail.outbox) == 1


def test_a_lapsed_claim_is_taken_over_and_a_fresh_one_is_not(warned):
    Notification.objects.filter(pk=warned.pk).update(claimed_at=timezone.now() - timedelta(minutes=1))
    assert notification_send(notification_id=warned.pk) is None
    Notification.objects.filter(pk=warned.pk).update(
        claimed_at=timezone.now() - notifications.CLAIM_LEASE - timedelta(seconds=1)
    )
    assert notification_send(notification_id=warned.pk).status == "sent"
    assert len(mail.outbox) == 1


# ------------------------------------------------------------------ failing and retrying


class FlakyBackend(BaseEmailBackend):
    """Refuses connections ``failures`` times, then delivers to the locmem outbox."""

    failures = 0
    calls = 0

    def send_messages(self, messages):
        FlakyBackend.calls += 1
        if FlakyBackend.calls <= FlakyBackend.failures:
            raise ConnectionRefusedError(111, "Connection refused")
        return LocmemBackend().send_messages(messages)


class RefusingBackend(BaseEmailBackend):
    def send_messages(self, messages):
        raise smtplib.SMTPRecipientsRefused({messages[0].to[0]: (550, b"5.1.1 Mailbox unavailable")})


@pytest.fixture
def eager_retries():
    """Eager tasks run their retries one after another, as a worker would run them after their delays."""
    propagates = celery_app.conf.task_eager_propagates
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_eager_propagates = propagates


@pytest.fixture
def flaky(settings, monkeypatch, eager_retries):
    """A mail server refusing connections ``FlakyBackend.failures`` times."""
    settings.EMAIL_BACKEND = f"{BACKENDS}.FlakyBackend"
    monkeypatch.setattr(FlakyBackend, "calls", 0)


def backoff_passes(notification_id: int) -> None:
    """Time moves on to the notice's next try (a worker would wait its countdown; the sweep its interval)."""
    Notification.objects.filter(pk=notification_id).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_a_passing_failure_is_retried_with_capped_exponential_backoff(warned, flaky, monkeypatch):
    monkeypatch.setattr(FlakyBackend, "failures", 2)
    delays = []
    for attempt in (1, 2):
        before = timezone.now()
        assert send_task(warned.pk) == "skipped"  # the try fails; its eager retry finds the backoff running
        row = Notification.objects.get(pk=warned.pk)
        assert (row.status, row.attempts, row.claimed_at) == ("pending", attempt, None)
        delays.append(round((row.next_attempt_at - before).total_seconds()))
        assert send_task(warned.pk) == "skipped"  # too early: no claim, no attempt counted
        assert Notification.objects.get(pk=warned.pk).attempts == attempt
        backoff_passes(warned.pk)
    assert delays == [30, 60]
    assert send_task(warned.pk) == "sent"
    warned.refresh_from_db()
    assert warned.status == "sent" and warned.attempts == 3 and warned.last_error == "" and len(mail.outbox) == 1
    assert [notifications.retry_delay(n) for n in (1, 2, 3, 7, 20)] == [30, 60, 120, 1800, 1800]


def test_a_notice_fails_only_after_its_retry_window(warned, flaky, monkeypatch, settings):
    monkeypatch.setattr(FlakyBackend, "failures", 99)
    send_task(warned.pk)
    row = Notification.objects.get(pk=warned.pk)
    hours = settings.ENFORCEMENT["EMAIL_RETRY_HOURS"]
    assert row.status == "pending" and abs((row.retry_until - timezone.now()).total_seconds() - hours * 3600) < 60
    Notification.objects.filter(pk=warned.pk).update(retry_until=timezone.now())  # a day of refusals later
    backoff_passes(warned.pk)
    assert send_task(warned.pk) == "failed"
    warned.refresh_from_db()
    assert warned.status == "failed" and warned.attempts == 2
    assert warned.last_error == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert mail.outbox == []
    failed = AuditEvent.objects.get(verb="notification.failed", target_id=str(warned.pk))
    assert failed.after["error"].startswith("ConnectionRefusedError")
    assert send_task(warned.pk) == "skipped"  # a late duplicate of the task changes nothing


def test_a_refused_recipient_fails_at_once(warned, settings):
    settings.EMAIL_BACKEND = f"{BACKENDS}.RefusingBackend"
    assert send_task(warned.pk) == "failed"
    warned.refresh_from_db()
    assert warned.status == "failed" and warned.attempts == 1 and "SMTPRecipientsRefused" in warned.last_error


def test_resend_puts_a_failed_email_back_and_sends_it(warned, flaky, monkeypatch, as_lead, run_on_commit):
    monkeypatch.setattr(FlakyBackend, "failures", 1)
    Notification.objects.filter(pk=warned.pk).update(retry_until=timezone.now())  # the first failure is final
    send_task(warned.pk)
    assert Notification.objects.get(pk=warned.pk).status == "failed"
    first_message_id = Notification.objects.get(pk=warned.pk).message_id
    resent = run_on_commit(notifications.notification_resend, actor=as_lead, notification_id=warned.pk)
    assert resent.pk == warned.pk
    warned.refresh_from_db()
    assert warned.status == "sent" and warned.attempts == 1 and len(mail.outbox) == 1
    assert warned.message_id == first_message_id  # one email, one Message-ID, however many tries
    event = AuditEvent.objects.get(verb="notification.resent")
    assert event.actor_label == "lead" and event.before == {"status": "failed"}
    # Resending what was sent is a no-op.
    run_on_commit(notifications.notification_resend, actor=as_lead, notification_id=warned.pk)
    assert len(mail.outbox) == 1 and AuditEvent.objects.filter(verb="notification.resent").count() == 1


# ------------------------------------------------------------------ the sweep


def test_sweep_sends_emails_whose_task_was_lost(warned, settings):
    grace = timedelta(seconds=settings.ENFORCEMENT["SWEEP_GRACE_SECONDS"])
    assert services.sweep(now=timezone.now()).requeued_notifications == []  # still within the grace period
    assert mail.outbox == []
    later = timezone.now() + grace + timedelta(seconds=1)
    report = services.sweep(now=later)
    assert report.requeued_notifications == [warned.pk]
    assert len(mail.outbox) == 1 and Notification.objects.get(pk=warned.pk).status == "sent"
    assert services.sweep(now=later).requeued_notifications == []
    assert len(mail.outbox) == 1


def test_sweep_leaves_a_fresh_claim_alone_and_takes_over_a_lapsed_one(warned, settings):
    real_now = timezone.now()
    after_grace = real_now + timedelta(seconds=settings.ENFORCEMENT["SWEEP_GRACE_SECONDS"] + 1)
    Notification.objects.filter(pk=warned.pk).update(claimed_at=real_now - timedelta(minutes=1))
    assert services.sweep(now=after_grace).requeued_notifications == []
    Notification.objects.filter(pk=warned.pk).update(claimed_at=real_now - timedelta(minutes=10))
    assert services.sweep(now=after_grace).requeued_notifications == [warned.pk]
    assert len(mail.outbox) == 1


def test_sweep_does_not_resend_failed_emails(warned, settings):
    settings.EMAIL_BACKEND = f"{BACKENDS}.RefusingBackend"
    send_task(warned.pk)
    assert services.sweep(now=timezone.now() + timedelta(hours=1)).requeued_notifications == []


def test_the_account_fills_in_what_the_context_lacks(account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        notifications.notify_account(template="customer_key_revoked", event_key="key:1:revoked", account=account,
                                     context={"key_prefix": "sk_live_4eC39HqL", "leak_url": "https://gist.test/1"})
    [message] = mail.outbox
    assert message.to == [account.email]
    assert f"Hello {account.name}," in message.body and account.public_id in message.body


# ------------------------------------------------------------------ the services write what the samples show


def test_samples_have_the_shape_the_services_write(as_agent, as_lead, as_second_lead, as_trusted_detector,
                                                   lead, run_on_commit):
    """Each template's sample context has the keys the services put in its real context (admin previews)."""
    accounts = [AccountFactory() for _ in range(4)]
    for a in accounts:
        APIKeyFactory(account=a)

    def report(account, rule, external_id, actor=as_agent, **kwargs):
        return run_on_commit(services.violation_report, actor=actor, account=account, rule=rule,
                             source=f"t-{actor.identity}",
                             external_id=external_id, summary="seen", **kwargs)

    # A warning, then a throttle that fails for good.
    case = report(accounts[0], "secrets-in-events", "1").violation.case
    run_on_commit(services.action_propose, actor=as_agent, case_id=case.pk, kind="warning", reason="r")
    throttle = run_on_commit(services.action_propose, actor=as_agent, case_id=case.pk, kind="throttle", reason="r",
                             expires_at=timezone.now() + timedelta(days=1))
    run_on_commit(services.action_revert, actor=as_agent, action_id=throttle.pk, reason="r")
    failing = EnforcementAction.objects.create(case=case, account=case.account, kind="throttle", status="scheduled",
                                               reason="r", requested_by_label="system")
    run_on_commit(services.action_record_failure, action_id=failing.pk, error="boom", final=True)
    # A critical, act-first report by a trusted source: suspended at once, then an appeal overturns it.
    result = report(accounts[1], "spam-fraud", "2", actor=as_trusted_detector)
    suspension = result.act_first_action
    appeal = run_on_commit(services.appeal_submit, actor=as_agent, action_id=suspension.pk, message="m")
    run_on_commit(services.appeal_decide, actor=as_lead, appeal_id=appeal.pk, outcome="overturned", note="n")
    # A suspension by hand awaiting approval, and a termination approved by a second lead.
    case = report(accounts[2], "impersonation", "3").violation.case
    run_on_commit(services.action_propose, actor=as_agent, case_id=case.pk, kind="suspend", reason="r")
    termination = run_on_commit(services.action_propose, actor=as_lead, case_id=case.pk, kind="terminate", reason="r")
    run_on_commit(services.action_approve, actor=as_second_lead, action_id=termination.pk)

    written = {}
    for row in Notification.objects.all():
        written.setdefault(row.template, set(row.context))
    # The key revocation's and the detector alert's shapes are checked where they are written (integrations,
    # tests/api/test_sources.py).
    assert set(written) == set(TEMPLATES) - {"customer_key_revoked", "staff_detector_act_first"}
    for template, keys in written.items():
        assert set(sample_context(template)) == keys, template
    assert not Notification.objects.exclude(status="sent").exists()


# ------------------------------------------------------------------ two workers at the same moment


class BlockingBackend(LocmemBackend):
    """Holds the first send until released, so a second worker can try while the first is mid-send."""

    sending = threading.Event()
    release = threading.Event()

    def send_messages(self, messages):
        BlockingBackend.sending.set()
        assert BlockingBackend.release.wait(10)
        return super().send_messages(messages)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_workers_sending_the_same_email_at_once_deliver_it_once(settings, monkeypatch):
    settings.EMAIL_BACKEND = f"{BACKENDS}.BlockingBackend"
    monkeypatch.setattr(BlockingBackend, "sending", threading.Event())
    monkeypatch.setattr(BlockingBackend, "release", threading.Event())
    account = AccountFactory()
    row = Notification.objects.create(event_key="key:1:revoked", template="customer_key_revoked",
                                      audience="customer", recipient=account.email, account=account,
                                      context={"key_prefix": "sk_live_4eC39HqL"})
    results = {}

    def first_worker():
        try:
            results["first"] = notification_send(notification_id=row.pk)
        finally:
            connection.close()

    worker = threading.Thread(target=first_worker)
    worker.start()
    try:
        assert BlockingBackend.sending.wait(10)
        results["second"] = notification_send(notification_id=row.pk)  # another connection, same moment
    finally:
        BlockingBackend.release.set()
        worker.join(10)
    assert results["second"] is None
    assert results["first"].status == "sent"
    assert len(mail.outbox) == 1
    row.refresh_from_db()
    assert row.status == "sent" and row.attempts == 1
