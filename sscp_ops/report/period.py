"""Report periods in local time: a month (``2026-10``), a quarter (``2026Q4``), a year."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Period:
    kind: str  # monthly | quarterly | annual
    label: str  # 2026-10, 2026Q4, 2026
    title: str  # Chinese, e.g. 2026年10月
    start: datetime  # aware, inclusive
    end: datetime  # aware, exclusive

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def _month_start(year: int, month: int, tz: ZoneInfo) -> datetime:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=tz)


def month(text: str, tz: ZoneInfo) -> Period:
    m = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if not m or not 1 <= int(m[2]) <= 12:
        raise ValueError(f"month must look like 2026-10, got {text!r}")
    y, mo = int(m[1]), int(m[2])
    start = _month_start(y, mo, tz)
    return Period("monthly", text, f"{y}年{mo}月", start, _month_start(y, mo + 1, tz))


def quarter(text: str, tz: ZoneInfo) -> Period:
    m = re.fullmatch(r"(\d{4})Q([1-4])", text.upper())
    if not m:
        raise ValueError(f"quarter must look like 2026Q4, got {text!r}")
    y, q = int(m[1]), int(m[2])
    start = _month_start(y, 3 * q - 2, tz)
    return Period("quarterly", f"{y}Q{q}", f"{y}年第{q}季度", start, _month_start(y, 3 * q + 1, tz))


def year(text: str, tz: ZoneInfo) -> Period:
    if not re.fullmatch(r"\d{4}", text):
        raise ValueError(f"year must look like 2026, got {text!r}")
    y = int(text)
    return Period("annual", text, f"{y}年度", _month_start(y, 1, tz), _month_start(y + 1, 1, tz))


def months_back(moment: datetime, months: int) -> datetime:
    """The same local day-of-month ``months`` earlier, clamped (for the six-month window)."""
    start = _month_start(moment.year, moment.month - months, moment.tzinfo)  # type: ignore[arg-type]
    return start.replace(day=1) + (moment - moment.replace(day=1))
