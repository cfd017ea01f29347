"""The embedded edge store (the quick start, no Redis): one SQLite file under ``VAR_DIR`` in WAL mode.

The web server, the worker and beat are separate processes and must all see the same store; the
default local-memory cache is per process and the file cache cannot update atomically, while SQLite
gives cross-process transactions (``BEGIN IMMEDIATE``) for free.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from accounts.edge.store import (
    NOT_BUILT,
    PUBLISH_CHUNK,
    REFUSED_STATUSES,
    UNIT,
    EdgeNotBuilt,
    EdgeStore,
    EdgeUnavailable,
    KeyRecord,
    Verdict,
    bucket_used,
    chunks,
    decide,
)

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS key_state (
    sha TEXT PRIMARY KEY, prefix TEXT NOT NULL, status TEXT NOT NULL,
    rate_limit INTEGER NOT NULL, ip_rate_limit INTEGER NOT NULL, version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS key_state_prefix ON key_state (prefix);
CREATE TABLE IF NOT EXISTS bucket (name TEXT PRIMARY KEY, used INTEGER NOT NULL, ts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SQLiteEdgeStore(EdgeStore):
    """One file shared by every process; each write is its own ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=20, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SQLITE_SCHEMA)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _write(self, work: Callable[[sqlite3.Connection], object]):
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result
        except sqlite3.Error as exc:
            raise EdgeUnavailable(f"SQLite edge store {self.path}: {exc}") from exc

    def publish(self, records: Iterable[KeyRecord], *, force: bool = False) -> int:
        def write(conn, chunk) -> int:
            written = 0
            for r in chunk:
                if not force:
                    known = conn.execute(
                        "SELECT MAX(version) FROM key_state WHERE sha = ? OR prefix = ?", (r.token_sha256, r.prefix)
                    ).fetchone()[0]
                    if known is not None and known >= r.version:
                        continue
                conn.execute("DELETE FROM key_state WHERE prefix = ? AND sha <> ?", (r.prefix, r.token_sha256))
                conn.execute(
                    "INSERT OR REPLACE INTO key_state VALUES (?, ?, ?, ?, ?, ?)",
                    (r.token_sha256, r.prefix, r.status, r.rate_limit, r.ip_rate_limit, r.version),
                )
                written += 1
            return written

        return sum(self._write(lambda conn, c=chunk: write(conn, c)) for chunk in chunks(records, PUBLISH_CHUNK))

    def get(self, token_sha256: str) -> KeyRecord | None:
        try:
            row = self._conn().execute(
                "SELECT sha, prefix, status, rate_limit, ip_rate_limit, version FROM key_state WHERE sha = ?",
                (token_sha256,),
            ).fetchone()
        except sqlite3.Error as exc:
            raise EdgeUnavailable(f"SQLite edge store {self.path}: {exc}") from exc
        return KeyRecord.from_row(row) if row else None

    def check(self, token_sha256: str, ip: str, *, now_ms: int | None = None) -> Verdict:
        # Refusals read only; only a request that may pass takes the write lock.
        record = self.get(token_sha256)
        if record is None:
            if not self.is_built():
                raise EdgeNotBuilt(NOT_BUILT)
            return Verdict("unknown_key", 0, 0, 0)
        if record.status in REFUSED_STATUSES:
            return Verdict(record.status, 0, 0, 0)
        now = int(time.time() * 1000) if now_ms is None else now_ms
        key_bucket, ip_bucket = f"rl:{token_sha256}", f"rl:{token_sha256}:{ip}"

        def work(conn) -> Verdict:
            row = conn.execute(
                "SELECT status, rate_limit, ip_rate_limit FROM key_state WHERE sha = ?", (token_sha256,)
            ).fetchone()
            if row is None:
                return Verdict("unknown_key", 0, 0, 0)
            status, limit, ip_limit = row
            stored = dict.fromkeys((key_bucket, ip_bucket), (0, now))
            for name, used, ts in conn.execute(
                "SELECT name, used, ts FROM bucket WHERE name IN (?, ?)", (key_bucket, ip_bucket)
            ):
                stored[name] = (used, ts)
            key_used = bucket_used(*stored[key_bucket], limit, now)
            ip_used = bucket_used(*stored[ip_bucket], ip_limit, now)
            verdict, take = decide(status, limit, ip_limit, key_used, ip_used)
            if take:
                conn.executemany(
                    "INSERT OR REPLACE INTO bucket VALUES (?, ?, ?)",
                    [(key_bucket, key_used + UNIT, max(stored[key_bucket][1], now)),
                     (ip_bucket, ip_used + UNIT, max(stored[ip_bucket][1], now))],
                )
            if random.random() < 0.001:
                # A bucket untouched for a minute is full again: the same as no row at all.
                conn.execute("DELETE FROM bucket WHERE ts < ?", (now - UNIT,))
            return verdict

        return self._write(work)

    def stored_hashes(self) -> Iterator[list[str]]:
        last = ""
        while True:
            rows = self._conn().execute(
                "SELECT sha FROM key_state WHERE sha > ? ORDER BY sha LIMIT 1000", (last,)
            ).fetchall()
            if not rows:
                return
            batch = [sha for (sha,) in rows]
            last = batch[-1]
            yield batch

    def remove(self, hashes: list[str]) -> int:
        def work(conn) -> int:
            return conn.executemany("DELETE FROM key_state WHERE sha = ?", [(h,) for h in hashes]).rowcount

        return self._write(work) if hashes else 0

    def clear(self) -> None:
        self._write(lambda conn: [conn.execute(f"DELETE FROM {table}") for table in ("key_state", "bucket", "meta")])

    def mark_built(self) -> None:
        self._write(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO meta VALUES ('built', ?)", (str(int(time.time())),)
        ))

    def is_built(self) -> bool:
        try:
            return self._conn().execute("SELECT 1 FROM meta WHERE name = 'built'").fetchone() is not None
        except sqlite3.Error as exc:
            raise EdgeUnavailable(f"SQLite edge store {self.path}: {exc}") from exc

    def ping(self) -> None:
        self.get("0" * 64)
