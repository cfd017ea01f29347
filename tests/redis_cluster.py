"""A three-master Redis Cluster the tests start (and bench/gate.py can use): ``redis-server --cluster-enabled yes``
on three ports, joined by ``redis-cli --cluster create``, no replicas, nothing saved to disk.

The ports are 7101-7103 by default (their cluster bus ports 17101-17103), ``EDGE_TEST_CLUSTER_PORTS`` to change
them. Only the servers started here are stopped, by the process ids they wrote.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

DEFAULT_PORTS = (7101, 7102, 7103)


def ports_from_env() -> tuple[int, ...]:
    raw = os.environ.get("EDGE_TEST_CLUSTER_PORTS")
    return tuple(int(p) for p in raw.split(",")) if raw else DEFAULT_PORTS


def missing() -> str | None:
    """Why a cluster cannot be started here, or None."""
    for program in ("redis-server", "redis-cli"):
        if shutil.which(program) is None:
            return f"{program} is not installed (apt-get install -y redis-server)"
    return None


def _cli(port: int, *args: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def _answers(port: int) -> bool:
    return _cli(port, "ping", timeout=2).stdout.strip() == "PONG"


class Cluster:
    def __init__(self, directory: Path, ports: tuple[int, ...] = DEFAULT_PORTS):
        self.directory = Path(directory)
        self.ports = ports
        self.pids: list[int] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self, timeout: float = 30) -> Cluster:
        busy = [port for port in self.ports if _answers(port)]
        if busy:
            raise RuntimeError(f"something already answers on port(s) {busy}: not starting a cluster over it")
        self.directory.mkdir(parents=True, exist_ok=True)
        for port in self.ports:
            subprocess.run(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(self.directory / f"nodes-{port}.conf"), "--dir", str(self.directory),
                 "--save", "", "--appendonly", "no", "--daemonize", "yes",
                 "--pidfile", str(self.directory / f"{port}.pid"), "--logfile", str(self.directory / f"{port}.log")],
                check=True, capture_output=True, timeout=30,
            )
        deadline = time.monotonic() + timeout
        try:
            for port in self.ports:
                pidfile = self.directory / f"{port}.pid"
                while not (pidfile.exists() and pidfile.read_text().strip() and _answers(port)):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server on port {port} did not start")
                    time.sleep(0.05)
                self.pids.append(int(pidfile.read_text()))
            created = subprocess.run(
                ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
                 "--cluster-replicas", "0", "--cluster-yes"],
                capture_output=True, text=True, timeout=timeout, check=False,
            )
            if created.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-500:]} {created.stderr}")
            while not all("cluster_state:ok" in _cli(port, "cluster", "info").stdout for port in self.ports):
                if time.monotonic() > deadline:
                    raise RuntimeError("the cluster did not reach cluster_state:ok")
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.pids = []
