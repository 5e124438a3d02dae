"""Report periods in local time: a month (``2026-10``), a quarter (``2026Q4``), a year.

A contract year starts on the anniversary of ``report.contract_start`` (1 January when unset);
the annual report is the contract year that starts in the given year.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
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


def anniversary(year: int, contract_start: date | None, tz: ZoneInfo) -> datetime:
    """Local midnight of the contract year's first day in ``year`` (29 Feb -> 28 Feb)."""
    if contract_start is None:
        return datetime(year, 1, 1, tzinfo=tz)
    m, d = contract_start.month, contract_start.day
    if (m, d) == (2, 29) and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        d = 28
    return datetime(year, m, d, tzinfo=tz)


def contract_year(moment: datetime, contract_start: date | None, tz: ZoneInfo) -> Period:
    """The contract year that contains ``moment`` (its first contract year when earlier)."""
    local = moment.astimezone(tz)
    y = local.year
    if anniversary(y, contract_start, tz) > local:
        y -= 1
    if contract_start is not None:
        y = max(y, contract_start.year)
    return _contract_year(y, contract_start, tz)


def _contract_year(y: int, contract_start: date | None, tz: ZoneInfo) -> Period:
    start, end = anniversary(y, contract_start, tz), anniversary(y + 1, contract_start, tz)
    if contract_start is None or (contract_start.month, contract_start.day) == (1, 1):
        title = f"{y}年度"
    else:
        last = date.fromordinal(end.date().toordinal() - 1)
        title = f"{y}合同年度（{start:%Y年%m月%d日}至{last:%Y年%m月%d日}）"
    return Period("annual", str(y), title, start, end)


def year(text: str, tz: ZoneInfo, contract_start: date | None = None) -> Period:
    """The contract year starting in ``text`` (the calendar year when ``contract_start`` is
    unset or 1 January)."""
    if not re.fullmatch(r"\d{4}", text):
        raise ValueError(f"year must look like 2026, got {text!r}")
    return _contract_year(int(text), contract_start, tz)


def months_back(moment: datetime, months: int) -> datetime:
    """The same local day-of-month ``months`` earlier, clamped (for the six-month window)."""
    start = _month_start(moment.year, moment.month - months, moment.tzinfo)  # type: ignore[arg-type]
    return start.replace(day=1) + (moment - moment.replace(day=1))
