"""The embedded edge store (the quick start, no Redis): one SQLite file under ``VAR_DIR`` in WAL mode.

The web server, the worker and beat are separate processes and must all see the same store; the
default local-memory cache is per process and the file cache cannot update atomically, while SQLite
gives cross-process transactions (``BEGIN IMMEDIATE``) for free.

The detector's counters are tables beside the buckets, written in the decision's own transaction:
``refusal`` (per window and key), ``refusal_address`` (the addresses refused most, at most ``TOP_ADDRESSES``
per key and window, Space-Saving as in ``lua/check.lua``) and ``browser_sighting`` (key, origin, first and
last seen). Old rows go with the buckets' occasional clean-up.
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
    ORIGINS_PER_KEY,
    PUBLISH_CHUNK,
    REFUSED_STATUSES,
    SIGHTING_TTL_MS,
    TOP_ADDRESSES,
    UNIT,
    BrowserSighting,
    EdgeNotBuilt,
    EdgeStore,
    EdgeUnavailable,
    KeyRecord,
    RefusalWindows,
    Verdict,
    bucket_used,
    chunks,
    decide,
    refusal_windows,
)

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS key_state (
    sha TEXT PRIMARY KEY, prefix TEXT NOT NULL, status TEXT NOT NULL,
    rate_limit INTEGER NOT NULL, ip_rate_limit INTEGER NOT NULL, version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS key_state_prefix ON key_state (prefix);
CREATE TABLE IF NOT EXISTS bucket (name TEXT PRIMARY KEY, used INTEGER NOT NULL, ts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refusal (
    window_start INTEGER NOT NULL, sha TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (window_start, sha)
);
CREATE TABLE IF NOT EXISTS refusal_address (
    window_start INTEGER NOT NULL, sha TEXT NOT NULL, address TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (window_start, sha, address)
);
CREATE TABLE IF NOT EXISTS browser_sighting (
    sha TEXT NOT NULL, origin TEXT NOT NULL, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,
    requests INTEGER NOT NULL, PRIMARY KEY (sha, origin)
);
"""
DETECTOR_TABLES = ("refusal", "refusal_address", "browser_sighting")


def count_refusal(conn: sqlite3.Connection, sha: str, address: str, now: int, windows: RefusalWindows) -> None:
    """One rate-limited refusal, in the key's count for the window and its address's (as ``lua/check.lua``)."""
    start = windows.start(now)
    conn.execute(
        "INSERT INTO refusal VALUES (?, ?, 1) ON CONFLICT (window_start, sha) DO UPDATE SET count = count + 1",
        (start, sha),
    )
    where = "window_start = ? AND sha = ?"
    if conn.execute(f"UPDATE refusal_address SET count = count + 1 WHERE {where} AND address = ?",
                    (start, sha, address)).rowcount:
        return
    kept, least = conn.execute(
        f"SELECT COUNT(*), MIN(count) FROM refusal_address WHERE {where}", (start, sha)
    ).fetchone()
    count = 1
    if kept >= TOP_ADDRESSES:  # full: the least counted address gives its place, and its count, to the newcomer
        conn.execute(
            f"DELETE FROM refusal_address WHERE rowid = (SELECT rowid FROM refusal_address WHERE {where} "
            "ORDER BY count, address LIMIT 1)", (start, sha),
        )
        count = least + 1
    conn.execute("INSERT INTO refusal_address VALUES (?, ?, ?, ?)", (start, sha, address, count))


