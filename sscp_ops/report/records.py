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
    found: datetime | None = None
    #: Changes: the 变更后验证 text (journey results: sscp_ops.change_checks).
    verification: str = ""
    #: Whether the incident counts toward response time (the webhook's ``faults`` rule).
    fault: bool = True
    #: The last reopen: the response clock of a reopened fault starts there.
    response_from: datetime | None = None

    @property
    def response_start(self) -> datetime:
        """Start of the response clock: the ticket's creation, or its last reopen."""
        return self.response_from or self.created

    @property
    def start(self) -> datetime:
        """Start of the SLA clocks: the ticket's creation (the alert reached the webhook), as
        the webhook's own ``sla`` fields count it (docs/api.md)."""
        return self.created

    @property
    def found_at(self) -> datetime:
        """Vulnerabilities: when the current episode was found (``last_starts_at``)."""
        return self.found or self.fired or self.created

    @property
    def done(self) -> datetime | None:
        """When the fault was fixed: resolution, else closing."""
        return self.resolved or self.closed


@dataclass(frozen=True)
class BackupRun:
    """One catalogue entry: a backup run or a restore drill."""

    job: str
    kind: str  # backup | drill (a drill is a restore: restore success and recovery time)
    started: datetime
    finished: datetime | None
    success: bool
    detail: str = ""
    seconds: float | None = None  # the catalogue's measured duration, when it has one

    @property
    def duration_seconds(self) -> float | None:
        if self.seconds is not None:
            return self.seconds
        if self.finished is None:
            return None
        return (self.finished - self.started).total_seconds()


@dataclass(frozen=True)
class SecurityEvent:
    time: datetime
    kind: str  # sscp_ops.events.EVENT_TYPES: sql_injection, brute_force, new_ip_login, ...
    source: str = ""  # the client address
    detail: str = ""
    rule: str = ""
    log: str = ""  # the log source the event was read from


@dataclass(frozen=True)
class Series:
    """One time series of a range query: its labels and (unix seconds, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]
