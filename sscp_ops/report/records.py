"""Plain records the report computes over; the adapters in :mod:`.sources` produce them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Ticket:
    """A ticket of the webhook's store (kind ``incident`` or ``vulnerability``)."""

    id: str
    kind: str
    created: datetime
    alertname: str = ""
    severity: str = ""
    target: str = ""
    status: str = ""
    fired: datetime | None = None
    acknowledged: datetime | None = None
    resolved: datetime | None = None
    closed: datetime | None = None
    recurrence_of: str | None = None
    problem_id: str | None = None
    risk: str | None = None
    due_at: datetime | None = None
    title: str = ""

    @property
    def start(self) -> datetime:
        """When the fault began: the alert's firing time, else the ticket's creation."""
        return self.fired or self.created

    @property
    def done(self) -> datetime | None:
        """When the fault was fixed: resolution, else closing."""
        return self.resolved or self.closed


@dataclass(frozen=True)
class BackupRun:
    """One catalogue entry: a backup, a verification restore, or a recovery drill."""

    job: str
    kind: str  # backup | restore | drill
    started: datetime
    finished: datetime | None
    success: bool
    detail: str = ""

    @property
    def duration_seconds(self) -> float | None:
        if self.finished is None:
            return None
        return (self.finished - self.started).total_seconds()


@dataclass(frozen=True)
class SecurityEvent:
    time: datetime
    kind: str  # e.g. login_failure, sql_injection, xss, scan
    source: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Series:
    """One time series of a range query: its labels and (unix seconds, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]