def record_sighting(conn: sqlite3.Connection, sha: str, origin: str, now: int) -> None:
    """A key presented from a web origin: first seen, last seen, how many times (at most ``ORIGINS_PER_KEY``)."""
    if conn.execute("UPDATE browser_sighting SET last_ms = ?, requests = requests + 1 WHERE sha = ? AND origin = ?",
                    (now, sha, origin)).rowcount:
        return
    if conn.execute("SELECT COUNT(*) FROM browser_sighting WHERE sha = ?", (sha,)).fetchone()[0] < ORIGINS_PER_KEY:
        conn.execute("INSERT INTO browser_sighting VALUES (?, ?, ?, ?, 1)", (sha, origin, now, now))


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

    def get_many(self, hashes: list[str]) -> dict[str, KeyRecord | None]:
        found: dict[str, KeyRecord | None] = dict.fromkeys(hashes)
        for chunk in chunks(hashes, PUBLISH_CHUNK):  # within SQLite's bound on parameters
            rows = self._read(
                "SELECT sha, prefix, status, rate_limit, ip_rate_limit, version FROM key_state "
                f"WHERE sha IN ({', '.join('?' * len(chunk))})", tuple(chunk),
            )
            found.update((row[0], KeyRecord.from_row(row)) for row in rows)
        return found

    def check(
        self, token_sha256: str, ip: str, *, now_ms: int | None = None, origin: str | None = None,
        refuse_origin: bool = False,
    ) -> Verdict:
        # Refusals by status read only; a request that may pass, or is counted, takes the write lock.
        record = self.get(token_sha256)
        if record is None:
            if not self.is_built():
                raise EdgeNotBuilt(NOT_BUILT)
            return Verdict("unknown_key", 0, 0, 0)
        if record.status in REFUSED_STATUSES:
            return Verdict(record.status, 0, 0, 0)
        now = int(time.time() * 1000) if now_ms is None else now_ms
        key_bucket, ip_bucket = f"rl:{token_sha256}", f"rl:{token_sha256}:{ip}"
        windows = refusal_windows()

        def work(conn) -> Verdict:
            row = conn.execute(
                "SELECT status, rate_limit, ip_rate_limit FROM key_state WHERE sha = ?", (token_sha256,)
            ).fetchone()
            if row is None:
                return Verdict("unknown_key", 0, 0, 0)
            status, limit, ip_limit = row
            if status in REFUSED_STATUSES:  # changed since the read above
                return Verdict(status, 0, 0, 0)
            if origin is not None:
                record_sighting(conn, token_sha256, origin, now)
                if refuse_origin:
                    return Verdict("wrong_key_type", 0, 0, 0)
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
            elif verdict.reason == "rate_limited":
                count_refusal(conn, token_sha256, ip, now, windows)
            if random.random() < 0.001:
                # A bucket untouched for a minute is full again: the same as no row at all. Counters and
                # sightings live as long as in Redis.
                conn.execute("DELETE FROM bucket WHERE ts < ?", (now - UNIT,))
                oldest = windows.start(now) - windows.retention_ms
                conn.execute("DELETE FROM refusal WHERE window_start < ?", (oldest,))
                conn.execute("DELETE FROM refusal_address WHERE window_start < ?", (oldest,))
                conn.execute("DELETE FROM browser_sighting WHERE last_ms < ?", (now - SIGHTING_TTL_MS,))
            return verdict

        return self._write(work)

    def _read(self, sql: str, params: tuple) -> list[tuple]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise EdgeUnavailable(f"SQLite edge store {self.path}: {exc}") from exc

    def refusal_counts(self, window_start_ms: int, *, hashes: list[str] | None = None) -> dict[str, int]:
        rows = self._read("SELECT sha, count FROM refusal WHERE window_start = ?", (window_start_ms,))
        wanted = None if hashes is None else set(hashes)
        return {sha: count for sha, count in rows if wanted is None or sha in wanted}

    def refused_addresses(self, token_sha256: str, window_start_ms: int, *, limit: int = 10) -> list[tuple[str, int]]:
        rows = self._read(
            "SELECT address, count FROM refusal_address WHERE window_start = ? AND sha = ? "
            "ORDER BY count DESC, address DESC LIMIT ?", (window_start_ms, token_sha256, limit),
        )
        return [(address, count) for address, count in rows]

    def browser_sightings(self) -> list[BrowserSighting]:
        rows = self._read(
            "SELECT sha, origin, first_ms, last_ms, requests FROM browser_sighting ORDER BY sha, origin", ()
        )
        return [BrowserSighting(*row) for row in rows]

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
        tables = ("key_state", "bucket", "meta", *DETECTOR_TABLES)
        self._write(lambda conn: [conn.execute(f"DELETE FROM {table}") for table in tables])

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
