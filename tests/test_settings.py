"""Settings come from the environment and fail loudly on bad values."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import email_settings_from_url, env_bool, env_choice, env_int, env_list

ROOT = Path(__file__).resolve().parent.parent


def test_env_bool(monkeypatch):
    monkeypatch.setenv("FLAG", "yes")
    assert env_bool("FLAG") is True
    monkeypatch.setenv("FLAG", "0")
    assert env_bool("FLAG", default=True) is False
    monkeypatch.delenv("FLAG")
    assert env_bool("FLAG", default=True) is True
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG"):
        env_bool("FLAG")


def test_env_int(monkeypatch):
    monkeypatch.setenv("N", "12")
    assert env_int("N", 1) == 12
    monkeypatch.setenv("N", "twelve")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("N", 1)
    monkeypatch.setenv("N", "-1")
    with pytest.raises(ImproperlyConfigured, match="minimum"):
        env_int("N", 1, minimum=0)


def test_env_choice(monkeypatch):
    assert env_choice("MODE", "report", ("report", "refuse")) == "report"
    monkeypatch.setenv("MODE", " Refuse ")
    assert env_choice("MODE", "report", ("report", "refuse")) == "refuse"
    monkeypatch.setenv("MODE", "block")
    with pytest.raises(ImproperlyConfigured, match="MODE='block': use one of report, refuse"):
        env_choice("MODE", "report", ("report", "refuse"))


def test_env_list(monkeypatch):
    monkeypatch.setenv("HOSTS", "a.example, b.example,,")
    assert env_list("HOSTS", []) == ["a.example", "b.example"]


def test_email_url(tmp_path):
    smtp = email_settings_from_url("smtp://user:p%40ss@mail.example:2525?tls=1", base_dir=tmp_path)
    assert smtp["EMAIL_HOST"] == "mail.example" and smtp["EMAIL_PORT"] == 2525
    assert smtp["EMAIL_HOST_PASSWORD"] == "p@ss" and smtp["EMAIL_USE_TLS"] and not smtp["EMAIL_USE_SSL"]
    smtps = email_settings_from_url("smtps://mail.example", base_dir=tmp_path)
    assert smtps["EMAIL_PORT"] == 465 and smtps["EMAIL_USE_SSL"]
    assert email_settings_from_url("console://", base_dir=tmp_path)["EMAIL_BACKEND"].endswith("console.EmailBackend")
    assert email_settings_from_url("file:///tmp/mail", base_dir=tmp_path)["EMAIL_FILE_PATH"] == "/tmp/mail"
    for bad in ("carrier-pigeon://x", "smtp://", "smtp://host:notaport"):
        with pytest.raises(ImproperlyConfigured):
            email_settings_from_url(bad, base_dir=tmp_path)


def _manage(*args, **env):
    environment = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}}
    environment.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


def test_production_profile_passes_check_deploy(tmp_path):
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DJANGO_PROFILE="production", SECRET_KEY="k" * 64 + "-production-secret-for-the-check",
        ALLOWED_HOSTS="console.millimetric.ai", VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_profile_refuses_to_start_without_a_secret_key(tmp_path):
    result = _manage("check", DJANGO_PROFILE="production", ALLOWED_HOSTS="x", VAR_DIR=str(tmp_path))
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_bad_values_fail_loudly(tmp_path):
    result = _manage("check", DEBUG="perhaps", VAR_DIR=str(tmp_path))
    assert result.returncode != 0 and "DEBUG='perhaps' is not a boolean" in result.stderr
    result = _manage("check", DATABASE_URL="nosuchdb://x", VAR_DIR=str(tmp_path))
    assert result.returncode != 0 and "DATABASE_URL" in result.stderr
    result = _manage("check", API_MAX_BODY_BYTES="1MB", VAR_DIR=str(tmp_path))
    assert result.returncode != 0 and "API_MAX_BODY_BYTES='1MB' is not an integer" in result.stderr
    result = _manage("check", API_MAX_BODY_BYTES="10", VAR_DIR=str(tmp_path))
    assert result.returncode != 0 and "API_MAX_BODY_BYTES=10 is below the minimum of 1024" in result.stderr


@pytest.mark.parametrize(("env", "rp_id", "origins"), [
    ({}, "localhost", ["http://localhost:8000"]),  # an IP address can own no passkey: localhost, same port
    ({"CONSOLE_BASE_URL": "https://console.millimetric.ai"}, "console.millimetric.ai",
     ["https://console.millimetric.ai"]),
    ({"CONSOLE_BASE_URL": "https://console.millimetric.ai", "WEBAUTHN_RP_ID": "millimetric.ai",
      "WEBAUTHN_ORIGINS": "https://console.millimetric.ai,https://tns.millimetric.ai"}, "millimetric.ai",
     ["https://console.millimetric.ai", "https://tns.millimetric.ai"]),
])
def test_the_passkeys_relying_party_follows_the_console_address(tmp_path, env, rp_id, origins):
    environment = {"CONSOLE_BASE_URL": "", "WEBAUTHN_RP_ID": "", "WEBAUTHN_ORIGINS": "", **env}
    if not env.get("WEBAUTHN_ORIGINS"):
        environment.pop("WEBAUTHN_ORIGINS")
    result = _manage("shell", "-c", "from django.conf import settings as s; "
                     "print(s.OTP_WEBAUTHN_RP_ID, ','.join(s.OTP_WEBAUTHN_ALLOWED_ORIGINS))",
                     VAR_DIR=str(tmp_path), **environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == [rp_id, ",".join(origins)]


@pytest.mark.parametrize(("value", "expected"), [(None, "True 5"), ("0", "True 0"), ("off", "None None")])
def test_postgresql_binds_on_the_server_and_prepares_repeated_statements_unless_told_off(tmp_path, value, expected):
    code = ("from django.conf import settings as s; o = s.DATABASES['default'].get('OPTIONS', {}); "
            "print(o.get('server_side_binding'), o.get('prepare_threshold'))")
    env = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused", "VAR_DIR": str(tmp_path)}
    if value is not None:
        env["DB_PREPARE_THRESHOLD"] = value
    environment = {k: v for k, v in os.environ.items() if k != "DB_PREPARE_THRESHOLD"}
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env={**environment, **env},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected  # after the shell's own notes


def test_a_bad_prepare_threshold_fails_loudly(tmp_path):
    result = _manage("check", DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused", VAR_DIR=str(tmp_path),
                     DB_PREPARE_THRESHOLD="often")
    assert result.returncode != 0 and "DB_PREPARE_THRESHOLD" in result.stderr
