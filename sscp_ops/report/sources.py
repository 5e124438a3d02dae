"""Where the report's records come from: one small protocol per source, one implementation each.

- :class:`PrometheusSource` -> :class:`HttpPrometheus` (HTTP API ``query_range``).
- :class:`TicketSource` -> :class:`HttpTicketSource` (the webhook's ``GET /api/v1/tickets``).
- :class:`BackupSource` -> :class:`SqliteBackupCatalogue` (the backup catalogue).
- :class:`EventSource` -> :class:`CommandEventSource` (``sscp-ops logs events --format json``).

The computations never see these classes, only the records in :mod:`.records`.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import requests

from sscp_ops.report.records import BackupRun, SecurityEvent, Series, Ticket

log = logging.getLogger("report")


class SourceError(RuntimeError):
    """A source could not be read; the report shows that section as missing."""


class PrometheusSource(Protocol):
    def query_range(self, query: str, start: float, end: float, step: int) -> list[Series]: ...

    def query(self, query: str, at: float) -> list[tuple[dict[str, str], float]]: ...


class TicketSource(Protocol):
    def tickets(self, since: datetime, until: datetime) -> list[Ticket]: ...


class BackupSource(Protocol):
    def runs(self, since: datetime, until: datetime) -> list[BackupRun]: ...


class EventSource(Protocol):
    def events(self, since: datetime, until: datetime) -> list[SecurityEvent]: ...


#: Prometheus refuses more than 11,000 points per series in one query_range.
MAX_POINTS = 10_000


class HttpPrometheus:
    """``/api/v1/query_range`` in chunks of at most :data:`MAX_POINTS` steps, merged by series."""

    def __init__(self, url: str, session: requests.Session | None = None, timeout: float = 60):
        self.url = url.rstrip("/")
        self.session = session or requests.Session()
        self.timeout = timeout

    def query_range(self, query: str, start: float, end: float, step: int) -> list[Series]:
        """Points at ``start, start+step, ...`` strictly before ``end``."""
        merged: dict[tuple, Series] = {}
        last = end - step
        chunk = MAX_POINTS * step
        lo = start
        while lo <= last:
            hi = min(lo + chunk - step, last)
            for item in self._get(query, lo, hi, step):
                key = tuple(sorted(item["metric"].items()))
                series = merged.setdefault(key, Series(dict(item["metric"]), []))
                series.points.extend((float(t), float(v)) for t, v in item["values"])
            lo = hi + step
        return list(merged.values())

    def query(self, query: str, at: float) -> list[tuple[dict[str, str], float]]:
        """An instant vector at ``at``: (labels, value) per series."""
        result = self._call("query", {"query": query, "time": f"{at:.3f}"})
        return [(dict(item["metric"]), float(item["value"][1])) for item in result]

    def _get(self, query: str, start: float, end: float, step: int) -> list[dict]:
        params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step)}
        return self._call("query_range", params)

    def _call(self, endpoint: str, params: dict) -> list[dict]:
        try:
            resp = self.session.get(
                f"{self.url}/api/v1/{endpoint}", params=params, timeout=self.timeout
            )
            body = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise SourceError(f"prometheus {self.url}: {exc}") from None
        if resp.status_code != 200 or body.get("status") != "success":
            raise SourceError(f"prometheus {self.url}: {body.get('error', resp.status_code)}")
        return body["data"]["result"]


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (``Z`` or offset; naive taken as UTC) or unix seconds -> aware datetime."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ticket_from_json(item: dict) -> Ticket:
    """One ticket of the webhook's API; unknown fields are ignored."""
    created = parse_time(item.get("created") or item.get("created_at"))
    if created is None:
        raise SourceError(f"ticket {item.get('id')!r} has no created time")
    return Ticket(
        id=str(item["id"]),
        kind=str(item.get("kind", "incident")),
        created=created,
        alertname=str(item.get("alertname") or ""),
        severity=str(item.get("severity") or ""),
        target=str(item.get("target") or ""),
        status=str(item.get("status") or ""),
        fired=parse_time(item.get("fired") or item.get("fired_at")),
        acknowledged=parse_time(item.get("acknowledged") or item.get("acknowledged_at")),
        resolved=parse_time(item.get("resolved") or item.get("resolved_at")),
        closed=parse_time(item.get("closed") or item.get("closed_at")),
        recurrence_of=(str(item["recurrence_of"]) if item.get("recurrence_of") else None),
        problem_id=(str(item["problem_id"]) if item.get("problem_id") else None),
        risk=item.get("risk"),
        due_at=parse_time(item.get("due_at")),
        title=str(item.get("title") or item.get("summary") or ""),
    )


