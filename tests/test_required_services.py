"""CI cannot pass by skipping: with ``CI_REQUIRE_SERVICES=1`` a test that needs a missing service fails.

Each case runs pytest in a subprocess on the tests marked ``redis`` or ``postgres`` (the edge store on
Redis, the row-lock and database-trigger tests) with the environment changed, on a SQLite database of
its own: the services are cut off for the subprocess only.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICE_URLS = ("DATABASE_URL", "REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL", "CI_REQUIRE_SERVICES")


def run_tests_needing_services(tmp_path, **environment) -> tuple[dict[str, int], str]:
    """Outcome counts ({"skipped": 9, "error": 9, ...}) and output of the marked tests, run without services."""
    env = {name: value for name, value in os.environ.items() if name not in SERVICE_URLS}
    env.update(VAR_DIR=str(tmp_path), DJANGO_PROFILE="test", **environment)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "redis or postgres",
         "tests/edge", "tests/test_concurrency.py", "tests/test_models.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    summary = result.stdout.strip().splitlines()[-1]
    counts = {outcome.rstrip("s"): int(n) for n, outcome in re.findall(r"(\d+) (\w+)", summary)}
    return counts, result.stdout


def test_without_the_switch_tests_needing_a_missing_service_skip_with_the_reason(tmp_path):
    counts, output = run_tests_needing_services(tmp_path)
    assert counts.get("skipped", 0) > 0 and "passed" not in counts and "error" not in counts, output
    assert "needs Redis: REDIS_URL is not set" in output
    assert "needs PostgreSQL: DATABASE_URL does not name a PostgreSQL database" in output


def test_in_ci_a_missing_redis_or_postgresql_fails_the_tests_that_need_it(tmp_path):
    counts, output = run_tests_needing_services(tmp_path, CI_REQUIRE_SERVICES="1")
    assert counts.get("error", 0) > 0 and "skipped" not in counts and "passed" not in counts, output
    assert "needs Redis, and CI_REQUIRE_SERVICES=1 forbids skipping: REDIS_URL is not set" in output
    assert "needs PostgreSQL, and CI_REQUIRE_SERVICES=1 forbids skipping" in output


def test_in_ci_an_unreachable_redis_fails_them_too(tmp_path):
    counts, output = run_tests_needing_services(
        tmp_path, CI_REQUIRE_SERVICES="1", REDIS_URL="redis://127.0.0.1:1/0"  # nothing listens on port 1
    )
    assert counts.get("error", 0) > 0 and "skipped" not in counts, output
    assert "the Redis named by REDIS_URL cannot be reached" in output


def test_in_ci_an_unreachable_rabbitmq_fails_the_worker_tests_on_it(tmp_path):
    env = {name: value for name, value in os.environ.items() if name not in SERVICE_URLS}
    env.update(VAR_DIR=str(tmp_path), DJANGO_PROFILE="test", CI_REQUIRE_SERVICES="1",
               E2E_AMQP_URL="amqp://guest:guest@127.0.0.1:1//")  # nothing listens on port 1
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "rabbitmq", "tests/test_worker_e2e.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert "error" in summary and "passed" not in summary and "skipped" not in summary, result.stdout
    assert "needs RabbitMQ, and CI_REQUIRE_SERVICES=1 forbids skipping: the RabbitMQ named by E2E_AMQP_URL cannot " \
           "be reached" in result.stdout
