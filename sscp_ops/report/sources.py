"""Where the report's records come from: one small protocol per source, one implementation each.

- :class:`PrometheusSource` -> :class:`HttpPrometheus` (HTTP API ``query_range``).
- :class:`TicketSource` -> :class:`HttpTicketSource` (the webhook's ``GET /api/v1/tickets``).
- :class:`BackupSource` -> :class:`SqliteBackupCatalogue` (the backup catalogue).
- :class:`EventSource` -> :class:`StoreEventSource` (the event store, read in process) or
  :class:`CommandEventSource` (a configured command printing the events as JSON).

The computations never see these classes, only the records in :mod:`.records`.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import subprocess
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import requests

from sscp_ops.report.records import BackupRun, SecurityEvent, Series, Ticket
from sscp_ops.ticket_api import TicketApi, TicketApiError

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


def _id(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def ticket_from_json(item: dict) -> Ticket:
    """One ticket of ``GET /api/v1/tickets`` (docs/api.md: ``*_at`` fields in UTC ISO 8601,
    ids as integers); fields the report does not use are ignored."""
    created = parse_time(item.get("created_at"))
    if created is None:
        raise SourceError(f"ticket {item.get('id')!r} has no created_at")
    return Ticket(
        id=str(item["id"]),
        kind=str(item["kind"]),
        created=created,
        alertname=str(item.get("alertname") or ""),
        severity=str(item.get("severity") or ""),
        target=str(item.get("target") or ""),
        status=str(item.get("status") or ""),
        fired=parse_time(item.get("starts_at")),
        acknowledged=parse_time(item.get("acknowledged_at")),
        resolved=parse_time(item.get("resolved_at")),
        closed=parse_time(item.get("closed_at")),
        recurrence_of=_id(item.get("recurrence_of")),
        problem_id=_id(item.get("problem_id")),
        risk=item.get("risk"),
        due_at=parse_time(item.get("due_at")),
        title=str(item.get("summary") or ""),
        found=parse_time(item.get("last_starts_at")),
        fault=bool(item.get("fault", True)),
        response_from=parse_time(item.get("response_from")),
    )


class HttpTicketSource:
    """The webhook's ``GET /api/v1/tickets`` (``{"tickets": [...], "limit", "offset"}``),
    paged with ``limit``/``offset`` until a short page.

    Incidents are asked for by ``created_at`` in [since, until). Vulnerabilities are asked for
    with ``until`` only: one found long ago may still be open, or be fixed, in the period.
    """

    PAGE = 1000  # the API's maximum ``limit``

    def __init__(
        self,
        url: str,
        token: str | None,
        timeout: float = 30,
        session: requests.Session | None = None,
    ):
        self.api = TicketApi(url, token, timeout, session)
        self.url = self.api.url

    def tickets(self, since: datetime, until: datetime) -> list[Ticket]:
        try:
            return self._tickets(since, until)
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"tickets {self.url}: unexpected answer: {exc!r}") from None

    def _tickets(self, since: datetime, until: datetime) -> list[Ticket]:
        seen: dict[str, Ticket] = {}
        queries = (
            {"kind": "incident", "since": since.isoformat(), "until": until.isoformat()},
            {"kind": "vulnerability", "until": until.isoformat()},
        )
        for query in queries:
            for item in self._pages(query):
                ticket = ticket_from_json(item)
                seen[ticket.id] = ticket  # a ticket created while paging may repeat
        out = sorted(seen.values(), key=lambda t: (t.created, int(t.id)))
        return out + self._changes(until)

    def _changes(self, until: datetime) -> list[Ticket]:
        """``GET /api/v1/changes`` (one list, no paging) as records of kind ``change``, placed at
        ``planned_start`` (else ``created_at``); ``status`` is the change's ``result``."""
        body = self._get("/api/v1/changes", {})
        out = []
        for item in body["changes"]:
            when = parse_time(item.get("planned_start")) or parse_time(item["created_at"])
            if when is None or when >= until:
                continue
            out.append(
                Ticket(
                    id=f"C{item['id']}",
                    kind="change",
                    created=when,
                    status=str(item.get("result") or ""),
                    problem_id=_id(item.get("problem_id")),
                    title=str(item.get("title") or ""),
                    verification=str(item.get("verification") or ""),
                )
            )
        return out

    def _get(self, path: str, params: dict) -> Any:
        try:
            return self.api.get(path, params)
        except TicketApiError as exc:
            raise SourceError(str(exc)) from None

    def _pages(self, query: dict) -> list[dict]:
        out: list[dict] = []
        offset = 0
        while True:
            params = {**query, "limit": self.PAGE, "offset": offset}
            page = self._get("/api/v1/tickets", params)["tickets"]
            out.extend(page)
            if len(page) < self.PAGE:
                return out
            offset += len(page)


