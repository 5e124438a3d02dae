"""The catalogue: an SQLite file recording every run, every copy and every drill.

The backup command writes it; the exporter's backup collector reads it (read-only) through
:func:`summarise`. Times are Unix seconds (UTC).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sscp_ops.filemode import Private

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    set_name TEXT NOT NULL,
    run_id TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    duration REAL,
    size_bytes INTEGER,
    manifest_sha256 TEXT,
    result TEXT NOT NULL CHECK (result IN ('running', 'success', 'failed')),
    error TEXT,
    UNIQUE (set_name, run_id)
);
CREATE TABLE IF NOT EXISTS copies (
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL REFERENCES runs(id),
    location TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('local', 'offsite', 'offline')),
    dest TEXT NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('ok', 'failed', 'skipped')),
    error TEXT,
    size_bytes INTEGER,
    sha256 TEXT,  -- of the copy's manifest.json, which holds the sha256 of every file
    copied_at REAL NOT NULL,
    verified_at REAL,
    verified_ok INTEGER,
    verify_error TEXT,
    offline_confirmed_at REAL,
    removed_at REAL,
    encrypted INTEGER NOT NULL DEFAULT 0,  -- files are <name>.age, sha256 of manifest.json.age
    UNIQUE (run, location)
);
-- The ciphertexts of a run's encrypted copies (the same in each), so that verify checks them
-- without the private key.
CREATE TABLE IF NOT EXISTS encrypted_files (
    run INTEGER NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (run, name)
);
CREATE TABLE IF NOT EXISTS drills (
    id INTEGER PRIMARY KEY,
    set_name TEXT NOT NULL,
    run_id TEXT,
    location TEXT,
    started REAL NOT NULL,
    finished REAL NOT NULL,
    duration REAL NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('success', 'failed')),
    error TEXT,
    tables INTEGER,
    rows INTEGER
);
CREATE INDEX IF NOT EXISTS runs_set ON runs (set_name, started);
CREATE INDEX IF NOT EXISTS drills_set ON drills (set_name, finished);
"""


@dataclass(frozen=True)
class CopyRow:
    id: int
    run: int
    set_name: str
    run_id: str
    manifest_sha256: str | None
    location: str
    kind: str
    dest: str
    result: str
    error: str | None
    verified_ok: int | None
    offline_confirmed_at: float | None
    removed_at: float | None
    encrypted: bool = False
    copy_sha256: str | None = None  # of the copy's manifest.json (.age when encrypted)


