"""PostgreSQL down, with the console running as an operator runs it (gunicorn, its own private PostgreSQL and
Redis, started and killed here): the gate keeps deciding from the edge store, every other route answers 503
``unavailable`` with Retry-After (never a 500), /readyz names the database, and all is well once it is back."""

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.faults.servers import PrivatePostgres, PrivateRedis, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]

SETUP = """
from accounts.tokens import generate_token, hash_token, prefix_of
from enforcement import services
from enforcement.actors import SYSTEM
account, _ = services.account_upsert(actor=SYSTEM, public_id="acct_outage00000001", name="Outage Ltd",
                                     email="owner@outage.example")
token = generate_token("secret")
services.key_upsert(actor=SYSTEM, prefix=prefix_of(token), account=account, kind="secret",
                    token_sha256=hash_token(token), rate_limit_per_minute=100, ip_rate_limit_per_minute=50)
_, raw = services.service_token_create(actor=SYSTEM, name="edge", scopes=["gate:check", "cases:read"])
from django.contrib.auth import get_user_model
get_user_model().objects.create_superuser("lead", "lead@millimetric.ai", "outage-password-2026")
print(token)
print(raw)
"""


def call(port: int, path: str, *, token: str | None = None, body: dict | None = None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
        method="POST" if body is not None else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def signed_in(port: int) -> urllib.request.OpenerDirector:
    """A browser-like client signed in to the console (session and CSRF cookies)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    login = f"http://127.0.0.1:{port}/admin/login/"
    page = opener.open(login, timeout=15).read().decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf, "username": "lead",
                                   "password": "outage-password-2026", "next": "/admin/"}).encode()
    opener.open(urllib.request.Request(login, data=form, headers={"Referer": login}), timeout=15)
    return opener


@pytest.fixture
def console(tmp_path):
    """gunicorn on a private PostgreSQL and Redis; yields (port, postgres, key token, service token)."""
    postgres, redis = PrivatePostgres(), PrivateRedis(tmp_path / "redis")
    postgres.start()
    redis.start()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "CACHE_", "CELERY_"))},
        "DJANGO_PROFILE": "development", "DATABASE_URL": postgres.url, "REDIS_URL": redis.url(0),
        "CACHE_URL": redis.url(1), "CELERY_BROKER_URL": redis.url(2), "VAR_DIR": str(tmp_path / "var"),
        "CELERY_TASK_ALWAYS_EAGER": "1",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    server = None
    try:
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, timeout=300, cwd=ROOT)
        made = subprocess.run([*manage, "shell", "-c", SETUP], env=env, check=True, timeout=120, cwd=ROOT,
                              capture_output=True, text=True)
        key_token, service_token = made.stdout.split()[-2:]
        subprocess.run([*manage, "publish_key_states"], env=env, check=True, timeout=120, cwd=ROOT,
                       capture_output=True)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "1",
             "--timeout", "60"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        wait_for(lambda: call(port, "/healthz")[0] == 200, what="gunicorn")
        yield port, postgres, key_token, service_token
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        postgres.remove()
        redis.kill()


def test_with_postgresql_down_the_gate_decides_and_the_rest_answers_503(console):
    port, postgres, key_token, service_token = console
    check = {"key": key_token, "ip": "203.0.113.7"}
    assert call(port, "/api/v1/gate/check/", token=service_token, body=check)[2]["allowed"] is True
    assert call(port, "/api/v1/cases/", token=service_token)[0] == 200
    staff = signed_in(port)
    assert staff.open(f"http://127.0.0.1:{port}/admin/enforcement/case/", timeout=15).status == 200

    postgres.stop()
    status, _, decision = call(port, "/api/v1/gate/check/", token=service_token, body=check)
    assert status == 200 and decision["allowed"] is True and decision["reason"] == "ok"
    status, headers, body = call(port, "/api/v1/cases/", token=service_token)
    assert status == 503 and body["error"]["code"] == "unavailable" and int(headers["Retry-After"]) > 0
    status, headers, body = call(port, "/readyz")
    assert status == 503 and body["checks"]["database"] != "ok" and body["checks"]["edge_store"] == "ok"
    assert call(port, "/healthz")[0] == 200
    with pytest.raises(urllib.error.HTTPError) as page:  # a signed-in lead's console page
        staff.open(f"http://127.0.0.1:{port}/admin/enforcement/case/", timeout=15)
    assert page.value.code == 503 and page.value.headers["Retry-After"]

    postgres.start()
    deadline = time.monotonic() + 20
    while call(port, "/api/v1/cases/", token=service_token)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert call(port, "/api/v1/cases/", token=service_token)[0] == 200
    assert call(port, "/readyz")[0] == 200
