"""The ticket store: SQLAlchemy Core on SQLite (WAL) or MySQL (``mysql+pymysql://``).

Every ticket change, its audit record and the notices it causes are written in ONE transaction.
Idempotency rests on a unique key, never on search-then-create: ``occurrences`` holds one row per
alert occurrence, unique on ``(fingerprint, starts_at)``; only the delivery whose insert wins
creates, reopens or resolves a ticket, so N concurrent deliveries give one ticket and one set of
notices. The schema is created and upgraded by Alembic (``webhook/migrations``); the table
definitions here describe it for queries, and a test checks they match the migrations.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import logging
import os
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.types import TypeDecorator

from sscp_ops.config import ConfigError
from sscp_ops.filemode import PRIVATE
from sscp_ops.vulns import due_at as vuln_due_at
from webhook.columns import TEXT_BYTES, fit_bytes, fit_chars, fit_key, labels_json
from webhook.dbapi import Prepared, PreparedIn
from webhook.events import GROUP_PREFIX, TRUNCATION_PREFIX, AlertEvent, unknown_severity

UTC = dt.UTC
log = logging.getLogger("webhook.store")
STATUSES = ("open", "acknowledged", "resolved", "closed")
#: The audit action of a refused UI login.
LOGIN_FAILED = "login_failed"
ROLES = ("viewer", "operator", "admin")


class StoreUnavailable(Exception):
    """The database cannot be reached; the API answers 503 so Alertmanager retries."""


#: The driver's errors that may mean the server is gone (PyMySQL raises InterfaceError on a
#: connection the server closed, e.g. during a shutdown; SQLite's InterfaceError is a bad
#: parameter, not retried); :func:`_is_unavailable` decides.
_CONNECTION_ERRORS = (OperationalError, InterfaceError)


class StoreCannotHoldText(ConfigError):
    """The database would refuse Chinese text (tables or connection not in utf8mb4): the
    webhook refuses to start (exit 2) rather than answer every alert with 500."""


class NotFound(Exception):
    pass


class Invalid(ValueError):
    """A value the store cannot take (e.g. a reference to a row that does not exist); the API
    answers 400 naming ``field``."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class Conflict(Exception):
    """A transition not allowed from the ticket's current status."""


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out; stored naive UTC (microseconds kept)."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


metadata = sa.MetaData()
_str = sa.String

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", _str(16), nullable=False),  # incident | vulnerability
    sa.Column("status", _str(16), nullable=False),
    sa.Column("alertname", _str(200), nullable=False, server_default=""),
    sa.Column("severity", _str(16), nullable=False, server_default="warning"),
    sa.Column("target", _str(255), nullable=False, server_default=""),
    sa.Column("summary", _str(500), nullable=False, server_default=""),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("labels", sa.Text, nullable=False),  # JSON object
    sa.Column("fingerprint", _str(64), nullable=True),
    sa.Column("starts_at", UTCDateTime, nullable=True),
    sa.Column("last_starts_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("notified_at", UTCDateTime, nullable=True),
    sa.Column("acknowledged_at", UTCDateTime, nullable=True),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("escalated_at", UTCDateTime, nullable=True),
    sa.Column("assignee", _str(64), nullable=True),
    sa.Column("resolution_source", _str(16), nullable=True),  # alert|manual|reconcile|scan
    sa.Column("resolution_note", sa.Text, nullable=True),
    sa.Column("reopen_count", sa.Integer, nullable=False, server_default="0"),
    # revision 0006: when the current episode's response clock started (the last reopen);
    # NULL: at created_at. Escalation and lateness run from it.
    sa.Column("response_from", UTCDateTime, nullable=True),
    sa.Column("recurrence_of", sa.Integer, sa.ForeignKey("tickets.id"), nullable=True),
    sa.Column("problem_id", sa.Integer, sa.ForeignKey("problems.id"), nullable=True),
    sa.Column("risk", _str(8), nullable=True),  # high | medium | low (vulnerabilities)
    sa.Column("due_at", UTCDateTime, nullable=True),
    sa.Column("external_key", _str(200), nullable=True, unique=True),
    sa.Index("ix_tickets_status", "status"),
    sa.Index("ix_tickets_fingerprint", "fingerprint"),
    sa.Index("ix_tickets_fault", "alertname", "target"),
)

occurrences = sa.Table(
    "occurrences",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", _str(64), nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=True),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("fingerprint", "starts_at", name="uq_occurrence"),
)

