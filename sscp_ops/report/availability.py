"""Availability of the platform from SLA probe series (pure functions).

The report reads the platform's state from the recording rule ``platform:sla_availability:up``
(rules/availability.rules.yml, the one definition the dashboards and alerts read too) with
:func:`recorded_states`; the per-probe states (:func:`target_states`) are the breakdown.

Definition (also in docs/sla.md): the period is cut into steps of ``step`` seconds on a grid
starting at the period's start. At each grid point every probe target's state is its latest
probe result (Prometheus' instant value: the newest sample within the look-back window). A step
is

- **down** when any target's result is failure (value < 0.5, i.e. 0),
- **up** when every expected target's result is success (1),
- **missing** otherwise (some target has no data and none failed).

Availability = up / (up + down) over the steps with data; missing time is reported separately
and is never counted as up or down. With no data at all availability is ``None`` (shown as
"数据缺失", never as 100 % or 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

UP, DOWN, MISSING = 1, 0, -1


@dataclass(frozen=True)
class Grid:
    start: float  # unix seconds, inclusive
    end: float  # unix seconds, exclusive
    step: int  # seconds; divides the period

    @property
    def size(self) -> int:
        return int((self.end - self.start) // self.step)

    def time(self, k: int) -> float:
        return self.start + k * self.step


@dataclass(frozen=True)
class Availability:
    up_seconds: float
    down_seconds: float
    missing_seconds: float

    @property
    def ratio(self) -> Fraction | None:
        known = self.up_seconds + self.down_seconds
        if known == 0:
            return None
        return Fraction(int(self.up_seconds)) / Fraction(int(known))

    @property
    def coverage(self) -> Fraction:
        total = self.up_seconds + self.down_seconds + self.missing_seconds
        return (
            Fraction(0) if total == 0 else Fraction(int(total - self.missing_seconds), int(total))
        )


@dataclass(frozen=True)
class Outage:
    start: float
    end: float
    targets: tuple[str, ...]

    @property
    def seconds(self) -> float:
        return self.end - self.start


def target_states(points: Iterable[tuple[float, float]], grid: Grid) -> list[int]:
    """One target's state per grid step from its range-query points (aligned to the grid)."""
    states = [MISSING] * grid.size
    for ts, value in points:
        k = round((ts - grid.start) / grid.step)
        if 0 <= k < grid.size:
            states[k] = UP if value >= 0.5 else DOWN
    return states


def platform_states(per_target: Mapping[str, Sequence[int]], grid: Grid) -> list[int]:
    """Down when any target is down, up when all are up, else missing (no targets: missing)."""
    if not per_target:
        return [MISSING] * grid.size
    columns = list(per_target.values())
    out = []
    for states in zip(*columns, strict=True):
        if DOWN in states:
            out.append(DOWN)
        elif MISSING in states:
            out.append(MISSING)
        else:
            out.append(UP)
    return out


def recorded_states(per_series: Mapping[str, Sequence[int]], grid: Grid) -> list[int]:
    """The platform's states from the recorded rule (one series per job, usually one): down
    when any series says down, up when one says up and none down, else missing. Unlike
    :func:`platform_states` a series without a sample is not an expected probe: the rule
    already turned a platform probe without data into no sample."""
    out = [MISSING] * grid.size
    for states in per_series.values():
        for k, state in enumerate(states):
            if state == DOWN or (state == UP and out[k] == MISSING):
                out[k] = state
    return out


def count_missing(
    platform: Sequence[int], host: Sequence[int] | None, when_host_down: str
) -> list[int]:
    """The platform's states with its missing steps counted per the setting: a missing step
    whose host state is down becomes down when ``when_host_down`` is ``unavailable``; every
    other missing step stays missing (excluded from the ratio, shown and flagged). ``host``
    None: the host's state is unknown, nothing changes."""
    if host is None or when_host_down != "unavailable":
        return list(platform)
    return [DOWN if s == MISSING and h == DOWN else s for s, h in zip(platform, host, strict=True)]


def summarise(
    states: Sequence[int], grid: Grid, mask: Sequence[bool] | None = None
) -> Availability:
    """Seconds up / down / missing over the steps where ``mask`` is true (all when ``None``)."""
    up = down = missing = 0
    for k, state in enumerate(states):
        if mask is not None and not mask[k]:
            continue
        if state == UP:
            up += 1
        elif state == DOWN:
            down += 1
        else:
            missing += 1
    return Availability(up * grid.step, down * grid.step, missing * grid.step)


def interval_mask(grid: Grid, intervals: Iterable[tuple[datetime, datetime]]) -> list[bool]:
    """True for the steps whose grid point lies in one of ``intervals`` (holidays)."""
    mask = [False] * grid.size
    for lo, hi in intervals:
        first = max(0, -(-int(lo.timestamp() - grid.start) // grid.step))
        last = min(grid.size, -(-int(hi.timestamp() - grid.start) // grid.step))
        for k in range(first, last):
            mask[k] = True
    return mask


def outages(
    per_target: Mapping[str, Sequence[int]], platform: Sequence[int], grid: Grid
) -> list[Outage]:
    """Runs of consecutive down steps, with the targets that failed during each run."""
    out: list[Outage] = []
    run_start: int | None = None
    failed: set[str] = set()
    for k, state in enumerate([*platform, UP]):
        if k < len(platform) and state == DOWN:
            if run_start is None:
                run_start, failed = k, set()
            failed.update(name for name, st in per_target.items() if st[k] == DOWN)
        elif run_start is not None:
            out.append(Outage(grid.time(run_start), grid.time(k), tuple(sorted(failed))))
            run_start = None
    return out


def runs(states: Sequence[int], grid: Grid, value: int) -> list[tuple[float, float]]:
    """Maximal runs of consecutive steps in state ``value`` as (start, end) unix seconds."""
    out: list[tuple[float, float]] = []
    begin: int | None = None
    for k, state in enumerate([*states, None]):
        if state == value:
            if begin is None:
                begin = k
        elif begin is not None:
            out.append((grid.time(begin), grid.time(k)))
            begin = None
    return out


def daily(states: Sequence[int], grid: Grid, tz: ZoneInfo) -> list[tuple[date, Availability]]:
    """Availability per local calendar day (for the chart)."""
    days: dict[date, list[int]] = {}
    for k, state in enumerate(states):
        day = datetime.fromtimestamp(grid.time(k), tz).date()
        days.setdefault(day, []).append(state)
    return [(day, summarise(sts, grid)) for day, sts in days.items()]


def grid_for(start: datetime, end: datetime, step: int) -> Grid:
    span = (end - start).total_seconds()
    if span <= 0 or span % step:
        raise ValueError(f"step {step}s must divide the period ({span:.0f}s)")
    return Grid(start.timestamp(), end.timestamp(), step)


__all__ = [
    "DOWN",
    "MISSING",
    "UP",
    "Availability",
    "Grid",
    "Outage",
    "daily",
    "grid_for",
    "interval_mask",
    "outages",
    "runs",
    "count_missing",
    "platform_states",
    "recorded_states",
    "summarise",
    "target_states",
]
