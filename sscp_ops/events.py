"""Security events (attacks, abnormal logins, abnormal exports) in one SQLite file.

The exporter's ``logs`` collector writes them; ``sscp-ops logs events`` and the monthly report
read them. Each event has a ``key`` unique to the log bytes it came from (log name, file id,
offset), so a line read twice after a crash is stored once. What people may read is masked
(:func:`sscp_ops.masking.mask_text`) and truncated before it is stored.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from sscp_ops.masking import mask_text

#: Every event type (metric label ``type`` and stored ``type``).
EVENT_TYPES = (
    "sql_injection",
    "xss",
    "path_traversal",
    "command_injection",
    "scanner",
    "brute_force",
    "login_after_failures",
    "unusual_hour_login",
    "new_ip_login",
    "disabled_account_login",
    "privileged_outside_bastion",
    "abnormal_export",
)

DETAIL_MAX = 300

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    key       TEXT PRIMARY KEY,
    time      REAL NOT NULL,
    source    TEXT NOT NULL,
    type      TEXT NOT NULL,
    rule      TEXT NOT NULL,
    client_ip TEXT NOT NULL DEFAULT '',
    account   TEXT NOT NULL DEFAULT '',
    detail    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
CREATE TABLE IF NOT EXISTS login_addresses (
    source  TEXT NOT NULL,
    account TEXT NOT NULL,
    ip      TEXT NOT NULL,
    logins  INTEGER NOT NULL,
    PRIMARY KEY (source, account, ip)
);
"""


class Event(NamedTuple):
    key: str
    time: float
    source: str
    type: str
    rule: str
    client_ip: str = ""
    account: str = ""
    detail: str = ""

    def as_dict(self) -> dict:
        return self._asdict()


def clean_detail(text: str) -> str:
    """Masked (phones, IDs, cards, e-mail) and cut to ``DETAIL_MAX`` characters."""
    text = mask_text(text[: DETAIL_MAX * 2])
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 1] + "…"


class EventStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=10)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.executescript(_SCHEMA)

    def add(self, events: Iterable[Event]) -> int:
        """Store events (masking their detail); returns how many were new."""
        rows = [
            (
                e.key,
                e.time,
                e.source,
                e.type,
                e.rule,
                e.client_ip,
                e.account,
                clean_detail(e.detail),
            )
            for e in events
        ]
        if not rows:
            return 0
        with self._lock, self._db:
            before = self._db.total_changes
            self._db.executemany("INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?,?,?)", rows)
            return self._db.total_changes - before

    def query(
        self, since: float | None = None, until: float | None = None, types: Iterable[str] = ()
    ) -> list[Event]:
        """Events with ``since <= time < until``, oldest first."""
        sql = "SELECT key,time,source,type,rule,client_ip,account,detail FROM events WHERE 1=1"
        args: list = []
        if since is not None:
            sql += " AND time >= ?"
            args.append(since)
        if until is not None:
            sql += " AND time < ?"
            args.append(until)
        wanted = list(types)
        if wanted:
            sql += f" AND type IN ({','.join('?' * len(wanted))})"
            args.extend(wanted)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY time, key", args).fetchall()
        return [Event(*row) for row in rows]

    def login_addresses(self, source: str) -> dict[str, dict[str, int]]:
        """account -> {ip: successful logins} learned from ``source``."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            rows = self._db.execute(
                "SELECT account, ip, logins FROM login_addresses WHERE source = ?", (source,)
            ).fetchall()
        for account, ip, logins in rows:
            out.setdefault(account, {})[ip] = logins
        return out

    def save_login_addresses(self, source: str, rows: list[tuple[str, str, int]]) -> None:
        if not rows:
            return
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO login_addresses VALUES (?,?,?,?) ON CONFLICT (source, account, ip) "
                "DO UPDATE SET logins = excluded.logins",
                [(source, *row) for row in rows],
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
