"""End to end through a real SMTP server on loopback: warning -> suspension -> appeal overturned.

The server is aiosmtpd (pure Python) on 127.0.0.1 and a port the system picks; Django's SMTP
backend is pointed at it through EMAIL_URL, and the services run with their on-commit work
(eager Celery tasks), as after a real commit.
"""

import socket
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateformat import format as date_format

from accounts.models import APIKey
from config.celery import app as celery_app
from enforcement import notifications, services, tasks
from enforcement.models import Appeal, EnforcementAction, Notification
from tests.emails.mailbox import assert_no_secrets, plain, visible_text
from tests.factories import AccountFactory, APIKeyFactory

pytestmark = pytest.mark.django_db

CARD = "4111 1111 1111 1111"
CARD_DIGITS = CARD.replace(" ", "")
VICTIM = "shopper@victim.example"


@pytest.fixture
def customer(db):
    account = AccountFactory(name="Acme Analytics Ltd", email="owner@acme.example", public_id="acct_acme0000000001")
    key = APIKeyFactory(account=account, kind="secret")
    return account, key


def received(smtp_server):
    return [(m.rcpt_tos, m.subject) for m in smtp_server.messages]


def test_warning_suspension_and_overturned_appeal_reach_the_smtp_server_exactly_once(
    smtp_settings, smtp_server, customer, as_agent, as_lead, as_second_lead, lead, django_capture_on_commit_callbacks
):
    account, key = customer

    def run(fn, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(**kwargs)

    def report(external_id):
        return run(
            services.violation_report, actor=as_agent, account=account, rule="secrets-in-events", api_key=key,
            source="pii-detector", external_id=external_id,
            summary=f"Property card_number carried {CARD} in 312 events sent with {key.token}",
            evidence={"event": {"card_number": CARD_DIGITS, "email": VICTIM}, "key": key.token},
        )

    # 1. A warning, applied by a task, emailed to the customer.
    case = report("evt-1").violation.case
    warning = run(services.action_propose, actor=as_agent, case_id=case.pk, kind="warning",
                  reason="Card numbers in checkout events")
    warning.refresh_from_db()
    assert warning.status == EnforcementAction.Status.APPLIED
    deadline = date_format(timezone.localtime(warning.remediation_deadline), "j M Y")

    # 2. It happens again; an agent asks for a suspension, a lead approves it, a task applies it.
    report("evt-2")
    suspension = run(services.action_propose, actor=as_agent, case_id=case.pk, kind="suspend",
                     reason="Card numbers again after the warning")
    assert suspension.status == EnforcementAction.Status.AWAITING_APPROVAL
    run(services.action_approve, actor=as_lead, action_id=suspension.pk)
    suspension.refresh_from_db()
    assert suspension.status == EnforcementAction.Status.APPLIED
    assert APIKey.objects.get(pk=key.pk).status == "suspended"

    # 3. The customer appeals; a lead who took no part in the suspension overturns it: one email says so.
    appeal = run(services.appeal_submit, actor=as_agent, action_id=suspension.pk,
                 message="Our test harness sent those; it is fixed and the data deleted.")
    run(services.appeal_decide, actor=as_second_lead, appeal_id=appeal.pk, outcome=Appeal.Status.OVERTURNED,
        note="Test data from the customer's harness; fixed the same day.")
    assert APIKey.objects.get(pk=key.pk).status == "active"

    owner, leads = ["owner@acme.example"], (["lead2@millimetric.ai"], ["lead@millimetric.ai"])  # by address
    assert received(smtp_server) == [
        (owner, f"Action needed by {deadline}: Acceptable Use Policy warning (case #{case.pk})"),
        *((lead_address, f"[T&S] Approval needed: suspension on Acme Analytics Ltd (case #{case.pk})")
          for lead_address in leads),
        (owner, f"Your Millimetric account is suspended (case #{case.pk})"),
        (owner, f"We received your appeal (case #{case.pk})"),
        (owner, f"Your appeal was successful (case #{case.pk})"),
    ]

    rows = {n.message_id: n for n in Notification.objects.all()}
    assert len(rows) == 6 and all(n.status == Notification.Status.SENT and n.attempts == 1 for n in rows.values())
    for message in smtp_server.messages:
        headers = message.message
        row = rows[headers["Message-ID"]]  # the row is marked sent with the id the server received
        assert row.recipient == message.rcpt_tos[0] == headers["To"] and row.subject == message.subject
        assert message.mail_from == "trust@millimetric.ai"
        assert headers["From"] == "Millimetric Trust & Safety <trust@millimetric.ai>"
        assert headers["Reply-To"] == "appeals@millimetric.ai"
        assert headers["List-Unsubscribe"] is None and headers["Auto-Submitted"] == "auto-generated"
        text, html = message.part("text/plain"), message.part("text/html")
        # No secret, card number or evidence, in any form, anywhere in the message. (The raw message is only
        # searched for the known values: its MIME boundary and Message-ID are long random runs of digits.)
        raw = message.raw.decode("utf-8", "replace")
        assert not [s for s in (CARD, CARD_DIGITS, key.token, key.token[16:], VICTIM) if s in raw]
        for content in (message.subject, text, html):
            assert_no_secrets(content, CARD, CARD_DIGITS, key.token, key.token[16:], VICTIM)

    warning_mail, _, approval_mail, suspend_mail = smtp_server.messages[:4]
    warning_deadline = date_format(timezone.localtime(warning.remediation_deadline), "l j F Y, H:i e")
    for seen in (plain(warning_mail.part("text/plain")), visible_text(warning_mail.part("text/html"))):
        assert f"Please fix this by {warning_deadline}" in seen
        assert "Don't send full credit-card numbers, government IDs, passwords, or other secrets." in seen
        assert "[CARD REDACTED ...1111]" in seen
    approval = plain(approval_mail.part("text/plain"))
    assert f"http://127.0.0.1:8000/admin/enforcement/case/{case.pk}/change/" in approval
    assert "Card numbers again after the warning" in approval
    assert "We have suspended all API keys of your account" in plain(suspend_mail.part("text/plain"))
    assert "act first" not in suspend_mail.part("text/plain")  # a suspension by hand, not act-first
    decided = plain(smtp_server.messages[5].part("text/plain"))
    assert "we overturned it" in decided and "fixed the same day" in decided

    # Running the send task again, for every email, sends nothing more.
    for notification_id in Notification.objects.values_list("pk", flat=True):
        assert tasks.send_notification.apply(args=[notification_id]).get() == "skipped"
    assert len(smtp_server.messages) == 6


def test_send_task_run_twice_delivers_once(smtp_settings, smtp_server, customer, django_capture_on_commit_callbacks):
    account, key = customer
    with django_capture_on_commit_callbacks(execute=False) as callbacks:  # the enqueue on commit is dropped
        [row] = notifications.notify_account(
            template="customer_key_revoked", event_key=f"key:{key.pk}:revoked", account=account,
            context={"account_id": account.public_id, "account_name": account.name, "key_prefix": key.prefix,
                     "leak_url": "https://github.com/acme/app/blob/main/.env"},
        )
    assert len(callbacks) == 1
    assert tasks.send_notification.apply(args=[row.pk]).get() == "sent"
    assert tasks.send_notification.apply(args=[row.pk]).get() == "skipped"
    [message] = smtp_server.messages
    assert message.rcpt_tos == ["owner@acme.example"]
    assert message.subject == f"Your Millimetric secret key {key.prefix} was revoked after being exposed publicly"
    assert key.token[16:] not in message.raw.decode()
    assert_no_secrets(message.part("text/plain"), key.token)
    assert "How to roll a new key" in visible_text(message.part("text/html"))


@pytest.fixture
def eager_retries():
    propagates = celery_app.conf.task_eager_propagates
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_eager_propagates = propagates


def test_server_down_past_the_retry_window_fails_then_resend_delivers(settings, smtp_settings, smtp_server, customer,
                                                                       as_lead, eager_retries,
                                                                       django_capture_on_commit_callbacks):
    account, key = customer
    settings.ENFORCEMENT = {**settings.ENFORCEMENT, "EMAIL_RETRY_HOURS": 1}
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    settings.EMAIL_PORT = closed.getsockname()[1]  # bound, not listening: connections are refused
    try:
        with django_capture_on_commit_callbacks(execute=True):
            [row] = notifications.notify_account(template="customer_key_revoked", event_key="key:x:revoked",
                                                 account=account, context={"key_prefix": key.prefix})
        row.refresh_from_db()
        assert row.status == Notification.Status.PENDING and row.attempts == 1  # a refused connection passes
        Notification.objects.filter(pk=row.pk).update(retry_until=timezone.now(), next_attempt_at=timezone.now())
        assert tasks.send_notification.apply(args=[row.pk]).get() == "failed"  # an hour of refusals later
    finally:
        closed.close()
    row.refresh_from_db()
    assert row.status == Notification.Status.FAILED and row.attempts == 2
    assert row.last_error.startswith("ConnectionRefusedError")
    assert smtp_server.messages == []

    settings.EMAIL_PORT = smtp_server.port
    with django_capture_on_commit_callbacks(execute=True):
        notifications.notification_resend(actor=as_lead, notification_id=row.pk)
    row.refresh_from_db()
    assert row.status == Notification.Status.SENT and len(smtp_server.messages) == 1
    assert smtp_server.messages[0].message["Message-ID"] == row.message_id


def test_a_recipient_the_server_refuses_fails_at_once(smtp_settings, smtp_server, customer,
                                                      django_capture_on_commit_callbacks):
    account, key = customer
    smtp_server.refuse.add(account.email)
    with django_capture_on_commit_callbacks(execute=True):
        [row] = notifications.notify_account(template="customer_key_revoked", event_key="key:y:revoked",
                                             account=account, context={"key_prefix": key.prefix})
    row.refresh_from_db()
    assert row.status == Notification.Status.FAILED and row.attempts == 1
    assert "SMTPRecipientsRefused" in row.last_error and "550" in row.last_error
    assert smtp_server.messages == []


def test_the_sweep_delivers_an_email_whose_task_was_lost(smtp_settings, smtp_server, customer, settings,
                                                         django_capture_on_commit_callbacks):
    account, key = customer
    with django_capture_on_commit_callbacks(execute=False):
        [row] = notifications.notify_account(template="customer_key_revoked", event_key="key:z:revoked",
                                             account=account, context={"key_prefix": key.prefix})
    later = timezone.now() + timedelta(seconds=settings.ENFORCEMENT["SWEEP_GRACE_SECONDS"] + 1)
    assert services.sweep(now=later).requeued_notifications == [row.pk]
    assert services.sweep(now=later).requeued_notifications == []
    assert [m.rcpt_tos for m in smtp_server.messages] == [["owner@acme.example"]]


def test_a_suspension_notice_states_its_reasons_leading_with_what_set_the_severity(
    smtp_settings, smtp_server, customer, as_trusted_detector, as_lead, django_capture_on_commit_callbacks
):
    """1 critical and 6 low violations: the notice names the critical rule first, each rule once (with its
    count), says that detection was automated and a person decided, the policy version, and until when
    the customer can appeal."""
    from enforcement.models import Rule

    account, key = customer
    reports = [("spam-fraud", "low")] * 4 + [("impersonation", "low")] * 2 + [("covert-tracking", "critical")]
    Rule.objects.filter(code="covert-tracking").update(act_first=False)  # a lead decides, not act-first
    with django_capture_on_commit_callbacks(execute=True):
        for number, (rule, severity) in enumerate(reports):
            services.violation_report(
                actor=as_trusted_detector, account=account, rule=rule, severity=severity, api_key=key,
                source="detector", external_id=f"v-{number}", summary=f"{rule} seen, report {number}",
            )
    case = account.cases.get()
    with django_capture_on_commit_callbacks(execute=True):
        suspension = services.action_propose(actor=as_lead, case_id=case.pk, kind="suspend", reason="stop it")
    suspension.refresh_from_db()
    assert suspension.status == EnforcementAction.Status.APPLIED
    assert sorted(suspension.decided_under["violations"]) == sorted(case.violations.values_list("pk", flat=True))

    [notice] = [m for m in smtp_server.messages if "suspended" in m.subject]
    titles = {rule: Rule.objects.get(code=rule).title for rule in ("covert-tracking", "spam-fraud", "impersonation")}
    for text in (plain(notice.part("text/plain")), visible_text(notice.part("text/html"))):
        positions = {rule: text.find(title) for rule, title in titles.items()}
        assert all(position >= 0 for position in positions.values()), positions
        assert positions["covert-tracking"] < positions["spam-fraud"] < positions["impersonation"]
        assert all(text.count(title) == 1 for title in titles.values())  # each rule once
        assert "critical severity, the most serious here" in text
        assert "4 reports of this kind" in text and "2 reports of this kind" in text
        assert "our automated systems detected this activity" in text
        assert "taken by a member of our Trust & Safety team" in text
        assert "covert-tracking v1; impersonation v1; spam-fraud v1" in text
        appeal_by = date_format(timezone.localtime(suspension.applied_at + timedelta(days=30)), "l j F Y")
        assert f"reply to this email by {appeal_by}" in text


def test_an_smtp_outage_delays_customer_notices_and_each_is_delivered_exactly_once(
    smtp_settings, smtp_server, customer, eager_retries, django_capture_on_commit_callbacks
):
    """The server is down for three sweeps (three minutes at the default interval): every notice stays
    pending, retried with backoff, shown as stuck to staff after 15 minutes, and delivered once it is back."""
    from enforcement import services

    account, key = customer
    smtp_server.go_down()
    with django_capture_on_commit_callbacks(execute=True):
        rows = [notifications.notify_account(template="customer_key_revoked", event_key=f"key:{n}:revoked",
                                             account=account, context={"key_prefix": key.prefix})[0]
                for n in range(3)]
    ids = [row.pk for row in rows]

    def minute_passes():
        Notification.objects.filter(pk__in=ids).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        return services.sweep().requeued_notifications

    for _ in range(3):
        assert sorted(minute_passes()) == sorted(ids)
    pending = Notification.objects.filter(pk__in=ids)
    assert set(pending.values_list("status", "attempts")) == {(Notification.Status.PENDING, 4)}
    assert all(row.last_error.startswith("ConnectionRefusedError") for row in pending)
    Notification.objects.filter(pk__in=ids).update(created_at=timezone.now() - timedelta(minutes=16))
    assert notifications.stuck_customer_notices() == 3  # staff see it on the front page and /readyz

    smtp_server.come_back()
    minute_passes()
    assert len(smtp_server.messages) == 3
    assert len({message.message["Message-ID"] for message in smtp_server.messages}) == 3
    assert set(Notification.objects.filter(pk__in=ids).values_list("status", "attempts")) == {("sent", 5)}
    minute_passes()
    for notification_id in ids:
        assert tasks.send_notification.apply(args=[notification_id]).get() == "skipped"
    assert len(smtp_server.messages) == 3 and notifications.stuck_customer_notices() == 0
