"""What the benchmarks share: Django set up as an operator runs it, and a scratch PostgreSQL database."""

import os
import statistics
import time


def configure(*, database_url: str, var_dir: str) -> None:
    """The environment of a benchmark run, set before Django starts; what the caller's environment says wins."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DATABASE_URL", database_url)
    os.environ.setdefault("VAR_DIR", var_dir)
    os.environ.setdefault("EMAIL_URL", "locmem://")
    os.environ["DEBUG"] = "0"  # DEBUG keeps every query in memory: not how anyone serves
    os.environ["API_THROTTLE_RATE"] = "off"


def _name_and_admin_url(url: str) -> tuple[str, str]:
    """The database a postgres:// URL names, and the URL of the server's ``postgres`` database beside it."""
    return url.rsplit("/", 1)[1].split("?")[0], url.rsplit("/", 1)[0] + "/postgres"


def ensure_database(url: str) -> None:
    """Create the database the URL names if it is missing."""
    import psycopg
    from psycopg import sql

    name, admin = _name_and_admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str) -> None:
    """Drop the database the URL names, connections and all. Only a scratch one: its name must say "bench"."""
    import psycopg
    from psycopg import sql

    name, admin = _name_and_admin_url(url)
    if "bench" not in name:
        raise SystemExit(f"Refusing to drop {name!r}: a benchmark drops only a scratch database, one whose name "
                         "contains 'bench'.")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def scratch_postgres(script: str, *, reuse: bool = False) -> str:
    """The URL of the scratch PostgreSQL database ``DATABASE_URL`` names, emptied first (unless ``reuse``) and made
    if missing. ``script`` names the benchmark for the message when the URL is not PostgreSQL."""
    url = os.environ["DATABASE_URL"]
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit(f"{script} measures PostgreSQL: set DATABASE_URL to a postgres:// database.")
    if not reuse:
        drop_database(url)  # what an earlier run left behind
    ensure_database(url)
    return url


def median_seconds(call, rounds: int) -> tuple[float, object]:
    """The median seconds of ``rounds`` calls, and what the last one returned."""
    timings, result = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        result = call()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings), result
