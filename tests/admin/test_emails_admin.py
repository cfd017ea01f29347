"""Email previews of every template and resending failed emails."""

import pytest
from django.utils import timezone

from enforcement import notifications
from enforcement.models import AuditEvent, Notification

PREVIEW = "/admin/enforcement/notification/preview/"


def _write_templates(root, name, *, subject="Subject for {{ account_name }}", text="Hello {{ account_name }}",
                     html="<p>Hello <b>{{ account_name }}</b></p>"):
    folder = root / "emails"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.subject.txt").write_text(subject)
    (folder / f"{name}.txt").write_text(text)
    (folder / f"{name}.html").write_text(html)


@pytest.fixture
def email_templates(tmp_path, settings):
    """The only template folder: the real admin templates, and an emails/ folder the test fills,
    as if the email templates were still being written."""
    from pathlib import Path

    (tmp_path / "admin").symlink_to(Path(settings.BASE_DIR) / "templates" / "admin", target_is_directory=True)
    (tmp_path / "emails").mkdir()
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    return tmp_path


def test_every_template_is_listed_and_rendered_in_text_and_html(agent_client, email_templates):
    for name in notifications.TEMPLATES:
        _write_templates(email_templates, name, subject=f"{name}: case {{{{ case_id }}}}",
                         text="Hello {{ account_name }} <not-a-tag>")
    response = agent_client.get(PREVIEW)
    assert response.status_code == 200
    previews = {p["name"]: p for p in response.context["previews"]}
    assert list(previews) == list(notifications.TEMPLATES)
    for name, preview in previews.items():
        assert preview["ok"], preview
        if name == "staff_detector_act_first":  # about a detector: no case, no account
            assert preview["subject"] == f"{name}: case" and "Hello  <not-a-tag>" in preview["text"]
            continue
        assert preview["subject"] == f"{name}: case 1042"
        assert "Acme Analytics Ltd" in preview["text"] and "<b>Acme Analytics Ltd</b>" in preview["html"]
    html = response.content.decode()
    # The HTML is shown in a sandboxed frame, escaped into srcdoc.
    assert "&lt;not-a-tag&gt;" in html and "<not-a-tag>" not in html
    assert 'sandbox=""' in html and "srcdoc=\"&lt;p&gt;Hello &lt;b&gt;Acme Analytics Ltd" in html


def test_a_missing_or_broken_template_is_shown_plainly(agent_client, email_templates):
    _write_templates(email_templates, "customer_warning")
    _write_templates(email_templates, "customer_throttle", text="{% if %}")
    response = agent_client.get(PREVIEW)
    assert response.status_code == 200
    previews = {p["name"]: p for p in response.context["previews"]}
    assert previews["customer_warning"]["ok"]
    assert not previews["customer_throttle"]["ok"]
    assert "Template error" in previews["customer_throttle"]["problem"]
    missing = previews["customer_suspend"]
    assert not missing["ok"] and missing["problem"].startswith("Missing template: emails/customer_suspend.")
    html = response.content.decode()
    assert 'id="missing-templates"' in html and "Missing template: emails/customer_suspend." in html


def test_the_real_templates_preview_without_errors_or_say_what_is_missing(agent_client):
    response = agent_client.get(PREVIEW)
    assert response.status_code == 200
    for preview in response.context["previews"]:
        assert preview["ok"] or preview["problem"], preview["name"]


def test_resend_a_failed_email(agent_client, auditor_client, high_case, as_lead, email_templates,
                               django_capture_on_commit_callbacks, mailoutbox):
    for name in notifications.TEMPLATES:
        _write_templates(email_templates, name)
    from enforcement import services

    throttle = services.action_propose(actor=as_lead, case_id=high_case.pk, kind="throttle", reason="r")
    services.action_apply(action_id=throttle.pk)
    email = Notification.objects.get(case=high_case, template="customer_throttle")
    Notification.objects.filter(pk=email.pk).update(retry_until=timezone.now())  # its retry window is over
    notifications.notification_record_failure(notification_id=email.pk, error="SMTPServerDisconnected: gone")
    email.refresh_from_db()
    assert email.status == "failed"

    detail = agent_client.get(f"/admin/enforcement/notification/{email.pk}/change/")
    assert 'id="resend"' in detail.content.decode()
    auditor_detail = auditor_client.get(f"/admin/enforcement/notification/{email.pk}/change/")
    assert 'id="resend"' not in auditor_detail.content.decode()
    assert auditor_client.post(f"/admin/enforcement/notification/{email.pk}/resend/").status_code == 403

    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(f"/admin/enforcement/notification/{email.pk}/resend/")
    email.refresh_from_db()
    assert email.status == "sent" and email.last_error == ""
    assert [m.to for m in mailoutbox] == [[high_case.account.email]]
    assert AuditEvent.objects.filter(verb="notification.resent", target_id=str(email.pk), actor_label="agent").exists()

    # A sent email is not resent.
    agent_client.post(f"/admin/enforcement/notification/{email.pk}/resend/")
    assert len(mailoutbox) == 1