class HttpTicketSource:
    """The webhook's ticket API. Accepts a JSON list or ``{"tickets": [...], "next": url}``."""

    def __init__(
        self,
        url: str,
        token: str | None,
        timeout: float = 30,
        session: requests.Session | None = None,
    ):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = session or requests.Session()

    def tickets(self, since: datetime, until: datetime) -> list[Ticket]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        url: str | None = f"{self.url}/api/v1/tickets"
        params: dict | None = {"since": since.isoformat(), "until": until.isoformat()}
        out: list[Ticket] = []
        while url:
            try:
                resp = self.session.get(url, params=params, headers=headers, timeout=self.timeout)
                resp.raise_for_status()
                body = resp.json()
            except (requests.RequestException, ValueError) as exc:
                raise SourceError(f"tickets {self.url}: {exc}") from None
            items = body if isinstance(body, list) else body.get("tickets", body.get("items", []))
            out.extend(ticket_from_json(item) for item in items)
            url = body.get("next") if isinstance(body, dict) else None
            params = None
        return out


class SqliteBackupCatalogue:
    """The backup catalogue: one row per run. The query's columns, in order, are job, kind,
    started, finished, status (``success``/``ok``/1 is success), detail."""

    QUERY = (
        "SELECT job, kind, started_at, finished_at, status, COALESCE(detail, '') FROM runs "
        "WHERE started_at >= ? AND started_at < ? ORDER BY started_at"
    )

    def __init__(self, path: Path, query: str = QUERY):
        self.path = path
        self.query = query

    def runs(self, since: datetime, until: datetime) -> list[BackupRun]:
        if not self.path.exists():
            raise SourceError(f"backup catalogue {self.path} not found")
        try:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                rows = con.execute(
                    self.query,
                    (since.astimezone(UTC).isoformat(), until.astimezone(UTC).isoformat()),
                ).fetchall()
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise SourceError(f"backup catalogue {self.path}: {exc}") from None
        out = []
        for job, kind, started, finished, status, detail in rows:
            out.append(
                BackupRun(
                    job=str(job),
                    kind=str(kind),
                    started=parse_time(started),  # type: ignore[arg-type]
                    finished=parse_time(finished),
                    success=str(status).lower() in ("success", "ok", "1", "true"),
                    detail=str(detail),
                )
            )
        return out


def event_from_json(item: dict) -> SecurityEvent:
    moment = parse_time(item.get("time") or item.get("ts") or item.get("timestamp"))
    if moment is None:
        raise SourceError(f"security event without a time: {sorted(item)}")
    return SecurityEvent(
        time=moment,
        kind=str(item.get("kind") or item.get("type") or item.get("category") or "other"),
        source=str(item.get("source") or item.get("src_ip") or item.get("ip") or ""),
        detail=str(item.get("detail") or item.get("message") or ""),
    )


class CommandEventSource:
    """Runs ``COMMAND --since S --until U --format json``: a JSON array or one object a line."""

    def __init__(self, command: Sequence[str], timeout: float = 300):
        self.command = list(command)
        self.timeout = timeout

    def events(self, since: datetime, until: datetime) -> list[SecurityEvent]:
        cmd = [
            *self.command,
            "--since",
            since.isoformat(),
            "--until",
            until.isoformat(),
            "--format",
            "json",
        ]
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=self.timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SourceError(f"security events: {exc}") from None
        if done.returncode != 0:
            raise SourceError(f"security events: exit {done.returncode}: {done.stderr[-300:]}")
        text = done.stdout.strip()
        if not text:
            return []
        try:
            items = (
                json.loads(text)
                if text.startswith("[")
                else [json.loads(line) for line in text.splitlines() if line.strip()]
            )
        except ValueError as exc:
            raise SourceError(f"security events: not JSON: {exc}") from None
        return [event_from_json(item) for item in items]


def steps_for(seconds: float, max_points: int = 2000, minimum: int = 300) -> int:
    """A chart step: at least ``minimum`` seconds, at most ``max_points`` points, divides 3600
    or is a whole number of hours."""
    step = max(minimum, math.ceil(seconds / max_points))
    if step <= 3600:
        return next(s for s in (300, 600, 900, 1200, 1800, 3600) if s >= step)
    return math.ceil(step / 3600) * 3600