def _unix(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


class SqliteBackupCatalogue:
    """The catalogue ``sscp-ops backup`` writes (sscp_ops/backup/catalogue.py; times are unix
    seconds): each row of ``runs`` is a backup (``result`` success / failed, or ``running``:
    not counted while younger than :attr:`STALE`, failed after that since the run died), each
    row of ``drills`` a restore drill with its measured ``duration``.
    The detail of a backup names its copies that failed."""

    RUNS = (
        "SELECT r.id, r.set_name, r.run_id, r.started, r.finished, r.duration, r.result, "
        "COALESCE(r.error, ''), "
        "(SELECT group_concat(c.location || ': ' || COALESCE(c.error, c.result), '; ') "
        " FROM copies c WHERE c.run = r.id AND c.result = 'failed') "
        "FROM runs r WHERE r.started >= ? AND r.started < ? ORDER BY r.started"
    )
    DRILLS = (
        "SELECT set_name, COALESCE(run_id, ''), started, finished, duration, result, "
        "COALESCE(error, '') FROM drills WHERE started >= ? AND started < ? ORDER BY started"
    )

    STALE = timedelta(hours=24)

    def __init__(self, path: Path, now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.path = path
        self.now = now

    def runs(self, since: datetime, until: datetime) -> list[BackupRun]:
        if not self.path.exists():
            raise SourceError(f"backup catalogue {self.path} not found")
        window = (since.timestamp(), until.timestamp())
        try:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                runs = con.execute(self.RUNS, window).fetchall()
                drills = con.execute(self.DRILLS, window).fetchall()
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise SourceError(f"backup catalogue {self.path}: {exc}") from None
        out = []
        stale = (self.now() - self.STALE).timestamp()
        for _id, set_name, run_id, started, finished, duration, result, error, copies in runs:
            if result == "running":
                if started > stale:
                    continue
                error = error or "never finished (still running after 24 h)"
            detail = "; ".join(x for x in (f"run {run_id}", error, copies) if x)
            out.append(
                BackupRun(
                    job=str(set_name),
                    kind="backup",
                    started=_unix(started),  # type: ignore[arg-type]
                    finished=_unix(finished),
                    success=result == "success",
                    detail=detail,
                    seconds=duration,
                )
            )
        for set_name, run_id, started, finished, duration, result, error in drills:
            out.append(
                BackupRun(
                    job=str(set_name),
                    kind="drill",
                    started=_unix(started),  # type: ignore[arg-type]
                    finished=_unix(finished),
                    success=result == "success",
                    detail="; ".join(x for x in (f"run {run_id}" if run_id else "", error) if x),
                    seconds=float(duration),
                )
            )
        out.sort(key=lambda r: r.started)
        return out


def event_from_json(item: dict) -> SecurityEvent:
    """One event of ``sscp-ops logs events --format json`` (sscp_ops.events.Event plus
    ``time_iso``): ``time`` unix seconds, ``type``, ``rule``, ``client_ip``, ``source`` (the log),
    ``detail`` (already masked)."""
    return SecurityEvent(
        time=_unix(item["time"]),  # type: ignore[arg-type]
        kind=str(item["type"]),
        source=str(item.get("client_ip") or ""),
        detail=str(item.get("detail") or ""),
        rule=str(item.get("rule") or ""),
        log=str(item.get("source") or ""),
    )


class StoreEventSource:
    """The security events read in process from the event store the logs collector fills
    (``logs.events_db``): no console script, so no dependence on PATH."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def events(self, since: datetime, until: datetime) -> list[SecurityEvent]:
        from sscp_ops.events import EventStore

        if not self.path.exists():
            raise SourceError(f"security events: {self.path}: no events database")
        try:
            store = EventStore(self.path)
        except sqlite3.Error as exc:
            raise SourceError(f"security events: {self.path}: {exc}") from None
        try:
            rows = store.query(since.timestamp(), until.timestamp())
        except sqlite3.Error as exc:
            raise SourceError(f"security events: {self.path}: {exc}") from None
        finally:
            store.close()
        return [event_from_json(e.as_dict()) for e in rows]


class CommandEventSource:
    """Runs ``COMMAND --since S --until U --format json`` (``sscp-ops logs events``), which
    prints one JSON array. ``config_file`` is passed as ``--config.file`` (the command reads the
    events database path from the config's ``logs`` section) unless the command names one."""

    def __init__(
        self, command: Sequence[str], timeout: float = 300, config_file: str | None = None
    ):
        self.command = list(command)
        self.timeout = timeout
        if config_file and not {"--config.file", "--db"} & set(self.command):
            self.command += ["--config.file", str(config_file)]

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
        try:
            items = json.loads(done.stdout)
        except ValueError as exc:
            raise SourceError(f"security events: not JSON: {exc}") from None
        if not isinstance(items, list):
            raise SourceError("security events: expected a JSON array")
        try:
            return [event_from_json(item) for item in items]
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"security events: bad event: {exc!r}") from None


def steps_for(seconds: float, max_points: int = 2000, minimum: int = 300) -> int:
    """A chart step: at least ``minimum`` seconds, at most ``max_points`` points, divides 3600
    or is a whole number of hours."""
    step = max(minimum, math.ceil(seconds / max_points))
    if step <= 3600:
        return next(s for s in (300, 600, 900, 1200, 1800, 3600) if s >= step)
    return math.ceil(step / 3600) * 3600
