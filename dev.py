#!/usr/bin/env python3
"""Quick start and test runner. Needs only Python 3.11+.

    python3 dev.py up      set up (virtualenv, install, migrate, demo data) and run the console:
                           web server, Celery worker and Celery beat, on SQLite and an embedded broker
    python3 dev.py test    run the whole test suite (SQLite by default; PostgreSQL and Redis when
                           DATABASE_URL / REDIS_URL / CELERY_BROKER_URL are set)
"""

import os
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".installed"


def setup() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be started by an older python3
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}.")
    if not PY.exists():
        print("Creating the virtualenv in .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    requirements = [ROOT / "requirements.txt", ROOT / "requirements-dev.txt"]
    newest = max(path.stat().st_mtime for path in requirements)
    if not STAMP.exists() or STAMP.stat().st_mtime < newest:
        print("Installing requirements ...", flush=True)
        run([PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", ROOT / "requirements-dev.txt"])
        STAMP.touch()


def run(args, **kwargs) -> None:
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT, **kwargs)


def up(argv: list[str]) -> None:
    setup()
    port = os.environ.get("PORT", "8000")
    # The demo logins are passwords alone: a second factor is asked only of staff who enrol one.
    os.environ.setdefault("STAFF_2FA", "optional")
    # Emails link here; passkeys belong to localhost on this port (WEBAUTHN_RP_ID, WEBAUTHN_ORIGINS).
    os.environ.setdefault("CONSOLE_BASE_URL", f"http://127.0.0.1:{port}")
    run([PY, "manage.py", "migrate", "--noinput", "-v", "0"])
    run([PY, "manage.py", "seed_demo"])
    run([PY, "manage.py", "publish_key_states"])  # the gate reads the edge store, not the database
    processes = {
        "web": [PY, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        "worker": [BIN / "celery", "-A", "config", "worker", "--loglevel", "WARNING", "--concurrency", "2"],
        "beat": [BIN / "celery", "-A", "config", "beat", "--loglevel", "WARNING"],
    }
    children = {name: subprocess.Popen([str(a) for a in cmd], cwd=ROOT) for name, cmd in processes.items()}
    time.sleep(2)
    print(
        f"\nThe console is running: http://127.0.0.1:{port}/admin/\n"
        f"Log in as lee.lead (a lead) or alex.agent (an agent), password demo-password-2026.\n"
        f"Passkeys need a domain name: use http://localhost:{port}/admin/ to register one.\n"
        f"API docs: http://127.0.0.1:{port}/api/docs/   Press Ctrl-C to stop web, worker and beat.\n",
        flush=True,
    )

    def stop(*_):
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        for child in children.values():
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while True:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with {child.returncode}; stopping the rest.", flush=True)
                stop()
        time.sleep(1)


def test(argv: list[str]) -> None:
    setup()
    env = {**os.environ, "DJANGO_PROFILE": os.environ.get("DJANGO_PROFILE", "test")}
    # Its own files (SQLite test database, embedded broker, edge store), apart from a console that `up` runs.
    env.setdefault("VAR_DIR", str(ROOT / "var" / "test"))
    result = subprocess.run([str(PY), "-m", "pytest", *argv], cwd=ROOT, env=env)
    sys.exit(result.returncode)


def main() -> None:
    commands = {"up": up, "test": test, "setup": lambda argv: setup()}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
