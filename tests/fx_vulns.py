"""A stand-in for the webhook's vulnerability API until the webhook (issue 5) is merged.

A real HTTP server on a free loopback port that keeps the tickets it is sent in memory and
records every request. It follows the webhook's API as built on the issue-5 branch
(``GET /api/v1/tickets?kind=vulnerability``, ``POST /api/v1/vulnerabilities`` upserting by
``external_key`` with unknown fields refused, ``PATCH /api/v1/vulnerabilities/<key>``, due time
from the risk) plus the two additions docs/vulnerabilities.md asks of it: ``fixed_at`` when
closing and ``status: open`` with ``found_at`` to reopen. Replace it with the webhook app once
that lands.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

RISK_DUE_HOURS = {"high": 48, "medium": 7 * 24, "low": 30 * 24}
CREATE_FIELDS = {"external_key", "risk", "title", "target", "name", "description", "found_at",
                 "labels"}  # fmt: skip
PATCH_FIELDS = {"risk", "title", "target", "description", "status", "note", "fixed_at", "found_at"}


def _time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("naive time")
    return value.astimezone(dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    return (
        None if value is None else value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


@dataclass
class TicketStandIn:
    url: str
    token: str
    tickets: dict[int, dict] = field(default_factory=dict)
    requests: list[tuple[str, str, dict | None]] = field(default_factory=list)

    def by_key(self) -> dict[str, dict]:
        return {t["external_key"]: self.view(t) for t in self.tickets.values()}

    @staticmethod
    def view(t: dict) -> dict:
        return {k: _iso(v) if isinstance(v, dt.datetime) else v for k, v in t.items()}


def _handler(state: TicketStandIn):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            parts = urlsplit(self.path)
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n)) if n else None
            state.requests.append((method, self.path, body))
            if self.headers.get("Authorization") != f"Bearer {state.token}":
                return self._send(401, {"error": "missing or invalid token"})
            try:
                return self._route(method, parts, body or {})
            except (KeyError, ValueError) as exc:
                return self._send(400, {"error": f"bad request: {exc}"})

        def _route(self, method: str, parts, body: dict) -> None:
            path = parts.path
            if method == "GET" and path == "/api/v1/tickets":
                q = parse_qs(parts.query)
                limit, offset = int(q["limit"][0]), int(q.get("offset", ["0"])[0])
                rows = sorted(state.tickets.values(), key=lambda t: -t["id"])
                rows = [t for t in rows if t["kind"] == q.get("kind", [t["kind"]])[0]]
                page = [state.view(t) for t in rows[offset : offset + limit]]
                return self._send(200, {"tickets": page, "limit": limit, "offset": offset})
            if method == "POST" and path == "/api/v1/vulnerabilities":
                extra = set(body) - CREATE_FIELDS
                if extra:
                    return self._send(400, {"error": f"unknown field(s) {sorted(extra)}"})
                found = _time(body["found_at"])
                values = {
                    "risk": body["risk"],
                    "summary": body["title"],
                    "target": body.get("target", ""),
                    "alertname": body.get("name", "vulnerability"),
                    "description": body.get("description", ""),
                    "labels": body.get("labels", {}),
                    "starts_at": found,
                    "due_at": found + dt.timedelta(hours=RISK_DUE_HOURS[body["risk"]]),
                }
                for t in state.tickets.values():
                    if t["external_key"] == body["external_key"]:
                        t.update(values)
                        return self._send(200, state.view(t))
                tid = len(state.tickets) + 1
                state.tickets[tid] = {
                    "id": tid,
                    "kind": "vulnerability",
                    "status": "open",
                    "external_key": body["external_key"],
                    "resolved_at": None,
                    "closed_at": None,
                    "reopen_count": 0,
                    **values,
                }
                return self._send(201, state.view(state.tickets[tid]))
            prefix = "/api/v1/vulnerabilities/"
            if method == "PATCH" and path.startswith(prefix):
                key = unquote(path[len(prefix) :])
                t = next((t for t in state.tickets.values() if t["external_key"] == key), None)
                if t is None:
                    return self._send(404, {"error": f"vulnerability {key} not found"})
                extra = set(body) - PATCH_FIELDS
                if extra:
                    return self._send(400, {"error": f"unknown field(s) {sorted(extra)}"})
                for k, col in (("risk", "risk"), ("title", "summary"), ("target", "target")):
                    if k in body:
                        t[col] = body[k]
                status = body.get("status")
                if status == "closed":
                    if t["status"] == "closed":
                        return self._send(409, {"error": "already closed"})
                    at = _time(body["fixed_at"]) if "fixed_at" in body else dt.datetime.now(dt.UTC)
                    t.update(status="closed", resolved_at=t["resolved_at"] or at, closed_at=at)
                elif status == "open":
                    if t["status"] not in ("resolved", "closed"):
                        return self._send(409, {"error": f"cannot reopen a {t['status']} ticket"})
                    t.update(status="open", resolved_at=None, closed_at=None)
                    t["reopen_count"] += 1
                    if "found_at" in body:
                        t["starts_at"] = _time(body["found_at"])
                t["due_at"] = t["starts_at"] + dt.timedelta(hours=RISK_DUE_HOURS[t["risk"]])
                return self._send(200, state.view(t))
            return self._send(404, {"error": "no such endpoint"})

        def do_GET(self) -> None:  # noqa: N802
            self._handle("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

        def do_PATCH(self) -> None:  # noqa: N802
            self._handle("PATCH")

    return Handler


@pytest.fixture
def ticket_standin() -> Iterator[TicketStandIn]:
    state = TicketStandIn(url="", token=secrets.token_urlsafe(16))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