class Catalogue:
    """Read-write access for the backup command."""

    def __init__(self, path: Path, clock=time.time, group: str | None = None) -> None:
        self.private = Private(group)
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True)
            self.private.apply(path.parent)
        # SQLite gives its journal the mode of the database file, so the catalogue is created
        # (or an older one tightened) with the private mode before it is opened.
        self.private.touch(path)
        self.path = path
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA foreign_keys = ON")
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(copies)")}
        if columns and "encrypted" not in columns:  # a catalogue of an older version
            self.db.execute("ALTER TABLE copies ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0")
        self.db.executescript(SCHEMA)
        self.clock = clock

    def close(self) -> None:
        self.db.close()

    def start_run(self, set_name: str, run_id: str, started: float) -> int:
        cur = self.db.execute(
            "INSERT INTO runs (set_name, run_id, started, result) VALUES (?, ?, ?, 'running')",
            (set_name, run_id, started),
        )
        return int(cur.lastrowid)

    def finish_run(
        self,
        run: int,
        ok: bool,
        error: str | None,
        size: int | None,
        manifest_sha256: str | None,
    ) -> None:
        now = self.clock()
        self.db.execute(
            "UPDATE runs SET finished = ?, duration = ? - started, result = ?, error = ?,"
            " size_bytes = ?, manifest_sha256 = ? WHERE id = ?",
            (now, now, "success" if ok else "failed", error, size, manifest_sha256, run),
        )

    def record_copy(
        self,
        run: int,
        location: str,
        kind: str,
        dest: str,
        result: str,
        error: str | None = None,
        size: int | None = None,
        sha256: str | None = None,
        encrypted: bool = False,
    ) -> None:
        ok = 1 if result == "ok" else None
        now = self.clock()
        self.db.execute(
            "INSERT INTO copies (run, location, kind, dest, result, error, size_bytes, sha256,"
            " copied_at, verified_at, verified_ok, encrypted)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run,
                location,
                kind,
                dest,
                result,
                error,
                size,
                sha256,
                now,
                now if ok else None,
                ok,
                int(encrypted),
            ),
        )

    def record_encrypted_files(self, run: int, files: dict[str, tuple[int, str]]) -> None:
        self.db.executemany(
            "INSERT INTO encrypted_files (run, name, size, sha256) VALUES (?, ?, ?, ?)",
            [(run, name, size, digest) for name, (size, digest) in sorted(files.items())],
        )

    def encrypted_files(self, run: int) -> dict[str, tuple[int, str]]:
        """name -> (size, sha256) of the files of the run's encrypted copies."""
        rows = self.db.execute(
            "SELECT name, size, sha256 FROM encrypted_files WHERE run = ?", (run,)
        )
        return {name: (size, digest) for name, size, digest in rows}

    def copies(self, set_name: str | None = None, live: bool = True) -> list[CopyRow]:
        sql = (
            "SELECT c.id, c.run, r.set_name, r.run_id, r.manifest_sha256, c.location, c.kind,"
            " c.dest, c.result, c.error, c.verified_ok, c.offline_confirmed_at, c.removed_at,"
            " c.encrypted != 0, c.sha256"
            " FROM copies c JOIN runs r ON r.id = c.run WHERE c.result = 'ok'"
        )
        args: list = []
        if live:
            sql += " AND c.removed_at IS NULL"
        if set_name is not None:
            sql += " AND r.set_name = ?"
            args.append(set_name)
        sql += " ORDER BY r.started, c.id"
        return [CopyRow(*row) for row in self.db.execute(sql, args)]

    def record_verify(self, copy_id: int, ok: bool, error: str | None) -> None:
        self.db.execute(
            "UPDATE copies SET verified_at = ?, verified_ok = ?, verify_error = ? WHERE id = ?",
            (self.clock(), 1 if ok else 0, error, copy_id),
        )

    def mark_removed(self, copy_id: int) -> None:
        self.db.execute("UPDATE copies SET removed_at = ? WHERE id = ?", (self.clock(), copy_id))

    def confirm_offline(self, set_name: str, location: str | None = None) -> list[CopyRow]:
        """Mark the newest good offline copy (per offline location) of a set as detached."""
        newest: dict[str, CopyRow] = {}
        for row in self.copies(set_name):
            if row.kind == "offline" and row.verified_ok != 0:
                if location is None or row.location == location:
                    newest[row.location] = row
        now = self.clock()
        for row in newest.values():
            self.db.execute(
                "UPDATE copies SET offline_confirmed_at = ? WHERE id = ?", (now, row.id)
            )
        return list(newest.values())

    def record_drill(
        self,
        set_name: str,
        run_id: str | None,
        location: str | None,
        started: float,
        finished: float,
        ok: bool,
        error: str | None,
        tables: int | None,
        rows: int | None,
    ) -> None:
        self.db.execute(
            "INSERT INTO drills (set_name, run_id, location, started, finished, duration,"
            " result, error, tables, rows) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                set_name,
                run_id,
                location,
                started,
                finished,
                finished - started,
                "success" if ok else "failed",
                error,
                tables,
                rows,
            ),
        )

    def has_run(self, set_name: str, run_id: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM runs WHERE set_name = ? AND run_id = ?", (set_name, run_id)
        ).fetchone()
        return row is not None

    def manifest_sha(self, set_name: str, run_id: str) -> str | None:
        row = self.db.execute(
            "SELECT manifest_sha256 FROM runs WHERE set_name = ? AND run_id = ?",
            (set_name, run_id),
        ).fetchone()
        return row[0] if row else None


