"""Private servers for fault tests, started and killed by the tests themselves (never the shared ones):
a PostgreSQL cluster (``initdb`` + ``pg_ctl``, as the postgres user) and a ``redis-server``, each on a free
loopback port, in a temporary directory."""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.processes import free_port


def missing(reason: str):
    """Outside CI a machine without the server binaries skips; CI (``CI_REQUIRE_SERVICES=1``) must run these."""
    if os.environ.get("CI_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and CI_REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
    pytest.skip(reason)


def wait_for(check, *, timeout: float = 20, what: str = "a server") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not come up within {timeout} s")


class PrivatePostgres:
    """Its directory is made under /tmp (not pytest's, which the postgres user cannot enter); ``remove()``."""

    def __init__(self):
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not binaries or shutil.which("runuser") is None or os.geteuid() != 0:
            missing("a private PostgreSQL needs the server binaries and root (runuser -u postgres)")
        self.bin = Path(binaries[-1]).parent
        base = Path(tempfile.mkdtemp(prefix="private-pg-"))
        self.base = base
        self.dir = base / "pgdata"
        self.socket_dir = base / "pgsock"
        self.log = base / "postgres.log"
        self.port = free_port()
        for path in (base, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            shutil.chown(path, "postgres", "postgres")
        self._as_postgres(self.bin / "initdb", "-D", self.dir, "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *map(str, args)], check=True, capture_output=True,
                       timeout=120)

    def start(self) -> None:
        self._as_postgres(self.bin / "pg_ctl", "-D", self.dir, "-l", self.log, "-w", "-t", "60",
                          "-o", f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off",
                          "start")

    def stop(self) -> None:
        self._as_postgres(self.bin / "pg_ctl", "-D", self.dir, "-m", "immediate", "-w", "stop")

    def running(self) -> bool:
        return subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D", str(self.dir),
                               "status"], capture_output=True).returncode == 0

    def remove(self) -> None:
        if self.running():
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


class PrivateRedis:
    def __init__(self, base: Path):
        if shutil.which("redis-server") is None:
            missing("a private Redis needs redis-server")
        self.port = free_port()
        self.dir = base
        self.dir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close() or True,
                 what="redis-server")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