comments = sa.Table(
    "comments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False, index=True),
    sa.Column("author", _str(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", _str(64), nullable=False),
    sa.Column("action", _str(32), nullable=False),
    sa.Column("object_type", _str(16), nullable=False),
    sa.Column("object_id", sa.Integer, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),  # JSON
    sa.Index("ix_audit_object", "object_type", "object_id"),
)

problems = sa.Table(
    "problems",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alertname", _str(200), nullable=False),
    sa.Column("target", _str(255), nullable=False),
    sa.Column("status", _str(16), nullable=False),  # open | known_error | closed
    sa.Column("title", _str(500), nullable=False),
    sa.Column("root_cause", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    # alertname + target while open, NULL once closed: at most one open problem per fault.
    sa.Column("open_key", _str(64), nullable=True, unique=True),
)

changes = sa.Table(
    "changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", _str(500), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("problem_id", sa.Integer, sa.ForeignKey("problems.id"), nullable=True),
    sa.Column("planned_start", UTCDateTime, nullable=True),
    sa.Column("planned_end", UTCDateTime, nullable=True),
    sa.Column("executor", _str(64), nullable=True),
    sa.Column("result", _str(16), nullable=True),  # success | failed | rolled_back
    sa.Column("verification", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", _str(64), nullable=False),
    sa.Column("role", _str(16), nullable=False),
    sa.Column("token_hash", _str(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("last_used_at", UTCDateTime, nullable=True),  # revision 0002; coarse, see below
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=True),
    sa.Column("reason", _str(16), nullable=False),  # new | reopened | resolved | escalation | ...
    sa.Column("channel", _str(16), nullable=False),  # sms | wecom | dingtalk
    sa.Column("recipient", _str(255), nullable=False),  # phone or robot name
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", _str(16), nullable=False),  # pending | sending | sent | failed | merged
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Column("last_error", _str(500), nullable=True),
    sa.Column("merged_into", sa.Integer, nullable=True),
    # The claim that owns a notice in "sending" (a fresh token per claim): only its owner
    # renews, marks or defers it, so a worker whose lease ran out cannot mark it twice.
    sa.Column("claim_token", _str(32), nullable=True),
    # Revision 0005: the contact whose acknowledge link the worker puts into the text when it
    # sends it (the body holds ACK_PLACEHOLDER, never a link: the store keeps only hashes).
    sa.Column("ack_contact", _str(64), nullable=True),
    sa.Index("ix_outbox_due", "status", "next_attempt_at"),
    sa.Index("ix_outbox_recipient", "channel", "recipient", "status"),
)

ack_links = sa.Table(
    "ack_links",
    metadata,
    sa.Column("token_hash", _str(64), primary_key=True),
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False),
    sa.Column("contact", _str(64), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
)

#: UI logins (revision 0005): the cookie carries a random session id, the store its SHA-256;
#: logout, the token's revocation and ``expires_at`` end the session on the server.
ui_sessions = sa.Table(
    "ui_sessions",
    metadata,
    sa.Column("id_hash", _str(64), primary_key=True),
    sa.Column("token_id", sa.Integer, sa.ForeignKey("api_tokens.id"), nullable=False, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

#: Flask-Limiter's counters (revision 0005), shared by every gunicorn worker (webhook.limits).
rate_limits = sa.Table(
    "rate_limits",
    metadata,
    sa.Column("key", _str(255), primary_key=True),
    sa.Column("hits", sa.Integer, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
)

settings = sa.Table(
    "settings",
    metadata,
    sa.Column("name", _str(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


# Statements of the less frequent paths, built once (a prebuilt statement skips SQLAlchemy's
# per-call construction and cache-key work); the hottest ones are in Store._prepare.
_SEL_TICKET = sa.select(tickets).where(tickets.c.id == sa.bindparam("tid"))
_SEL_PREV = (
    sa.select(tickets)
    .where(tickets.c.fingerprint == sa.bindparam("fp"), tickets.c.kind == "incident")
    .order_by(tickets.c.id.desc())
    .limit(1)
)
_SEL_OCCURRENCE = sa.select(occurrences.c.ticket_id).where(
    occurrences.c.fingerprint == sa.bindparam("fp"),
    occurrences.c.starts_at == sa.bindparam("sa_"),
)
_LINK_OCCURRENCE = (
    occurrences.update()
    .where(occurrences.c.id == sa.bindparam("oid"))
    .values(ticket_id=sa.bindparam("tid"))
)
_UPD_ATTACH = (
    tickets.update()
    .where(tickets.c.id == sa.bindparam("tid"))
    .values(last_starts_at=sa.bindparam("lsa"))
)
_UPD_REOPEN = (
    tickets.update()
    .where(tickets.c.id == sa.bindparam("tid"))
    .values(
        status="open",
        last_starts_at=sa.bindparam("lsa"),
        resolved_at=None,
        resolution_source=None,
        resolution_note=None,
        reopen_count=tickets.c.reopen_count + 1,
        response_from=sa.bindparam("now"),
        escalated_at=None,
    )
)
_UPD_RESOLVE_BY_ALERT = (
    tickets.update()
    .where(
        tickets.c.id == sa.bindparam("tid"),
        sa.or_(tickets.c.status == "open", tickets.c.status == "acknowledged"),
        tickets.c.last_starts_at == sa.bindparam("lsa"),
    )
    .values(status="resolved", resolved_at=sa.bindparam("rat"), resolution_source="alert")
)
#: One fault's incidents (alertname + target) since a time: recurrences and their problem.
_FAULT = (
    (tickets.c.alertname == sa.bindparam("an"))
    & (tickets.c.target == sa.bindparam("tg"))
    & (tickets.c.kind == "incident")
    & (tickets.c.starts_at >= sa.bindparam("since"))
)
_SEL_FAULT_COUNT = sa.select(sa.func.count()).select_from(tickets).where(_FAULT)
_UPD_FAULT_PROBLEM = tickets.update().where(_FAULT).values(problem_id=sa.bindparam("pid"))
_SEL_OPEN_PROBLEM = sa.select(problems.c.id).where(problems.c.open_key == sa.bindparam("key"))
#: Counters kept in ``settings`` (text): one UPDATE adds to them inside a transaction.
_UPD_COUNT = (
    settings.update()
    .where(settings.c.name == sa.bindparam("name"))
    .values(value=sa.cast(sa.cast(settings.c.value, sa.Integer) + sa.bindparam("n"), sa.Text))
)
#: Firing alerts filed with a severity label none of critical/warning/info (routed as warning).
UNKNOWN_SEVERITY_SETTING = "unknown_severity_total"
#: The columns of a new incident row (Store._incident_row) and of a queued notice.
_INCIDENT_KEYS = (
    "kind",
    "status",
    "alertname",
    "severity",
    "target",
    "summary",
    "description",
    "labels",
    "fingerprint",
    "starts_at",
    "last_starts_at",
    "created_at",
    "recurrence_of",
)
_OUTBOX_KEYS = (
    "ticket_id",
    "reason",
    "channel",
    "recipient",
    "body",
    "status",
    "attempts",
    "created_at",
    "next_attempt_at",
    "ack_contact",
)
#: Where a notice's acknowledge link goes; the worker replaces it with ``/a/<token>`` when it
#: sends the notice (the same text the API and UI show for a link).
ACK_PLACEHOLDER = "/a/…"
#: Characters of an acknowledge-link token (``secrets.token_urlsafe(12)``: 96 bits).
ACK_TOKEN_CHARS = 16


@dataclass(frozen=True)
class Notice:
    """A notice to queue in the outbox (and, for SMS, the acknowledge-link token it carries)."""

    channel: str
    recipient: str
    body: str
    reason: str
    #: The contact whose acknowledge link replaces ACK_PLACEHOLDER in ``body`` when it is sent.
    ack_contact: str | None = None


#: Called inside the ticket transaction: (ticket row as dict, reason) -> notices to queue.
Planner = Callable[[dict, str], Sequence[Notice]]


def _no_notices(ticket: dict, reason: str) -> Sequence[Notice]:
    return ()


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    role: str

    @property
    def actor(self) -> str:
        return f"token:{self.name}"


@dataclass(frozen=True)
class IngestResult:
    outcome: str  # created | reopened | attached | resolved | duplicate
    ticket_id: int | None


#: MySQL errors after which InnoDB asks for the transaction to be run again (deadlock, lock
#: wait timeout): concurrent recurrences of one fault lock each other's new incident rows.
RETRY_CODES = (1213, 1205)
TXN_ATTEMPTS = 4

#: How stale ``api_tokens.last_used_at`` may be: it is written when a token authenticates and
#: the recorded use is older than this (the account review counts inactivity in days).
TOKEN_USE_RESOLUTION = dt.timedelta(hours=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


#: SQLite pages (4 KiB) of WAL after which a committing connection checkpoints by itself: the
#: safety net when the notice worker (which checkpoints 4 times a second) is not running.
WAL_AUTOCHECKPOINT_PAGES = 32000


def _sqlite_setup(engine: Engine) -> None:
    """WAL, a busy timeout and BEGIN IMMEDIATE: writers queue instead of failing to upgrade."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        # Checkpoints are the notice worker's job (Store.checkpoint, 4 times a second, mostly
        # outside the write lock); a committing request would otherwise copy and fsync the WAL
        # every 1000 pages while holding it.
        cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cur.execute(f"PRAGMA journal_size_limit={64 * 1024 * 1024}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        readonly = conn.get_execution_options().get("sscp_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            # 0600 before SQLite opens it: SQLite gives the -wal and -shm files the database
            # file's mode, whatever the umask.
            PRIVATE.makedirs(Path(db).parent)
            PRIVATE.touch(Path(db))
            for suffix in ("-wal", "-shm", ".lock"):
                PRIVATE.tighten(Path(db + suffix))
        engine = sa.create_engine(url, pool_size=10, max_overflow=20)
        _sqlite_setup(engine)
        return engine
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=3600,
        pool_size=10,
        max_overflow=20,
        isolation_level="READ COMMITTED",
        connect_args={"connect_timeout": 5, "charset": "utf8mb4"},
    )


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def _fit_event(ev: AlertEvent) -> AlertEvent:
    """The event with every field cut to its column (webhook.columns): the same ticket on
    SQLite and MySQL, and the key, alertname and target the later lookups use."""
    if (
        len(ev.fingerprint) <= 64
        and len(ev.alertname) <= 200
        and len(ev.target) <= 255
        and len(ev.summary) <= 500
        and len(ev.description) * 4 <= TEXT_BYTES
    ):
        return ev
    return dataclasses.replace(
        ev,
        fingerprint=fit_key(ev.fingerprint),
        alertname=fit_chars(ev.alertname, 200),
        target=fit_chars(ev.target, 255),
        summary=fit_chars(ev.summary, 500),
        description=fit_bytes(ev.description),
    )


def _row(row) -> dict:
    return dict(row._mapping)


def _default(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=_default)


def _every_alert_a_fault(_alertname: str, _severity: str) -> bool:
    return True


@dataclass(frozen=True)
class ProblemRule:
    """When a fault's occurrences open a problem record: at the ``at``-th occurrence within
    ``window`` seconds, counting only alerts ``is_fault(alertname, severity)`` accepts."""

    at: int = 2
    window: float = 183 * 86400.0
    is_fault: Callable[[str, str], bool] = _every_alert_a_fault


#: Never a problem record (an occurrence filed only to be resolved at once).
NO_PROBLEMS = ProblemRule(at=10**6, window=1.0)


class Store:
    """All reads and writes of tickets, notices, tokens and settings."""

    def __init__(self, url: str, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.clock = clock
        parsed = sa.engine.make_url(url)
        self._lock_path = None
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            self._lock_path = f"{parsed.database}.lock"
        self._thread_lock = threading.Lock()
        self._dbapi = self.engine.dialect.loaded_dbapi
        self._sqlite = self.engine.dialect.name == "sqlite"
        self._prepare(self.engine.dialect)

    def _prepare(self, dialect) -> None:
        """The hot path's statements, compiled once for this dialect (see webhook.dbapi)."""

        def insert(table: sa.Table, keys: Sequence[str], or_ignore: bool = False):
            """``or_ignore``: on a unique-key conflict do nothing (row count 0)."""
            if not or_ignore:
                stmt = table.insert()
            elif dialect.name == "sqlite":
                stmt = sqlite_insert(table).on_conflict_do_nothing()
            else:
                stmt = table.insert().prefix_with("IGNORE")
            return Prepared(stmt.values({k: sa.bindparam(k) for k in keys}), dialect)

        self._p_claim = insert(occurrences, ("fingerprint", "starts_at", "received_at"), True)
        self._p_problem = insert(
            problems, ("alertname", "target", "status", "title", "created_at", "open_key"), True
        )
        self._p_ticket_by_id = Prepared(_SEL_TICKET, dialect)
        self._p_prev = Prepared(_SEL_PREV, dialect)
        self._p_occurrence_ticket = Prepared(_SEL_OCCURRENCE, dialect)
        self._p_attach = Prepared(_UPD_ATTACH, dialect)
        self._p_reopen = Prepared(_UPD_REOPEN, dialect)
        self._p_resolve_by_alert = Prepared(_UPD_RESOLVE_BY_ALERT, dialect)
        self._p_fault_count = Prepared(_SEL_FAULT_COUNT, dialect)
        self._p_fault_problem = Prepared(_UPD_FAULT_PROBLEM, dialect)
        self._p_open_problem = Prepared(_SEL_OPEN_PROBLEM, dialect)
        self._p_ticket = insert(tickets, _INCIDENT_KEYS)
        self._p_audit = insert(
            audit, ("at", "actor", "action", "object_type", "object_id", "detail")
        )
        self._p_outbox = insert(outbox, _OUTBOX_KEYS)
        self._p_ack_link = insert(ack_links, ("token_hash", "ticket_id", "contact", "expires_at"))
        self._p_link = Prepared(_LINK_OCCURRENCE, dialect)
        self._p_count = Prepared(_UPD_COUNT, dialect)
        self._p_count_init = insert(settings, ("name", "value"), True)
        self._p_occurrences = PreparedIn(
            lambda n: sa.select(
                occurrences.c.id,
                occurrences.c.fingerprint,
                occurrences.c.starts_at,
                occurrences.c.ticket_id,
            ).where(occurrences.c.fingerprint.in_([sa.bindparam(f"fp{i}") for i in range(n)])),
            dialect,
        )
        self._p_incident_fps = PreparedIn(
            lambda n: (
                sa.select(tickets.c.fingerprint)
                .where(
                    tickets.c.fingerprint.in_([sa.bindparam(f"fp{i}") for i in range(n)]),
                    tickets.c.kind == "incident",
                )
                .distinct()
            ),
            dialect,
        )

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        """SQLite: queue writers on a lock that wakes them at once (threads, then processes:
        gunicorn workers and the notice worker), instead of SQLite's sleeping busy handler."""
        if self._lock_path is None:
            yield
            return
        with self._thread_lock, open(self._lock_path, "a", opener=_private_opener) as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- plumbing ---------------------------------------------------------------------------
    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        logging.getLogger("alembic").setLevel(logging.WARNING)  # before its import logs
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with self._begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        self.check_text()

    def check_text(self) -> None:
        """MySQL: raise :class:`StoreCannotHoldText` unless the connection and every text
        column of the webhook's tables are utf8mb4 (the migration makes them so; a table
        restored from a latin1 dump is not)."""
        if self._sqlite:
            return
        with self._read() as conn:
            database, charset = conn.execute(
                sa.text("SELECT DATABASE(), @@character_set_connection")
            ).one()
            rows = conn.execute(
                sa.text(
                    "SELECT TABLE_NAME, COLUMN_NAME, CHARACTER_SET_NAME"
                    " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
                    " AND CHARACTER_SET_NAME IS NOT NULL AND CHARACTER_SET_NAME <> 'utf8mb4'"
                    " ORDER BY TABLE_NAME, ORDINAL_POSITION"
                )
            ).all()
        bad = [f"{t}.{c} ({cs})" for t, c, cs in rows if t in metadata.tables]
        url = self.engine.url
        where = f"database {database!r} on {url.host}:{url.port or 3306}"
        if charset != "utf8mb4":
            raise StoreCannotHoldText(
                f"{where}: the connection's character set is {charset}, not utf8mb4, so Chinese"
                " text cannot be stored; remove charset= from webhook.database"
            )
        if bad:
            tables = sorted({b.split(".", 1)[0] for b in bad})
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise StoreCannotHoldText(
                f"{where} cannot hold Chinese text: {shown} not utf8mb4; run ALTER TABLE"
                f" <table> CONVERT TO CHARACTER SET utf8mb4 for {', '.join(tables)}, or start"
                " on a new database created with CHARACTER SET utf8mb4"
            )

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A write transaction. The pooled connection is taken (and, on MySQL, pinged) before
        queueing for the write lock: the lock covers only the transaction itself."""
        try:
            with self.engine.connect() as conn:
                with self._write_lock(), conn.begin():
                    yield conn
        except _CONNECTION_ERRORS as exc:
            if _is_unavailable(exc):
                raise StoreUnavailable(str(exc.orig)) from exc
            raise

    @contextmanager
    def _write_txn(self, conn) -> Iterator[None]:
        """A write transaction on a pooled DB-API connection (from :meth:`_read_dbapi`), for
        the statements of :mod:`webhook.dbapi` (the alert path): the same write lock and
        ``BEGIN IMMEDIATE`` as :meth:`_begin`, without SQLAlchemy's per-transaction machinery.
        A connection that failed is invalidated, so the pool never hands it out again."""
        try:
            with self._write_lock():
                if self._sqlite:
                    conn.cursor().execute("BEGIN IMMEDIATE")
                try:
                    yield
                    conn.commit()
                except BaseException:
                    try:
                        conn.rollback()
                    except self._dbapi.Error:
                        # The connection is gone (the server closed it): the first error
                        # says why; the connection is invalidated below.
                        pass
                    raise
        except self._dbapi.Error as exc:
            conn.invalidate()
            raise DBAPIError.instance(None, None, exc, self._dbapi.Error) from exc
        except _CONNECTION_ERRORS:
            conn.invalidate()
            raise

    @contextmanager
    def _read_dbapi(self) -> Iterator[Any]:
        """A pooled DB-API connection. Used bare for a single read run without BEGIN (SQLite:
        one statement reads one snapshot; MySQL: the pool rolls back on return), and by
        :meth:`_write_txn` for write transactions."""
        try:  # the pool hands out the driver's own error when it can't connect
            conn = self.engine.raw_connection()
        except (
            *_CONNECTION_ERRORS,
            self._dbapi.OperationalError,
            self._dbapi.InterfaceError,
        ) as exc:
            raise StoreUnavailable(str(getattr(exc, "orig", exc))) from exc
        try:
            yield conn
        except _CONNECTION_ERRORS as exc:
            if _is_unavailable(exc):
                raise StoreUnavailable(str(exc.orig)) from exc
            raise
        finally:
            conn.close()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A read-only transaction: no write lock (WAL readers never wait for the writer)."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(sscp_readonly=True)
                with conn.begin():
                    yield conn
        except _CONNECTION_ERRORS as exc:
            if _is_unavailable(exc):
                raise StoreUnavailable(str(exc.orig)) from exc
            raise

    def checkpoint(self, backlog: int = 256, passes: int = 4) -> dict[str, int] | None:
        """SQLite: copy the WAL into the database file, so the WAL restarts from its beginning
        instead of growing. No-op on MySQL.

        Under steady writes a checkpoint run beside the writers never catches up (they append
        while it copies), so the WAL would only restart through the automatic checkpoint of a
        committing request, which copies everything since the last restart while holding the
        write lock: 100-300 ms stalls, measured. So: PASSIVE passes without the lock until at
        most ``backlog`` frames are left (or ``passes`` ran), then one pass under the write
        lock copies the rest; the next writer restarts the WAL. Returns the WAL's frames and
        the frames copied, as the last pass saw them."""
        if not self._sqlite:
            return None
        with self._read_dbapi() as conn:
            cur = conn.cursor()
            for _ in range(passes):
                _busy, frames, copied = cur.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if frames - copied <= backlog:
                    break
            with self._write_lock():
                _busy, frames, copied = cur.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            cur.close()
        return {"frames": frames, "copied": copied}

    def ping(self) -> None:
        with self._read() as conn:
            conn.execute(sa.text("SELECT 1"))

    def _audit_row(
        self, actor: str, action: str, kind: str, oid: int, at: dt.datetime | None = None, **detail
    ) -> dict:
        return {
            "at": at or self.clock(),
            "actor": actor,
            "action": action,
            "object_type": kind,
            "object_id": oid,
            "detail": _json(detail),
        }

    def _audit(self, conn: Connection, actor: str, action: str, kind: str, oid: int, **detail):
        self._p_audit.write(conn, self._audit_row(actor, action, kind, oid, **detail))

    def _ticket(self, conn, ticket_id: int) -> dict:
        row = self._p_ticket_by_id.first(conn, {"tid": ticket_id})
        if row is None:
            raise NotFound(f"ticket {ticket_id}")
        return row

    def _queue(self, conn: Connection, ticket: dict | None, notices: Sequence[Notice]) -> int:
        return self._queue_many(conn, [(ticket, notices)])

    def _queue_many(self, conn: Connection, pairs: Sequence[tuple[dict | None, Sequence[Notice]]]):
        """Write the notices of several ticket changes (multi-row inserts); returns how many."""
        now = self.clock()
        rows = []
        for ticket, notices in pairs:
            tid = ticket["id"] if ticket else None
            for n in notices:
                rows.append(
                    {
                        "ticket_id": tid,
                        "reason": n.reason,
                        "channel": n.channel,
                        "recipient": n.recipient,
                        "body": n.body,
                        "status": "pending",
                        "attempts": 0,
                        "created_at": now,
                        "next_attempt_at": now,
                        "ack_contact": n.ack_contact if tid is not None else None,
                    }
                )
        self._p_outbox.executemany(conn, rows)
        return len(rows)

    ack_link_ttl: float = 86400.0

    # -- alerts -----------------------------------------------------------------------------
    def ingest(
        self,
        ev: AlertEvent,
        planner: Planner = _no_notices,
        reopen_window: float = 3600.0,
        problem_at: int = 2,
        problem_window: float = 183 * 86400.0,
        is_fault: Callable[[str, str], bool] | None = None,
    ) -> IngestResult:
        """Apply one alert occurrence exactly once (see the module docstring)."""
        return self.ingest_many([ev], planner, reopen_window, problem_at, problem_window, is_fault)[
            0
        ]

    def ingest_many(
        self,
        events: Sequence[AlertEvent],
        planner: Planner = _no_notices,
        reopen_window: float = 3600.0,
        problem_at: int = 2,
        problem_window: float = 183 * 86400.0,
        is_fault: Callable[[str, str], bool] | None = None,
    ) -> list[IngestResult]:
        """Apply the alerts of one notification in ONE transaction.

        A problem record (问题管理) opens at the ``problem_at``-th occurrence of a fault
        (alertname + target) within ``problem_window`` seconds; only alerts that are faults
        (``is_fault(alertname, severity)``, the webhook's ``faults`` rule; default: every
        alert) count, so a reminder firing again opens none.

        Each firing occurrence claims its unique key with an insert that does nothing on
        conflict (a duplicate in flight in another transaction makes the insert wait for it);
        the rows this transaction inserted are the ones still without a ticket. First
        occurrences of a fingerprint (the common case) are filed with multi-row statements;
        recurrences, reopenings and resolutions go one by one.

        An error of the database that no retry helps (one no cut foresaw) must not keep the
        notification's other alerts from their tickets: the alerts are then filed one by one,
        each in its own transaction, and the first error is raised afterwards (500: the
        refused alert is retried and seen; the retry finds the others filed).
        """
        rule = ProblemRule(problem_at, problem_window, is_fault or _every_alert_a_fault)
        args = (planner, reopen_window, rule)
        events = [_fit_event(ev) for ev in events]
        try:
            return self._ingest_once(events, args)
        except DBAPIError as exc:
            if len(events) < 2:
                raise
            log.error(
                "notification refused, filing its alerts one by one",
                extra={"kv": {"alerts": len(events), "error": str(exc.orig)[:200]}},
            )
        results: list[IngestResult] = []
        failed: DBAPIError | None = None
        for ev in events:
            try:
                results += self._ingest_once([ev], args)
            except DBAPIError as exc:
                log.error(
                    "alert refused by the database",
                    extra={"kv": {"fingerprint": ev.fingerprint, "error": str(exc.orig)[:200]}},
                )
                failed = failed or exc
        if failed is not None:
            raise failed
        return results

    def _ingest_once(self, events: list[AlertEvent], args: tuple) -> list[IngestResult]:
        """:meth:`ingest_many` in one transaction (run again on a deadlock)."""
        # Built before taking the write lock: it only depends on the event.
        prepared = {
            i: self._incident_row(ev, None, None)
            for i, ev in enumerate(events)
            if ev.status == "firing"
        }
        try:
            with self._read_dbapi() as conn:
                if events and all(ev.status == "firing" for ev in events):
                    # A repeated notification (Alertmanager's retries, HA twins) whose
                    # occurrences are all filed already changes nothing: answer it from one
                    # read, without queueing for the write lock. Anything not yet filed goes
                    # the write path below, where the unique key decides.
                    taken = self._taken_occurrences(conn, events)
                    if len(taken) == len({(ev.fingerprint, ev.starts_at) for ev in events}):
                        return [
                            IngestResult("duplicate", taken[(e.fingerprint, e.starts_at)])
                            for e in events
                        ]
                with self._write_txn(conn):
                    return self._ingest_txn(conn, events, prepared, *args)
        except StoreUnavailable as exc:
            if _error_code(exc.__cause__) not in RETRY_CODES:
                raise
        # InnoDB chose this transaction as a deadlock victim (or its lock wait timed out):
        # run it again, as MySQL asks, on a fresh connection.
        for attempt in range(2, TXN_ATTEMPTS + 1):
            log.info("transaction retried", extra={"kv": {"attempt": attempt}})
            time.sleep(random.uniform(0.005, 0.03) * attempt)
            try:
                with self._read_dbapi() as conn, self._write_txn(conn):
                    return self._ingest_txn(conn, events, prepared, *args)
            except StoreUnavailable as exc:
                if attempt == TXN_ATTEMPTS or _error_code(exc.__cause__) not in RETRY_CODES:
                    raise
        raise AssertionError("unreachable")

    def _ingest_txn(
        self, conn, events, prepared, planner, reopen_window, rule
    ) -> list[IngestResult]:
        results: list[IngestResult | None] = [None] * len(events)
        firing = [i for i, ev in enumerate(events) if ev.status == "firing"]
        claimed, taken = self._claim_occurrences(conn, [events[i] for i in firing])
        fresh = self._fingerprints_without_incident(
            conn,
            {
                events[i].fingerprint
                for i in firing
                if (events[i].fingerprint, events[i].starts_at) in claimed
            },
        )
        counts: dict[str, int] = {}
        for i in firing:
            counts[events[i].fingerprint] = counts.get(events[i].fingerprint, 0) + 1
        batch = []
        for i in firing:
            ev = events[i]
            key = (ev.fingerprint, ev.starts_at)
            if key not in claimed:
                results[i] = IngestResult("duplicate", taken.get(key))
            elif ev.fingerprint in fresh and counts[ev.fingerprint] == 1:
                batch.append(i)
        now = self.clock()
        tickets_new = []
        for i in batch:
            row = prepared[i]
            row["created_at"] = now
            tickets_new.append(row)
        if tickets_new:
            self._insert_tickets(conn, tickets_new)
            for i, row in zip(batch, tickets_new, strict=True):
                results[i] = IngestResult("created", row["id"])
            self._p_link.executemany(
                conn,
                [
                    {"oid": claimed[(t["fingerprint"], t["starts_at"])], "tid": t["id"]}
                    for t in tickets_new
                ],
            )
            self._p_audit.executemany(
                conn,
                [
                    self._audit_row(
                        "alertmanager",
                        "create",
                        "ticket",
                        t["id"],
                        at=now,
                        fingerprint=t["fingerprint"],
                        starts_at=t["starts_at"],
                        recurrence_of=None,
                    )
                    for t in tickets_new
                ],
            )
            # each new incident is an occurrence of its fault: its problem record may open
            linked: set[tuple[str, str]] = set()
            checked: set[tuple[str, str]] = set()
            for i, row in zip(batch, tickets_new, strict=True):
                fault = (events[i].alertname, events[i].target)
                if fault in checked:
                    continue
                checked.add(fault)
                if self._maybe_open_problem(conn, events[i], row["id"], rule):
                    linked.add(fault)
            queued = [
                self._ticket(conn, t["id"]) if (events[i].alertname, events[i].target) in linked
                else t
                for i, t in zip(batch, tickets_new, strict=True)
            ]  # fmt: skip
            self._queue_many(conn, [(t, planner(t, "new")) for t in queued])
        for i, ev in enumerate(events):
            if results[i] is not None:
                continue
            if ev.status == "resolved":
                results[i] = self._ingest_resolved(conn, ev, planner)
            else:
                results[i] = self._ingest_firing(
                    conn,
                    ev,
                    claimed[(ev.fingerprint, ev.starts_at)],
                    planner,
                    reopen_window,
                    rule,
                )
        unknown = sum(
            1
            for ev, res in zip(events, results, strict=True)
            if ev.status == "firing" and res.outcome != "duplicate" and unknown_severity(ev.labels)
        )
        if unknown:
            self._count(conn, UNKNOWN_SEVERITY_SETTING, unknown)
        return results  # type: ignore[return-value]

    def _count(self, conn, name: str, n: int) -> None:
        """Add ``n`` to the counter kept in the setting ``name`` (created at 0 when missing)."""
        if self._p_count.write(conn, {"name": name, "n": n})[0] == 0:
            self._p_count_init.write(conn, {"name": name, "value": "0"})
            self._p_count.write(conn, {"name": name, "n": n})

    def _claim_occurrences(
        self, conn: Connection, events: Sequence[AlertEvent]
    ) -> tuple[dict[tuple, int], dict[tuple, int | None]]:
        """({key: occurrence id} claimed now, {key: ticket id} taken before), key = (fp, start).

        One insert per key that does nothing on conflict (SQLite ``ON CONFLICT DO NOTHING``,
        MySQL ``INSERT IGNORE``): a row count of 1 means this transaction claimed it; the keys
        taken before are read back only when there are some."""
        now = self.clock()
        claimed: dict[tuple, int] = {}
        lost: set[tuple] = set()
        for key in dict.fromkeys((ev.fingerprint, ev.starts_at) for ev in events):
            oid = self._claim(conn, *key, now)
            if oid is None:
                lost.add(key)
            else:
                claimed[key] = oid
        taken: dict[tuple, int | None] = {}
        if lost:
            fps = sorted({fp for fp, _ in lost})
            for _oid, fp, start, tid in self._p_occurrences.rows(conn, "fp", fps):
                if (fp, start) in lost:
                    taken[(fp, start)] = tid
        return claimed, taken

    def _taken_occurrences(self, conn, events: Sequence[AlertEvent]) -> dict[tuple, int]:
        """{key: ticket id} of the events' occurrences already filed with a ticket (committed;
        one statement outside any transaction)."""
        wanted = {(ev.fingerprint, ev.starts_at) for ev in events}
        rows = self._p_occurrences.rows(conn, "fp", sorted({fp for fp, _ in wanted}))
        return {
            (fp, start): tid
            for _oid, fp, start, tid in rows
            if tid is not None and (fp, start) in wanted
        }

    def _insert_tickets(self, conn: Connection, rows: list[dict]) -> None:
        """Insert new incident tickets and set each row's ``id``."""
        for row in rows:
            row["id"] = self._p_ticket.write(conn, row)[1]

    def _fingerprints_without_incident(self, conn: Connection, fps: set[str]) -> set[str]:
        if not fps:
            return set()
        return fps - {fp for (fp,) in self._p_incident_fps.rows(conn, "fp", sorted(fps))}

    @staticmethod
    def _incident_row(ev: AlertEvent, now: dt.datetime, recurrence_of: int | None) -> dict:
        return {
            "kind": "incident",
            "status": "open",
            "alertname": ev.alertname,
            "severity": ev.severity[:16],
            "target": ev.target,
            "summary": ev.summary,
            "description": ev.description,
            "labels": labels_json(ev.labels),
            "fingerprint": ev.fingerprint,
            "starts_at": ev.starts_at,
            "last_starts_at": ev.starts_at,
            "created_at": now,
            "recurrence_of": recurrence_of,
        }

    def _claim(self, conn, fp: str, starts_at: dt.datetime, now: dt.datetime) -> int | None:
        """The new occurrence's id, or None when (fingerprint, starts_at) is already taken."""
        changed, oid = self._p_claim.write(
            conn, {"fingerprint": fp, "starts_at": starts_at, "received_at": now}
        )
        return oid if changed == 1 else None

    def _occurrence_ticket(self, conn, ev: AlertEvent) -> int | None:
        return self._p_occurrence_ticket.scalar(conn, {"fp": ev.fingerprint, "sa_": ev.starts_at})

    def _ingest_firing(self, conn, ev, occ_id, planner, reopen_window, rule) -> IngestResult:
        now = self.clock()
        prev = self._p_prev.first(conn, {"fp": ev.fingerprint})
        if prev and prev["status"] in ("open", "acknowledged"):
            # Flapped without a resolved notification: the same incident continues.
            self._p_attach.write(conn, {"tid": prev["id"], "lsa": ev.starts_at})
            self._link(conn, occ_id, prev["id"])
            return IngestResult("attached", prev["id"])
        if (
            prev
            and prev["status"] == "resolved"
            and prev["resolved_at"] is not None
            and ev.starts_at - prev["resolved_at"] <= dt.timedelta(seconds=reopen_window)
        ):
            self._p_reopen.write(conn, {"tid": prev["id"], "lsa": ev.starts_at, "now": now})
            self._link(conn, occ_id, prev["id"])
            self._audit(
                conn, "alertmanager", "reopen", "ticket", prev["id"], starts_at=ev.starts_at
            )
            ticket = self._ticket(conn, prev["id"])
            self._queue(conn, ticket, planner(ticket, "reopened"))
            return IngestResult("reopened", prev["id"])
        ticket = self._incident_row(ev, now, prev["id"] if prev else None)
        self._insert_tickets(conn, [ticket])
        tid = ticket["id"]
        self._link(conn, occ_id, tid)
        self._audit(
            conn,
            "alertmanager",
            "create",
            "ticket",
            tid,
            fingerprint=ev.fingerprint,
            starts_at=ev.starts_at,
            recurrence_of=prev["id"] if prev else None,
        )
        # every new incident is an occurrence of its fault (alertname + target), whichever
        # series (fingerprint) it comes from: the report counts them the same way
        if self._maybe_open_problem(conn, ev, tid, rule):
            ticket = self._ticket(conn, tid)
        self._queue(conn, ticket, planner(ticket, "new"))
        return IngestResult("created", tid)

    def _link(self, conn, occ_id: int, ticket_id: int) -> None:
        self._p_link.write(conn, {"oid": occ_id, "tid": ticket_id})

    def _maybe_open_problem(self, conn, ev: AlertEvent, tid: int, rule: ProblemRule) -> bool:
        """Open (or join) the fault's problem record from its ``rule.at``-th occurrence in the
        window; True when the incidents were linked to one. Not for an alert that is no fault."""
        if not rule.is_fault(ev.alertname, ev.severity):
            return False
        fault = {
            "an": ev.alertname,
            "tg": ev.target,
            "since": self.clock() - dt.timedelta(seconds=rule.window),
        }
        count = self._p_fault_count.scalar(conn, fault)
        if count < rule.at:
            return False
        key = hashlib.sha256(f"{ev.alertname}\x00{ev.target}".encode()).hexdigest()
        pid = self._p_open_problem.scalar(conn, {"key": key})
        if pid is None:
            # At most one open problem per fault: the unique open_key decides between
            # concurrent transactions (the loser's insert does nothing and reads the winner's).
            created, new_id = self._p_problem.write(
                conn,
                {
                    "alertname": ev.alertname[:200],
                    "target": ev.target[:255],
                    "status": "open",
                    "title": f"{ev.alertname} @ {ev.target} 半年内发生 {count} 次"[:500],
                    "created_at": self.clock(),
                    "open_key": key,
                },
            )
            if created == 1:
                pid = new_id
                self._audit(conn, "system", "create", "problem", pid, occurrences=count)
            else:
                pid = self._p_open_problem.scalar(conn, {"key": key})
        self._p_fault_problem.write(conn, {**fault, "pid": pid})
        return True

    def _ingest_resolved(self, conn, ev: AlertEvent, planner: Planner) -> IngestResult:
        resolved_at = ev.ends_at or self.clock()
        tid = self._occurrence_ticket(conn, ev)
        if tid is None:
            # Never saw it fire (the webhook was down and the firing notice lost): file the
            # occurrence as it was, then resolve it, without paging anyone.
            occ_id = self._claim(conn, ev.fingerprint, ev.starts_at, self.clock())
            if occ_id is None:
                return IngestResult("duplicate", self._occurrence_ticket(conn, ev))
            fired = dataclasses.replace(ev, status="firing", ends_at=None)
            tid = self._ingest_firing(conn, fired, occ_id, _no_notices, 0.0, NO_PROBLEMS).ticket_id
        changed, _ = self._p_resolve_by_alert.write(
            conn, {"tid": tid, "lsa": ev.starts_at, "rat": resolved_at}
        )
        if changed != 1:
            return IngestResult("duplicate", tid)
        self._audit(conn, "alertmanager", "resolve", "ticket", tid, ends_at=resolved_at)
        ticket = self._ticket(conn, tid)
        self._queue(conn, ticket, planner(ticket, "resolved"))
        return IngestResult("resolved", tid)

    # -- reading ----------------------------------------------------------------------------
    def list_tickets(
        self,
        status: Sequence[str] = (),
        kind: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict]:
        q = sa.select(tickets).order_by(tickets.c.id.desc()).limit(limit).offset(offset)
        if status:
            q = q.where(tickets.c.status.in_(tuple(status)))
        if kind:
            q = q.where(tickets.c.kind == kind)
        if since:
            q = q.where(tickets.c.created_at >= since)
        if until:
            q = q.where(tickets.c.created_at < until)
        with self._read() as conn:
            return [_row(r) for r in conn.execute(q)]

    def get_ticket(self, ticket_id: int) -> dict:
        with self._read() as conn:
            t = self._ticket(conn, ticket_id)
            t["comments"] = [
                _row(r)
                for r in conn.execute(
                    sa.select(comments)
                    .where(comments.c.ticket_id == ticket_id)
                    .order_by(comments.c.id)
                )
            ]
            t["audit"] = [
                _row(r)
                for r in conn.execute(
                    sa.select(audit)
                    .where(audit.c.object_type == "ticket", audit.c.object_id == ticket_id)
                    .order_by(audit.c.id)
                )
            ]
            return t

    def count_tickets(self) -> int:
        with self._read() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(tickets)).scalar()

    def outbox_rows(self, ticket_id: int | None = None) -> list[dict]:
        q = sa.select(outbox).order_by(outbox.c.id)
        if ticket_id is not None:
            q = q.where(outbox.c.ticket_id == ticket_id)
        with self._read() as conn:
            return [_row(r) for r in conn.execute(q)]

    def audit_rows(self, object_type: str | None = None) -> list[dict]:
        q = sa.select(audit).order_by(audit.c.id)
        if object_type:
            q = q.where(audit.c.object_type == object_type)
        with self._read() as conn:
            return [_row(r) for r in conn.execute(q)]

    # -- ticket actions ---------------------------------------------------------------------
    _ALLOWED = {
        "ack": ("open",),
        "resolve": ("open", "acknowledged"),
        "close": ("resolved",),
        "reopen": ("resolved", "closed"),
    }

    def transition(
        self,
        ticket_id: int,
        action: str,
        actor: str,
        note: str = "",
        assignee: str | None = None,
        planner: Planner = _no_notices,
    ) -> dict:
        now = self.clock()
        values: dict[str, Any] = {
            "ack": {"status": "acknowledged", "acknowledged_at": now},
            "resolve": {
                "status": "resolved",
                "resolved_at": now,
                "resolution_source": "manual",
                "resolution_note": note or None,
            },
            "close": {"status": "closed", "closed_at": now},
            # The response clock of a reopened fault starts at the reopen (it may escalate
            # again, measured from the reopen).
            "reopen": {
                "status": "open",
                "resolved_at": None,
                "closed_at": None,
                "response_from": now,
                "escalated_at": None,
            },
        }[action]
        if action == "ack":
            values["assignee"] = (assignee or actor)[:64]
        with self._begin() as conn:
            current = self._ticket(conn, ticket_id)
            res = conn.execute(
                tickets.update()
                .where(tickets.c.id == ticket_id, tickets.c.status.in_(self._ALLOWED[action]))
                .values(**values)
            )
            if res.rowcount != 1:
                raise Conflict(f"cannot {action} a ticket that is {current['status']}")
            # An ack after a reopen is the response of the reopened episode (acknowledged_at
            # then holds it; the first acknowledgement stays in the audit trail).
            self._audit(
                conn, actor, action, "ticket", ticket_id, status_from=current["status"], note=note
            )
            if note and action != "resolve":
                self._comment(conn, ticket_id, actor, note)
            ticket = self._ticket(conn, ticket_id)
            self._queue(conn, ticket, planner(ticket, action))
            return ticket

    def _comment(self, conn: Connection, ticket_id: int, actor: str, body: str) -> int:
        return conn.execute(
            comments.insert().values(
                ticket_id=ticket_id, author=actor[:64], body=body, created_at=self.clock()
            )
        ).inserted_primary_key[0]

    def add_comment(self, ticket_id: int, actor: str, body: str) -> dict:
        with self._begin() as conn:
            self._ticket(conn, ticket_id)
            cid = self._comment(conn, ticket_id, actor, body)
            self._audit(conn, actor, "comment", "ticket", ticket_id, comment_id=cid)
            return _row(conn.execute(sa.select(comments).where(comments.c.id == cid)).one())

    def use_ack_link(self, token: str) -> dict:
        """Acknowledge through a link from an SMS: single-use and expiring."""
        now = self.clock()
        with self._begin() as conn:
            res = conn.execute(
                ack_links.update()
                .where(
                    ack_links.c.token_hash == hash_token(token),
                    ack_links.c.used_at.is_(None),
                    ack_links.c.expires_at > now,
                )
                .values(used_at=now)
            )
            if res.rowcount != 1:
                raise NotFound("acknowledge link unknown, used or expired")
            link = _row(
                conn.execute(
                    sa.select(ack_links).where(ack_links.c.token_hash == hash_token(token))
                ).one()
            )
        actor = f"sms:{link['contact']}"
        try:
            return self.transition(link["ticket_id"], "ack", actor, assignee=link["contact"])
        except Conflict:
            return self.get_ticket(link["ticket_id"])

    def ack_link_ticket(self, token: str) -> int | None:
        with self._read() as conn:
            return conn.execute(
                sa.select(ack_links.c.ticket_id).where(
                    ack_links.c.token_hash == hash_token(token),
                    ack_links.c.used_at.is_(None),
                    ack_links.c.expires_at > self.clock(),
                )
            ).scalar()

    # -- vulnerabilities --------------------------------------------------------------------
    # ``starts_at`` is when a finding was first found, ``last_starts_at`` when it was found
    # (again, after a reopen) for the current episode; the fix deadline ``due_at`` runs from
    # ``last_starts_at`` (sscp_ops.vulns.due_at: high 48 h, medium 7 d, low 30 d).
    _SEVERITY = {"high": "critical", "medium": "warning", "low": "info"}

    def upsert_vulnerability(
        self, external_key: str, fields: dict, actor: str
    ) -> tuple[dict, bool]:
        """File or update a vulnerability ticket keyed by the importer's ``external_key``.

        A new ticket needs ``risk`` (and ``title``); ``found_at`` defaults to now. On an
        existing ticket only the fields given change; a new ``risk`` moves the deadline, and
        ``found_at`` corrects when it was found (the current episode's start as well, unless
        the ticket has been reopened since)."""
        now = self.clock()
        values: dict[str, Any] = {}
        if "risk" in fields:
            values["risk"] = fields["risk"]
            values["severity"] = self._SEVERITY[fields["risk"]]
        for key, column, limit in (
            ("target", "target", 255),
            ("title", "summary", 500),
            ("name", "alertname", 200),
            ("description", "description", None),
        ):
            if key in fields:
                value = fields[key]
                values[column] = fit_bytes(value) if limit is None else fit_chars(value, limit)
        if "labels" in fields:
            values["labels"] = labels_json(fields["labels"])
        with self._begin() as conn:
            existing = conn.execute(
                sa.select(tickets).where(tickets.c.external_key == external_key)
            ).first()
            if existing is None:
                found = fields.get("found_at") or now
                row = {
                    "target": "",
                    "summary": "",
                    "alertname": "vulnerability",
                    "description": "",
                    "labels": "{}",
                    **values,
                    "due_at": vuln_due_at(values["risk"], found),
                }
                try:
                    with conn.begin_nested():
                        tid = conn.execute(
                            tickets.insert().values(
                                kind="vulnerability",
                                status="open",
                                external_key=external_key,
                                starts_at=found,
                                last_starts_at=found,
                                created_at=now,
                                **row,
                            )
                        ).inserted_primary_key[0]
                    self._audit(conn, actor, "create", "ticket", tid, external_key=external_key)
                    return self._ticket(conn, tid), True
                except IntegrityError:
                    existing = conn.execute(
                        sa.select(tickets).where(tickets.c.external_key == external_key)
                    ).one()
            tid = existing.id
            episode = existing.last_starts_at or existing.starts_at
            if fields.get("found_at") is not None:
                values["starts_at"] = fields["found_at"]
                if existing.reopen_count == 0:
                    episode = values["last_starts_at"] = fields["found_at"]
            values["due_at"] = vuln_due_at(values.get("risk", existing.risk), episode)
            changed = {k: v for k, v in values.items() if existing._mapping[k] != v}
            if changed:
                conn.execute(tickets.update().where(tickets.c.id == tid).values(**changed))
                self._audit(conn, actor, "update", "ticket", tid, fields=sorted(changed))
            return self._ticket(conn, tid), False

    def set_vulnerability_status(
        self,
        ticket_id: int,
        status: str,
        actor: str,
        note: str = "",
        at: dt.datetime | None = None,
    ) -> dict:
        """Resolve, close or reopen a vulnerability ticket in one transaction.

        ``resolved`` / ``closed``: fixed at ``at`` (a re-scan's time: ``resolution_source``
        ``scan``) or now (``manual``); closing an open ticket resolves it first, at the same
        time. ``open``: reopen a resolved or closed ticket, found again at ``at`` (default now):
        a new episode with its own deadline. A fix before the current episode began, or a
        finding again before the fix, is a :class:`Conflict` that names the clash."""
        when = at or self.clock()
        with self._begin() as conn:
            t = self._ticket(conn, ticket_id)
            if t["kind"] != "vulnerability":
                raise Conflict(f"ticket {ticket_id} is not a vulnerability")
            was = t["status"]
            values: dict[str, Any]
            if status == "open":
                if was not in ("resolved", "closed"):
                    raise Conflict(f"cannot reopen a ticket that is {was}")
                fixed = t["resolved_at"] or t["closed_at"]
                if fixed is not None and when < fixed:
                    raise Conflict(
                        f"found_at {when.isoformat()} is before it was fixed ({fixed.isoformat()})"
                    )
                values = {
                    "status": "open",
                    "last_starts_at": when,
                    "due_at": vuln_due_at(t["risk"], when),
                    "resolved_at": None,
                    "closed_at": None,
                    "resolution_source": None,
                    "resolution_note": None,
                    "reopen_count": t["reopen_count"] + 1,
                }
                action = "reopen"
            else:
                allowed = ("open", "acknowledged") + (("resolved",) if status == "closed" else ())
                if was not in allowed:
                    raise Conflict(f"cannot set a {was} ticket to {status}")
                episode = t["last_starts_at"] or t["starts_at"]
                if at is not None and episode is not None and at < episode:
                    raise Conflict(
                        f"fixed_at {at.isoformat()} is before it was found ({episode.isoformat()})"
                    )
                values = {"status": status}
                if was in ("open", "acknowledged"):
                    values.update(
                        resolved_at=when,
                        resolution_source="scan" if at is not None else "manual",
                        resolution_note=note or None,
                    )
                if status == "closed":
                    values["closed_at"] = when
                action = "close" if status == "closed" else "resolve"
            conn.execute(
                tickets.update()
                .where(tickets.c.id == ticket_id, tickets.c.status == was)
                .values(**values)
            )
            self._audit(
                conn, actor, action, "ticket", ticket_id, status_from=was, at=when, note=note
            )
            if note:
                self._comment(conn, ticket_id, actor, note)
            return self._ticket(conn, ticket_id)

    def find_by_external_key(self, external_key: str) -> dict:
        with self._read() as conn:
            row = conn.execute(
                sa.select(tickets.c.id).where(tickets.c.external_key == external_key)
            ).scalar()
        if row is None:
            raise NotFound(f"vulnerability {external_key}")
        return self.get_ticket(row)

    # -- problems and changes ---------------------------------------------------------------
    def list_problems(self) -> list[dict]:
        with self._read() as conn:
            out = []
            for r in conn.execute(sa.select(problems).order_by(problems.c.id.desc())):
                p = _row(r)
                p.pop("open_key")
                p["incidents"] = list(
                    conn.execute(
                        sa.select(tickets.c.id)
                        .where(tickets.c.problem_id == p["id"])
                        .order_by(tickets.c.id)
                    ).scalars()
                )
                out.append(p)
            return out

    def update_problem(self, pid: int, fields: dict, actor: str) -> dict:
        with self._begin() as conn:
            if conn.execute(sa.select(problems.c.id).where(problems.c.id == pid)).first() is None:
                raise NotFound(f"problem {pid}")
            values = dict(fields)
            if values.get("status") == "closed":
                values["closed_at"] = self.clock()
                values["open_key"] = None
            conn.execute(problems.update().where(problems.c.id == pid).values(**values))
            self._audit(conn, actor, "update", "problem", pid, fields=sorted(fields))
        return next(p for p in self.list_problems() if p["id"] == pid)

    def _check_problem(self, conn: Connection, fields: dict) -> None:
        pid = fields.get("problem_id")
        if pid is None:
            return
        found = None
        if -(2**31) <= pid < 2**31:  # an INTEGER column
            found = conn.execute(sa.select(problems.c.id).where(problems.c.id == pid)).first()
        if found is None:
            raise Invalid("problem_id", f"no problem {pid}")

    def create_change(self, fields: dict, actor: str) -> dict:
        now = self.clock()
        with self._begin() as conn:
            self._check_problem(conn, fields)
            cid = conn.execute(
                changes.insert().values(created_at=now, updated_at=now, **fields)
            ).inserted_primary_key[0]
            self._audit(conn, actor, "create", "change", cid, fields=sorted(fields))
            return _row(conn.execute(sa.select(changes).where(changes.c.id == cid)).one())

    def update_change(self, cid: int, fields: dict, actor: str) -> dict:
        with self._begin() as conn:
            self._check_problem(conn, fields)
            res = conn.execute(
                changes.update()
                .where(changes.c.id == cid)
                .values(updated_at=self.clock(), **fields)
            )
            if res.rowcount != 1:
                raise NotFound(f"change {cid}")
            self._audit(conn, actor, "update", "change", cid, fields=sorted(fields))
            return _row(conn.execute(sa.select(changes).where(changes.c.id == cid)).one())

    def list_changes(self) -> list[dict]:
        with self._read() as conn:
            return [_row(r) for r in conn.execute(sa.select(changes).order_by(changes.c.id))]

    # -- tokens -----------------------------------------------------------------------------
    def create_token(self, role: str, name: str, actor: str = "cli") -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        token = "sscp_" + secrets.token_urlsafe(32)
        with self._begin() as conn:
            tid = conn.execute(
                api_tokens.insert().values(
                    name=name[:64], role=role, token_hash=hash_token(token), created_at=self.clock()
                )
            ).inserted_primary_key[0]
            self._audit(conn, actor, "create", "token", tid, role=role, name=name)
        return token

    def verify_token(self, token: str) -> TokenInfo | None:
        """Look the token up by its SHA-256 (an index lookup; the hash hides timing)."""
        if not token:
            return None
        digest = hash_token(token)
        with self._read() as conn:
            row = conn.execute(
                sa.select(api_tokens).where(
                    api_tokens.c.token_hash == digest, api_tokens.c.revoked_at.is_(None)
                )
            ).first()
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        now = self.clock()
        if row.last_used_at is None or now - row.last_used_at >= TOKEN_USE_RESOLUTION:
            # one write per token per resolution window, not one per request
            with self._begin() as conn:
                conn.execute(
                    api_tokens.update().where(api_tokens.c.id == row.id).values(last_used_at=now)
                )
        return TokenInfo(row.id, row.name, row.role)

    def list_tokens(self) -> list[dict]:
        """Every API token (never its hash), oldest first."""
        cols = [c for c in api_tokens.c if c.name != "token_hash"]
        with self._read() as conn:
            return [_row(r) for r in conn.execute(sa.select(*cols).order_by(api_tokens.c.id))]

    def revoke_token(self, ref: int | str, actor: str) -> dict:
        """Revoke the token with id ``ref`` (an int or a string of digits) or the one active
        token named ``ref``, and end its UI sessions. Raises NotFound (no such active token)
        or Invalid (a name several active tokens share: give the id)."""
        now = self.clock()
        with self._begin() as conn:
            active = api_tokens.c.revoked_at.is_(None)
            if isinstance(ref, int) or str(ref).isdigit():
                where = api_tokens.c.id == int(ref)
            else:
                where = (api_tokens.c.name == ref) & active
            rows = conn.execute(sa.select(api_tokens.c.id, api_tokens.c.revoked_at).where(where))
            rows = rows.all()
            if not rows:
                raise NotFound(f"no active token {ref!r}")
            if len(rows) > 1:
                ids = ", ".join(str(r.id) for r in rows)
                raise Invalid("token", f"{len(rows)} active tokens are named {ref!r} (ids {ids})")
            tid, revoked = rows[0]
            if revoked is None:
                conn.execute(
                    api_tokens.update().where(api_tokens.c.id == tid).values(revoked_at=now)
                )
                ended = conn.execute(ui_sessions.delete().where(ui_sessions.c.token_id == tid))
                self._audit(conn, actor, "revoke", "token", tid, sessions_ended=ended.rowcount)
            cols = [c for c in api_tokens.c if c.name != "token_hash"]
            return _row(conn.execute(sa.select(*cols).where(api_tokens.c.id == tid)).one())

    # -- UI sessions ------------------------------------------------------------------------
    def open_session(self, info: TokenInfo, lifetime: float, client: str) -> str:
        """A new UI session for ``info``'s token: returns the session id for the cookie (the
        store keeps only its hash), audited as a login."""
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        with self._begin() as conn:
            conn.execute(
                ui_sessions.insert().values(
                    id_hash=hash_token(sid),
                    token_id=info.id,
                    created_at=now,
                    expires_at=now + dt.timedelta(seconds=lifetime),
                )
            )
            conn.execute(ui_sessions.delete().where(ui_sessions.c.expires_at <= now))
            self._audit(conn, info.actor, "login", "token", info.id, client=client)
        return sid

    def session_token(self, sid: str) -> TokenInfo | None:
        """The token behind a live UI session: None when the session was ended (logout), has
        expired, or its token was revoked."""
        if not sid:
            return None
        with self._read() as conn:
            row = conn.execute(
                sa.select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.role)
                .select_from(ui_sessions.join(api_tokens))
                .where(
                    ui_sessions.c.id_hash == hash_token(sid),
                    ui_sessions.c.expires_at > self.clock(),
                    api_tokens.c.revoked_at.is_(None),
                )
            ).first()
        return TokenInfo(row.id, row.name, row.role) if row is not None else None

    def close_session(self, sid: str, actor: str, client: str) -> bool:
        """Logout: the session ends on the server (its cookie replayed later is refused)."""
        with self._begin() as conn:
            row = conn.execute(
                sa.select(ui_sessions.c.token_id).where(ui_sessions.c.id_hash == hash_token(sid))
            ).first()
            if row is None:
                return False
            conn.execute(ui_sessions.delete().where(ui_sessions.c.id_hash == hash_token(sid)))
            self._audit(conn, actor, "logout", "token", row.token_id, client=client)
        return True

    def login_failed(self, client: str) -> None:
        """Audit a refused UI login (the metric sscp_webhook_login_failures_total counts them)."""
        with self._begin() as conn:
            self._audit(conn, "anonymous", LOGIN_FAILED, "login", 0, client=client)

    def count_login_failures(self) -> int:
        with self._read() as conn:
            return conn.execute(
                sa.select(sa.func.count())
                .select_from(audit)
                .where(
                    audit.c.object_type == "login",
                    audit.c.object_id == 0,
                    audit.c.action == LOGIN_FAILED,
                )
            ).scalar_one()

    # -- rate limits (webhook.limits) -------------------------------------------------------
    def limit_incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add ``amount`` to the counter ``key`` (a new window of ``expiry`` seconds when it
        has none or it ran out); returns the count."""
        now = self.clock()
        with self._begin() as conn:
            row = conn.execute(
                sa.select(rate_limits.c.hits, rate_limits.c.expires_at)
                .where(rate_limits.c.key == key)
                .with_for_update()
            ).first()
            if row is not None and row.expires_at > now:
                hits = row.hits + amount
                conn.execute(rate_limits.update().where(rate_limits.c.key == key).values(hits=hits))
                return hits
            conn.execute(rate_limits.delete().where(rate_limits.c.expires_at <= now))
            conn.execute(
                rate_limits.insert().values(
                    key=key, hits=amount, expires_at=now + dt.timedelta(seconds=expiry)
                )
            )
            return amount

    def limit_get(self, key: str) -> tuple[int, dt.datetime | None]:
        """(count, window end) of the counter ``key``; (0, None) when it has none."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(rate_limits.c.hits, rate_limits.c.expires_at).where(
                    rate_limits.c.key == key, rate_limits.c.expires_at > self.clock()
                )
            ).first()
        return (row.hits, row.expires_at) if row is not None else (0, None)

    def limit_clear(self, key: str | None = None) -> int:
        with self._begin() as conn:
            stmt = rate_limits.delete()
            if key is not None:
                stmt = stmt.where(rate_limits.c.key == key)
            return conn.execute(stmt).rowcount

    # -- acknowledge links ------------------------------------------------------------------
    def mint_ack_links(self, links: Sequence[tuple[int, str]]) -> list[str]:
        """New acknowledge-link tokens for (ticket id, contact) pairs, valid ``ack_link_ttl``
        from now and single-use; only their hashes are stored."""
        now = self.clock()
        expires = now + dt.timedelta(seconds=self.ack_link_ttl)
        tokens = [secrets.token_urlsafe(12) for _ in links]
        rows = [
            {"token_hash": hash_token(t), "ticket_id": tid, "contact": contact[:64],
             "expires_at": expires}
            for t, (tid, contact) in zip(tokens, links, strict=True)
        ]  # fmt: skip
        if rows:
            with self._begin() as conn:
                self._p_ack_link.executemany(conn, rows)
        return tokens

    # -- outbox -----------------------------------------------------------------------------
    def claim_notices(
        self,
        limit: int = 20,
        lease: float = 60.0,
        channels: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
    ) -> list[dict]:
        """Take due notices for delivery (only ``channels`` when given, never ``exclude``).

        A claim expires after ``lease`` (a crashed worker's notices are taken again, with the
        same id, so the provider drops the duplicate) and carries a fresh ``claim_token``: only
        the claim that holds it renews, marks or defers the notice. An SMS is not claimed while
        another SMS to the same number is being sent under a live claim (by any worker), so
        the per-number limits see every send before the next one. The due rows are read with
        ``FOR UPDATE`` (MySQL), so two workers' claims of the same rows queue; SQLite
        serialises them with the write lock."""
        now = self.clock()
        token = secrets.token_hex(16)
        free = sa.or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now)
        due = outbox.c.status.in_(("pending", "sending")) & (outbox.c.next_attempt_at <= now)
        where = [due, free]
        if channels is not None:
            where.append(outbox.c.channel.in_(list(channels)))
        if exclude:
            where.append(outbox.c.channel.not_in(list(exclude)))
        claimed: list[dict] = []
        with self._read() as conn:  # the common case, nothing due: no write lock taken
            if conn.execute(sa.select(outbox.c.id).where(*where).limit(1)).first() is None:
                return claimed
        with self._begin() as conn:
            rows = conn.execute(
                sa.select(outbox.c.id, outbox.c.channel, outbox.c.recipient)
                .where(*where)
                .order_by(outbox.c.id)
                .limit(limit)
                .with_for_update()
            ).all()
            busy: set[str] = set()
            if any(channel == "sms" for _, channel, _ in rows):
                busy = set(
                    conn.execute(
                        sa.select(outbox.c.recipient).where(
                            outbox.c.channel == "sms",
                            outbox.c.status == "sending",
                            outbox.c.claimed_until >= now,
                        )
                    ).scalars()
                )
            for oid, channel, recipient in rows:
                if channel == "sms":  # one per number at a time: the rest may join a digest
                    if recipient in busy:
                        continue
                    busy.add(recipient)
                res = conn.execute(
                    outbox.update()
                    .where(outbox.c.id == oid, due, free)
                    .values(
                        status="sending",
                        claimed_until=now + dt.timedelta(seconds=lease),
                        claim_token=token,
                        attempts=outbox.c.attempts + 1,
                    )
                )
                if res.rowcount == 1:
                    claimed.append(
                        _row(conn.execute(sa.select(outbox).where(outbox.c.id == oid)).one())
                    )
        return claimed

    @staticmethod
    def _owned(notice: dict):
        """The notice's row while the claim that took it still holds it."""
        return (outbox.c.id == notice["id"]) & (outbox.c.claim_token == notice.get("claim_token"))

    def renew_claim(self, notice: dict, lease: float) -> bool:
        """Extend the claim on ``notice`` to ``lease`` seconds from now, right before it is
        sent; False when another claim took it since (its lease ran out): then do not send."""
        with self._begin() as conn:
            res = conn.execute(
                outbox.update()
                .where(self._owned(notice), outbox.c.status == "sending")
                .values(claimed_until=self.clock() + dt.timedelta(seconds=lease))
            )
        return res.rowcount == 1

    def sms_sent_times(self, phone: str, within: float) -> list[dt.datetime]:
        since = self.clock() - dt.timedelta(seconds=within)
        with self._read() as conn:
            return list(
                conn.execute(
                    sa.select(outbox.c.sent_at).where(
                        outbox.c.channel == "sms",
                        outbox.c.recipient == phone,
                        outbox.c.status == "sent",
                        outbox.c.sent_at >= since,
                    )
                ).scalars()
            )

    def merge_pending(self, notice: dict, fold: bool) -> list[dict]:
        """The notices merged into ``notice`` (a digest), oldest first. With ``fold``, first fold
        the other waiting SMS for the same number into it: only on the first attempt, so a
        digest never changes once it may have reached the provider under its id."""
        with self._begin() if fold else self._read() as conn:
            if fold:
                conn.execute(
                    outbox.update()
                    .where(
                        outbox.c.channel == notice["channel"],
                        outbox.c.recipient == notice["recipient"],
                        outbox.c.status == "pending",
                        outbox.c.id != notice["id"],
                        outbox.c.claimed_until.is_(None),
                    )
                    .values(status="merged", merged_into=notice["id"])
                )
            return [
                _row(r)
                for r in conn.execute(
                    sa.select(outbox)
                    .where(outbox.c.merged_into == notice["id"])
                    .order_by(outbox.c.id)
                )
            ]

    def defer_notice(self, notice: dict, until: dt.datetime) -> bool:
        """Give a claimed notice back until ``until`` (a rate limit), the attempt not counted."""
        with self._begin() as conn:
            res = conn.execute(
                outbox.update()
                .where(self._owned(notice))
                .values(
                    status="pending",
                    claimed_until=None,
                    claim_token=None,
                    next_attempt_at=until,
                    attempts=outbox.c.attempts - 1,
                )
            )
        return res.rowcount == 1

    def mark_sent(self, notice: dict) -> bool:
        """Record the delivery; False (nothing written) when the claim was lost meanwhile."""
        now = self.clock()
        with self._begin() as conn:
            res = conn.execute(
                outbox.update()
                .where(self._owned(notice))
                .values(
                    status="sent",
                    sent_at=now,
                    claimed_until=None,
                    claim_token=None,
                    last_error=None,
                )
            )
            if res.rowcount != 1:
                return False
            conn.execute(
                outbox.update().where(outbox.c.merged_into == notice["id"]).values(sent_at=now)
            )
            ids = {notice["ticket_id"]} | set(
                conn.execute(
                    sa.select(outbox.c.ticket_id).where(outbox.c.merged_into == notice["id"])
                ).scalars()
            )
            ids.discard(None)
            if ids:
                conn.execute(
                    tickets.update()
                    .where(tickets.c.id.in_(ids), tickets.c.notified_at.is_(None))
                    .values(notified_at=now)
                )
        return True

    def mark_retry(self, notice: dict, error: str, delay: float) -> bool:
        with self._begin() as conn:
            res = conn.execute(
                outbox.update()
                .where(self._owned(notice))
                .values(
                    status="pending",
                    claimed_until=None,
                    claim_token=None,
                    last_error=error[:500],
                    next_attempt_at=self.clock() + dt.timedelta(seconds=delay),
                )
            )
        return res.rowcount == 1

    def mark_failed(self, notice: dict, error: str) -> bool:
        with self._begin() as conn:
            res = conn.execute(
                outbox.update()
                .where(self._owned(notice))
                .values(
                    status="failed", claimed_until=None, claim_token=None, last_error=error[:500]
                )
            )
            if res.rowcount != 1:
                return False
            conn.execute(
                outbox.update()
                .where(outbox.c.merged_into == notice["id"])
                .values(status="failed", claimed_until=None, last_error=error[:500])
            )
        return True

    # -- jobs -------------------------------------------------------------------------------
    def escalate_due(
        self,
        after: float,
        planner: Planner,
        is_fault: Callable[[str, str], bool] = lambda alertname, severity: True,
    ) -> list[int]:
        """Open faults not acknowledged ``after`` seconds after their response clock started
        (creation, or the last reopen) and for which someone was paged (an SMS was queued):
        escalate once per episode. Reminders and alerts that page nobody never escalate."""
        cutoff = self.clock() - dt.timedelta(seconds=after)
        done = []
        paged = (
            sa.select(outbox.c.id)
            .where(outbox.c.ticket_id == tickets.c.id, outbox.c.channel == "sms")
            .exists()
        )
        with self._begin() as conn:
            rows = conn.execute(
                sa.select(tickets.c.id, tickets.c.alertname, tickets.c.severity).where(
                    tickets.c.kind == "incident",
                    tickets.c.status == "open",
                    tickets.c.escalated_at.is_(None),
                    sa.func.coalesce(tickets.c.response_from, tickets.c.created_at) <= cutoff,
                    paged,
                )
            ).all()
            ids = [tid for tid, alertname, severity in rows if is_fault(alertname, severity)]
            for tid in ids:
                res = conn.execute(
                    tickets.update()
                    .where(tickets.c.id == tid, tickets.c.escalated_at.is_(None))
                    .values(escalated_at=self.clock())
                )
                if res.rowcount == 1:
                    self._audit(conn, "system", "escalate", "ticket", tid, after_seconds=after)
                    ticket = self._ticket(conn, tid)
                    self._queue(conn, ticket, planner(ticket, "escalation"))
                    done.append(tid)
        return done

    def queue_once(self, setting: str, value: str, notices: Sequence[Notice]) -> bool:
        """Queue ``notices`` unless ``setting`` already equals ``value`` (one notice per event)."""
        with self._begin() as conn:
            current = conn.execute(
                sa.select(settings.c.value).where(settings.c.name == setting)
            ).scalar()
            if current == value:
                return False
            self._set_setting(conn, setting, value)
            self._queue(conn, None, notices)
            self._audit(conn, "system", "notice", "setting", 0, setting=setting, value=value)
            return True

    def reconcile(self, active: set[str], grace: float) -> list[int]:
        """Resolve open incidents whose alert Alertmanager no longer has (silenced ones never
        send "resolved"); marked ``resolution_source = reconcile``."""
        cutoff = self.clock() - dt.timedelta(seconds=grace)
        active = {fit_key(fp) for fp in active}  # as the tickets hold them
        done = []
        with self._begin() as conn:
            rows = conn.execute(
                sa.select(tickets.c.id, tickets.c.fingerprint).where(
                    tickets.c.kind == "incident",
                    tickets.c.status.in_(("open", "acknowledged")),
                    tickets.c.created_at <= cutoff,
                )
            ).all()
            for tid, fp in rows:
                # A group's ticket (incident_per: group) and a group's count of alerts not
                # listed are no alerts of Alertmanager's: the group's own notifications
                # resolve them.
                if fp in active or (fp or "").startswith((TRUNCATION_PREFIX, GROUP_PREFIX)):
                    continue
                res = conn.execute(
                    tickets.update()
                    .where(tickets.c.id == tid, tickets.c.status.in_(("open", "acknowledged")))
                    .values(
                        status="resolved", resolved_at=self.clock(), resolution_source="reconcile"
                    )
                )
                if res.rowcount == 1:
                    self._audit(conn, "system", "resolve", "ticket", tid, source="reconcile")
                    done.append(tid)
        return done

    # -- settings ---------------------------------------------------------------------------
    def get_setting(self, name: str) -> str | None:
        with self._read() as conn:
            return conn.execute(sa.select(settings.c.value).where(settings.c.name == name)).scalar()

    def set_setting(self, name: str, value: str) -> None:
        with self._begin() as conn:
            self._set_setting(conn, name, value)

    def _set_setting(self, conn: Connection, name: str, value: str) -> None:
        res = conn.execute(settings.update().where(settings.c.name == name).values(value=value))
        if res.rowcount == 0:
            try:
                with conn.begin_nested():
                    conn.execute(settings.insert().values(name=name, value=value))
            except IntegrityError:
                conn.execute(settings.update().where(settings.c.name == name).values(value=value))

    def setting_once(self, name: str, make: Callable[[], str]) -> str:
        """The value of ``name``, created with ``make()`` by whoever comes first."""
        value = self.get_setting(name)
        if value is not None:
            return value
        try:
            with self._begin() as conn:
                conn.execute(settings.insert().values(name=name, value=make()))
        except IntegrityError:
            pass
        return self.get_setting(name) or ""


def _error_code(exc: BaseException | None) -> int | None:
    """The driver's numeric error code (MySQL) behind a SQLAlchemy error, if any."""
    orig = getattr(exc, "orig", None)
    code = orig.args[0] if getattr(orig, "args", None) else None
    return code if isinstance(code, int) else None


#: MySQL error codes after which a retry can succeed: the server gone or unreachable
#: (2002/2003/2006/2013), too many connections (1040), lock wait / deadlock (1205/1213), and
#: out of space or read-only (1021 disk full, 1114 table full, 1030 storage engine error such
#: as errno 28, 1290/1836 read-only): the alert must be retried, never dropped.
_RETRYABLE_CODES = frozenset(
    (2002, 2003, 2006, 2013, 1040, 1205, 1213, 1021, 1114, 1030, 1290, 1836)
)
#: SQLite's words for the same: locked, cannot open, I/O error, disk full, read-only.
_RETRYABLE_WORDS = ("locked", "unable to open", "disk i/o", "is full", "readonly", "read-only")


def _is_unavailable(exc: OperationalError | InterfaceError) -> bool:
    """Failures a retry can cure (the server gone or the connection it closed, a lock, a full
    or read-only store), as opposed to a bad statement or bad data."""
    if isinstance(exc, InterfaceError):  # PyMySQL's (0, ""): no socket any more
        return _error_code(exc) is not None
    code = _error_code(exc)
    if code is not None:
        return code in _RETRYABLE_CODES
    text = str(exc.orig).lower()
    return any(word in text for word in _RETRYABLE_WORDS)
