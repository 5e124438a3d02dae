"""The ``report:`` section: the contract's indicators, deductions and the report's sources.

Every number defaults to the contract's reading (see docs/sla.md)::

    report:
      prometheus_url: http://127.0.0.1:9090
      contract_start: 2026-03-01   # first day of the first contract year (default: 1 January)
      availability: {target: 0.999, step: 0.001, percent_per_step: 1, rounding: floor}
      holiday_availability: {target: 0.999, step: 0.01, percent_per_step: 1, rounding: floor}
      holiday_downtime: holiday_scale
      annual_downtime_hours: 8.76
      caps: {total_percent: 100, indicators: {}}
      response: {limit_minutes: 15, tolerated: 3, tolerance_window: contract_year}
      monthly_fee: 4000            # yuan (48 000 a year); deductions are also shown as money
      tickets: {url: http://127.0.0.1:9811, token_file: /etc/sscp-ops/report-ticket.token}
      backups: {catalogue: /var/lib/sscp-ops/backup.db}
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from sscp_ops.config.base import Model

Ratio = Annotated[Decimal, Field(gt=0, le=1)]
Percent = Annotated[Decimal, Field(ge=0, le=100)]
Hours = Annotated[Decimal, Field(gt=0, le=24 * 365)]


class ShortfallRule(Model):
    """``percent_per_step`` of the fee for every ``step`` below ``target``; ``rounding`` says how
    a part of a step counts: ``floor`` (only full steps, the default), ``ceil`` (a started step
    counts) or ``linear`` (in proportion). The contract does not say; the report prints it."""

    target: Ratio = Decimal("0.999")
    step: Ratio = Decimal("0.001")
    percent_per_step: Percent = Decimal("1")
    rounding: Literal["floor", "ceil", "linear"] = "floor"


def _holiday_rule() -> ShortfallRule:
    return ShortfallRule(step=Decimal("0.01"))


class ResponseRule(Model):
    """Late fault responses: ``tolerated`` per ``tolerance_window`` (``contract_year`` or
    ``month``), then each late response is charged (the contract: 按次扣款). ``percent_each``
    has no default: unset, the report shows the count and 按合同约定."""

    limit_minutes: Annotated[int, Field(gt=0, le=1440)] = 15
    tolerated: Annotated[int, Field(ge=0)] = 3
    tolerance_window: Literal["contract_year", "month"] = "contract_year"
    percent_each: Percent | None = None


INDICATOR_KEYS = (
    "availability",
    "holiday_availability",
    "response",
    "resolution_time",
    "resolution_rate",
    "recurrence",
    "vuln_fix_time",
    "vuln_fix_rate",
    "backup_success",
    "restore_success",
    "recovery_time",
)


class Caps(Model):
    """Deductions are capped: the total at ``total_percent`` of the period's fee, and an
    indicator at ``indicators[key]`` (keys as in report.json's ``indicators``)."""

    total_percent: Percent = Decimal("100")
    indicators: dict[str, Percent] = {}

    @field_validator("indicators")
    @classmethod
    def _known_keys(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        unknown = sorted(set(value) - set(INDICATOR_KEYS))
        if unknown:
            raise ValueError(
                f"unknown indicator {unknown[0]!r}; one of {', '.join(INDICATOR_KEYS)}"
            )
        return value


class TimeRule(Model):
    limit_hours: Hours
    penalty_percent: Percent | None = None


class RateRule(Model):
    target: Ratio
    penalty_percent: Percent | None = None


class Under2sRule(Model):
    """The real users' side of "< 2 秒": the share of requests Nginx answered in under 2 s, from
    the logs collector's histogram. ``bucket_le``: the bucket holding them (Nginx logs
    ``$request_time`` in milliseconds, so under 2 s is at most 1.999 s); ``target``: the
    objective shown (the same as rules/thresholds.yml ``slo.under_2s.target``); no deduction."""

    metric: Annotated[str, Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")] = (
        "nginx_http_request_duration_seconds"
    )
    bucket_le: str = "1.999"
    target: Ratio = 0.95


class MissingDataRule(Model):
    """Time without probe data (docs/sla.md "Missing data"). ``when_host_down``: a missing step
    while the platform's host was down (``up`` of one of ``platform_hosts``, node exporter
    instances, is 0) is ``unavailable`` (default) or ``excluded``; any other missing step is
    excluded from the ratio and flagged. With no ``platform_hosts`` the host's state is
    unknown and every missing step is excluded and flagged. ``max_share``: more missing time
    than this share of the period marks the period 证据不足."""

    when_host_down: Literal["unavailable", "excluded"] = "unavailable"
    platform_hosts: list[str] = []
    max_share: Ratio = 0.001


class RecurrenceRule(Model):
    limit: Annotated[int, Field(ge=0)] = 3
    #: How 已解决故障在半年内连续发生≤3次 is counted: every occurrence of the fault in the window
    #: (default), or the recurrences after the first.
    counting: Literal["occurrences", "recurrences"] = "occurrences"
    window_months: Annotated[int, Field(ge=1, le=24)] = 6
    penalty_percent: Percent | None = None


class VulnTimeRule(Model):
    limit_hours: Hours = Decimal("48")
    percent_per_day: Percent = Decimal("2")
    risks: list[str] = ["high", "critical"]


class TicketSource(Model):
    """The webhook's ticket API (GET /api/v1/tickets) with a bearer token from a file or env."""

    url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    token_file: Path | None = None
    token_env: str | None = None
    timeout: Annotated[float, Field(gt=0, le=300)] = 30.0


class BackupSource(Model):
    """The catalogue of ``sscp-ops backup``; unset: the config's ``backup.catalog``."""

    catalogue: Path | None = None


class EventSource(Model):
    """Where the security events come from. By default the report reads the event store in
    process: ``db``, or the config's ``logs.events_db``. ``command`` (optional) names a command
    that prints them as JSON instead (``sscp-ops logs events`` on another host, say); the
    report's ``--config.file`` is added unless it names ``--config.file`` or ``--db``."""

    db: Path | None = None
    command: list[str] | None = None
    enabled: bool = True


class ReportConfig(Model):
    prometheus_url: Annotated[str, Field(pattern=r"^https?://\S+$")] = "http://127.0.0.1:9090"
    #: The platform's availability: the recording rule the dashboards and the alerts read too
    #: (1 up, 0 down, no sample missing). Which probes make the platform is the probes'
    #: ``platform`` flag (docs/sla.md "One availability"), not a report setting.
    availability_metric: Annotated[str, Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")] = (
        "platform:sla_availability:up"
    )
    #: Per-probe breakdown (which probes failed during an outage); not the availability.
    probe_metric: Annotated[str, Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")] = "sla_probe_success"
    #: Availability resolution in seconds (the probe interval or a multiple); divides an hour.
    step_seconds: Annotated[int, Field(ge=1, le=3600)] = 60
    #: First day of the first contract year; each contract year starts on its anniversary
    #: (the annual budget 年宕机≤8.76h and the response tolerance run per contract year).
    #: Unset: 1 January, and the report says so.
    contract_start: date | None = None
    availability: ShortfallRule = ShortfallRule()
    holiday_availability: ShortfallRule = Field(default_factory=_holiday_rule)
    #: ``holiday_scale``: holiday time is judged on the holiday scale only and the normal scale
    #: covers the other time; ``both_scales``: the normal scale covers the whole period too.
    holiday_downtime: Literal["holiday_scale", "both_scales"] = "holiday_scale"
    #: The contract's yearly downtime budget (年宕机≤8.76h).
    annual_downtime_hours: Annotated[Decimal, Field(gt=0, le=24 * 366)] = Decimal("8.76")
    caps: Caps = Caps()
    response: ResponseRule = ResponseRule()
    resolution_time: TimeRule = TimeRule(limit_hours=Decimal("2"))
    resolution_rate: RateRule = RateRule(target=Decimal("0.95"))
    recurrence: RecurrenceRule = RecurrenceRule()
    requests_under_2s: Under2sRule = Under2sRule()
    missing_data: MissingDataRule = MissingDataRule()
    vuln_fix_time: VulnTimeRule = VulnTimeRule()
    vuln_fix_rate: RateRule = RateRule(target=Decimal("0.90"))
    backup_success: RateRule = RateRule(target=Decimal("0.999"))
    restore_success: RateRule = RateRule(target=Decimal("1"))
    recovery_time: TimeRule = TimeRule(limit_hours=Decimal("4"))
    monthly_fee: Annotated[Decimal, Field(gt=0)] | None = None
    tickets: TicketSource = TicketSource()
    backups: BackupSource = BackupSource()
    events: EventSource = EventSource()
    project: str = "智慧监管综合指挥平台"
    client: str = ""
    company: str = ""
    engineer: str = ""

    @field_validator("step_seconds")
    @classmethod
    def _divides_hour(cls, value: int) -> int:
        if 3600 % value:
            raise ValueError("must divide 3600 (e.g. 15, 30, 60, 300)")
        return value
