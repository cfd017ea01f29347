"""Child processes a test starts (a Celery worker, gunicorn): stopped the same way, and always."""

import subprocess


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """Ask the process to exit (SIGTERM, a graceful shutdown); kill it if it has not within ``timeout``."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
