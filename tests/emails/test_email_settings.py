"""EMAIL_URL and the other email settings, read from the environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.env import email_settings_from_url

BASE = Path("/srv/console")
SMTP = "django.core.mail.backends.smtp.EmailBackend"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://mailer:s3cr%40t@smtp.example.com:2525?tls=1",
            {"EMAIL_BACKEND": SMTP, "EMAIL_HOST": "smtp.example.com", "EMAIL_PORT": 2525,
             "EMAIL_HOST_USER": "mailer", "EMAIL_HOST_PASSWORD": "s3cr@t", "EMAIL_USE_TLS": True,
             "EMAIL_USE_SSL": False, "EMAIL_TIMEOUT": 10},
        ),
        (
            "smtp://127.0.0.1",
            {"EMAIL_BACKEND": SMTP, "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": 25, "EMAIL_HOST_USER": "",
             "EMAIL_HOST_PASSWORD": "", "EMAIL_USE_TLS": False, "EMAIL_USE_SSL": False, "EMAIL_TIMEOUT": 10},
        ),
        (
            "SMTPS://apikey:key@smtp.example.com",
            {"EMAIL_BACKEND": SMTP, "EMAIL_HOST": "smtp.example.com", "EMAIL_PORT": 465, "EMAIL_HOST_USER": "apikey",
             "EMAIL_HOST_PASSWORD": "key", "EMAIL_USE_TLS": False, "EMAIL_USE_SSL": True, "EMAIL_TIMEOUT": 10},
        ),
        ("console://", {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}),
        ("locmem://", {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}),
        (
            "file:///var/spool/console-mail",
            {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
             "EMAIL_FILE_PATH": "/var/spool/console-mail"},
        ),
        (
            "file://",
            {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
             "EMAIL_FILE_PATH": str(BASE / "var" / "mail")},
        ),
    ],
)
def test_email_url_becomes_django_settings(url, expected):
    assert email_settings_from_url(url, base_dir=BASE) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("smtp://", "names no host"),
        ("smtp://mail.example.com:notaport", "bad port"),
        ("sendmail://localhost", "scheme must be smtp, smtps, console, file or locmem"),
        ("mail.example.com:25", "scheme must be"),
    ],
)
def test_a_bad_email_url_fails_loudly(url, problem):
    with pytest.raises(ImproperlyConfigured, match=problem):
        email_settings_from_url(url, base_dir=BASE)


def _settings_in_a_fresh_process(tmp_path, **env) -> dict:
    names = ["EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_USE_SSL", "EMAIL_USE_TLS", "EMAIL_FILE_PATH",
             "DEFAULT_FROM_EMAIL", "EMAIL_REPLY_TO", "CONSOLE_BASE_URL"]
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {names!r}}}))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in {"EMAIL_URL", "DEFAULT_FROM_EMAIL", "EMAIL_REPLY_TO",
                                                                 "CONSOLE_BASE_URL"}}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(tmp_path), **env},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_settings_read_email_from_the_environment(tmp_path):
    configured = _settings_in_a_fresh_process(
        tmp_path, EMAIL_URL="smtps://relay.example.com:1465", DEFAULT_FROM_EMAIL="T&S <notices@example.com>",
        EMAIL_REPLY_TO="appeals@example.com", CONSOLE_BASE_URL="https://console.example.com/",
    )
    assert configured["EMAIL_BACKEND"] == SMTP and configured["EMAIL_HOST"] == "relay.example.com"
    assert configured["EMAIL_PORT"] == 1465 and configured["EMAIL_USE_SSL"] is True
    assert configured["DEFAULT_FROM_EMAIL"] == "T&S <notices@example.com>"
    assert configured["EMAIL_REPLY_TO"] == "appeals@example.com"
    assert configured["CONSOLE_BASE_URL"] == "https://console.example.com"


def test_settings_default_to_files_under_var_dir(tmp_path):
    defaults = _settings_in_a_fresh_process(tmp_path)
    assert defaults["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
    assert defaults["EMAIL_FILE_PATH"] == str(tmp_path / "mail")
    assert defaults["EMAIL_REPLY_TO"] == "trust@millimetric.ai"
    assert defaults["CONSOLE_BASE_URL"] == "http://127.0.0.1:8000"


def test_a_bad_email_url_stops_the_settings_from_loading(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; settings.EMAIL_BACKEND"],
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(tmp_path),
             "EMAIL_URL": "smtp://"},
    )
    assert result.returncode != 0 and "EMAIL_URL='smtp://' names no host" in result.stderr
