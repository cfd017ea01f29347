"""Fixtures: a real SMTP server on loopback, and settings pointing Django at it."""

import pytest

from config.env import email_settings_from_url
from tests.emails.mailbox import LoopbackController, Mailbox


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Staff users are made in many tests here; the default hasher is slow by design."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def smtp_server():
    mailbox = Mailbox()
    controller = LoopbackController(mailbox)
    controller.start()
    mailbox.port = controller.port
    mailbox.controller = controller
    try:
        yield mailbox
    finally:
        mailbox.controller.stop()


@pytest.fixture
def smtp_settings(settings, smtp_server):
    """Point Django at the loopback server the way an operator would: through EMAIL_URL."""
    for name, value in email_settings_from_url(f"smtp://127.0.0.1:{smtp_server.port}", base_dir=None).items():
        setattr(settings, name, value)
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "Millimetric Trust & Safety <trust@millimetric.ai>"
    settings.EMAIL_REPLY_TO = "appeals@millimetric.ai"
    return settings