# ---------------------------------------------------------------------------------------------
# Read side, for the exporter.

KINDS = ("local", "offsite", "offline")


@dataclass(frozen=True)
class SetSummary:
    set: str
    runs_total: int = 0
    failures_total: int = 0
    last_success: float | None = None
    last_duration: float | None = None
    last_run_success: bool | None = None
    size: int | None = None
    copies: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    copy_verified: dict[str, int] = field(default_factory=dict)
    #: location -> whether its newest good copy is encrypted
    copy_encrypted: dict[str, int] = field(default_factory=dict)
    drill_last: float | None = None
    drill_success: bool | None = None
    drill_duration: float | None = None

    @property
    def compliant_321(self) -> bool:
        c = self.copies
        return c["local"] >= 2 and c["offsite"] >= 1 and c["offline"] >= 1


def connect_readonly(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)


def summarise(db: sqlite3.Connection, sets: Iterable[str]) -> list[SetSummary]:
    """What the metrics show for each configured set (sets never run get empty summaries)."""
    return [_summary(db, name) for name in sets]


def _summary(db: sqlite3.Connection, name: str) -> SetSummary:
    runs_total, failures = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(result = 'failed'), 0) FROM runs"
        " WHERE set_name = ? AND result != 'running'",
        (name,),
    ).fetchone()
    (last_success,) = db.execute(
        "SELECT MAX(finished) FROM runs WHERE set_name = ? AND result = 'success'", (name,)
    ).fetchone()
    last = db.execute(
        "SELECT duration, result FROM runs WHERE set_name = ? AND result != 'running'"
        " ORDER BY finished DESC LIMIT 1",
        (name,),
    ).fetchone()
    size = db.execute(
        "SELECT size_bytes FROM runs WHERE set_name = ? AND result = 'success'"
        " ORDER BY finished DESC LIMIT 1",
        (name,),
    ).fetchone()
    columns = {row[1] for row in db.execute("PRAGMA table_info(copies)")}
    encrypted = "c.encrypted != 0" if "encrypted" in columns else "0"  # an older catalogue
    live = db.execute(
        "SELECT c.run, c.location, c.kind, c.verified_ok, c.offline_confirmed_at,"
        f" {encrypted} FROM copies c"
        " JOIN runs r ON r.id = c.run WHERE r.set_name = ? AND c.result = 'ok'"
        " AND c.removed_at IS NULL ORDER BY r.started, c.id",
        (name,),
    ).fetchall()
    copies = dict.fromkeys(KINDS, 0)
    # Local and off-site: copies of the newest run that produced any; offline: the newest copy
    # confirmed detached, per offline location.
    newest = max((run for run, _, kind, _, _, _ in live if kind != "offline"), default=None)
    offline: set[str] = set()
    verified: dict[str, int] = {}
    sealed: dict[str, int] = {}
    for run, location, kind, ok, confirmed, enc in live:
        good = ok != 0
        verified[location] = min(verified.get(location, 1), 1 if good else 0)
        if not good:
            continue
        sealed[location] = 1 if enc else 0  # rows are oldest first: the newest copy wins
        if kind == "offline":
            if confirmed is not None:
                offline.add(location)
        elif run == newest:
            copies[kind] += 1
    copies["offline"] = len(offline)
    drill = db.execute(
        "SELECT finished, result, duration FROM drills WHERE set_name = ?"
        " ORDER BY finished DESC LIMIT 1",
        (name,),
    ).fetchone()
    return SetSummary(
        set=name,
        runs_total=runs_total,
        failures_total=failures,
        last_success=last_success,
        last_duration=last[0] if last else None,
        last_run_success=(last[1] == "success") if last else None,
        size=size[0] if size else None,
        copies=copies,
        copy_verified=verified,
        copy_encrypted=sealed,
        drill_last=drill[0] if drill else None,
        drill_success=(drill[1] == "success") if drill else None,
        drill_duration=drill[2] if drill else None,
    )
