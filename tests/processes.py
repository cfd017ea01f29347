"""Child processes a test starts (a Celery worker, gunicorn): stopped the same way, and always."""

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """Ask the process to exit (SIGTERM, a graceful shutdown); kill it if it has not within ``timeout``."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(env: dict, *, timeout: float) -> tuple[subprocess.Popen, int, list[str]]:
    """gunicorn serving the console (one worker, ``timeout`` a request) on a free port, once it accepts
    connections; its output is collected in the returned list. Fails the test, with that output, when it exits
    or does not listen within ``timeout``. Stop it with ``stop``."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--timeout", str(int(timeout))],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(process.stdout), daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port, log
        except OSError:
            time.sleep(0.1)
    stop(process)
    pytest.fail("gunicorn did not start:\n" + "".join(log[-40:]))
