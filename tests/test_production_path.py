"""The production path as the README writes it: ``migrate`` on a fresh database, ``collectstatic --noinput``,
then ``gunicorn config.wsgi:application`` with the production profile (DEBUG off). The admin's stylesheets and
Swagger UI's scripts are served (by whitenoise), with their content types."""

import http.client
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.processes import start_gunicorn, stop

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def fresh_database(tmp_path_factory, django_db_blocker):
    """A database nothing has migrated: beside the test database on PostgreSQL, a new file on SQLite."""
    with django_db_blocker.unblock():
        vendor, db = connection.vendor, connection.settings_dict
    if vendor != "postgresql":
        yield f"sqlite:///{tmp_path_factory.mktemp('deploy') / 'db.sqlite3'}"
        return
    import psycopg
    from psycopg import sql

    name = f"{db['NAME']}_deploy"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    server = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield f"{server}/{name}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def deployed(fresh_database, tmp_path_factory):
    """The README's operator steps, run as an operator runs them; yields the port gunicorn serves on."""
    var = tmp_path_factory.mktemp("var")
    static_root = tmp_path_factory.mktemp("static")
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_SETTINGS_MODULE"}},
        "DJANGO_PROFILE": "production",
        "SECRET_KEY": "deploy-test-" + "k" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",  # TLS ends at the proxy in front; the test speaks plain HTTP to gunicorn
        "DATABASE_URL": fresh_database,
        "VAR_DIR": str(var),
        "STATIC_ROOT": str(static_root),
        "EMAIL_URL": "locmem://",
    }
    for step in (["manage.py", "migrate", "--noinput"], ["manage.py", "collectstatic", "--noinput"]):
        done = subprocess.run([sys.executable, *step], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"{' '.join(step)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert (static_root / "staticfiles.json").exists()  # the manifest whitenoise serves the hashed names from
    process, port, log = start_gunicorn(env, timeout=60)
    yield port, log
    stop(process)


def fetch(port: int, path: str) -> tuple[int, str, bytes]:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    client.request("GET", path, headers={"Host": "127.0.0.1", "X-Forwarded-Proto": "https"})
    response = client.getresponse()
    body = response.read()
    client.close()
    return response.status, response.getheader("Content-Type") or "", body


def linked(html: str, pattern: str) -> list[str]:
    return re.findall(pattern, html)


def test_the_admin_is_styled_as_deployed(deployed):
    port, log = deployed
    status, content_type, body = fetch(port, "/admin/login/")
    assert status == 200 and content_type.startswith("text/html"), "".join(log[-20:])
    stylesheets = linked(body.decode(), r'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"')
    stylesheets += linked(body.decode(), r'<link[^>]+href="([^"]+\.css)"[^>]+rel="stylesheet"')
    assert any("admin/css/base." in href for href in stylesheets), stylesheets
    for href in stylesheets:
        assert re.search(r"\.[0-9a-f]{12}\.css$", href), f"{href} is not the collected, hashed name"
        status, content_type, css = fetch(port, href)
        assert status == 200, href
        assert content_type.startswith("text/css"), (href, content_type)
        assert css.strip()


def test_swagger_ui_has_its_scripts_as_deployed(deployed):
    port, log = deployed
    status, content_type, body = fetch(port, "/api/docs/")
    assert status == 200 and content_type.startswith("text/html"), "".join(log[-20:])
    html = body.decode()
    scripts = linked(html, r'<script[^>]+src="([^"]+)"')
    # The page's own script may be inline or in a file of its own; the bundle and preset are files.
    assert any("swagger-ui-bundle" in src for src in scripts), scripts
    assert any("swagger-ui-standalone-preset" in src for src in scripts), scripts
    stylesheets = linked(html, r'<link[^>]+href="([^"]+\.css)"')
    assert stylesheets
    for src in scripts:
        status, content_type, js = fetch(port, src)
        assert status == 200, src
        assert content_type.split(";")[0] in {"text/javascript", "application/javascript"}, (src, content_type)
        assert len(js) > 100
    for href in stylesheets:
        status, content_type, _ = fetch(port, href)
        assert status == 200 and content_type.startswith("text/css"), (href, content_type)
