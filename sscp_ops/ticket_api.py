"""The client of the webhook's ticket API (``/api/v1``, docs/api.md) with a bearer token.

Used by the monthly report (reads tickets and changes, :mod:`sscp_ops.report.sources`) and by
``sscp-ops journeys run --change-id`` (records a journey result on a change). Errors are one
:class:`TicketApiError` whose message names the service and never holds the token.
"""

from __future__ import annotations

from typing import Any

import requests


class TicketApiError(RuntimeError):
    """The ticket service refused a request, answered garbage or cannot be reached."""


class TicketApi:
    def __init__(
        self,
        url: str,
        token: str | None,
        timeout: float = 30,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = session or requests.Session()

    def call(self, method: str, path: str, params: dict | None = None, body: Any = None) -> Any:
        """``method path`` (``/api/v1/...``) -> the JSON answer; :class:`TicketApiError`
        unless the status is 2xx."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            resp = self.session.request(
                method,
                f"{self.url}{path}",
                params=params,
                json=body,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise TicketApiError(f"tickets {self.url}: {exc}") from None
        try:
            answer = resp.json() if resp.content else None
        except ValueError as exc:
            if 200 <= resp.status_code < 300:
                raise TicketApiError(f"tickets {self.url}: {exc}") from None
            answer = None
        if not 200 <= resp.status_code < 300:
            error = answer.get("error") if isinstance(answer, dict) else None
            raise TicketApiError(f"tickets {self.url}: HTTP {resp.status_code}: {error}")
        return answer

    def get(self, path: str, params: dict | None = None) -> Any:
        return self.call("GET", path, params=params)

    def changes(self) -> list[dict]:
        """``GET /api/v1/changes``: every change (one list, no paging)."""
        return self.get("/api/v1/changes")["changes"]

    def append_verification(self, change_id: int, text: str) -> dict:
        """Add ``text`` as a new line of change ``change_id``'s ``verification`` (the 变更后验证
        record) and return the change. The API replaces the field, so this reads it first:
        two writers at the same moment may lose one line (the gate runs once per change)."""
        change = next((c for c in self.changes() if c.get("id") == change_id), None)
        if change is None:
            raise TicketApiError(f"tickets {self.url}: no change {change_id}")
        before = change.get("verification") or ""
        joined = f"{before.rstrip()}\n{text}" if before.strip() else text
        return self.call("PATCH", f"/api/v1/changes/{change_id}", body={"verification": joined})
