"""China's statutory holidays and make-up working days (法定节假日与调休上班日).

The State Council publishes each year's arrangement in a notice (国务院办公厅关于 YYYY 年部分
节假日安排的通知) in November of the year before. The defaults below transcribe the notices for
2025 (国办发明电〔2024〕12号) and 2026 (published 2025-11-04); other years, or corrections, come
from the ``calendar:`` config section, which replaces a year's data wholesale.

Shared by the report (holiday availability) and anything else that must tell a holiday from a
working day. Dates are local (Asia/Shanghai) calendar dates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

CHINA_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Holiday:
    """One holiday period: its Chinese name and first/last rest day (inclusive)."""

    name: str
    first: date
    last: date

    def days(self) -> Iterator[date]:
        day = self.first
        while day <= self.last:
            yield day
            day += timedelta(days=1)


@dataclass(frozen=True)
class YearArrangement:
    """A year's holiday periods and make-up working days (调休上班日, usually a weekend day)."""

    year: int
    holidays: tuple[Holiday, ...]
    workdays: tuple[date, ...] = ()


def _d(text: str) -> date:
    return date.fromisoformat(text)


def _h(name: str, first: str, last: str) -> Holiday:
    return Holiday(name, _d(first), _d(last))


#: Transcribed from the State Council notices (see the module docstring).
DEFAULT_ARRANGEMENTS: Mapping[int, YearArrangement] = {
    2025: YearArrangement(
        2025,
        (
            _h("元旦", "2025-01-01", "2025-01-01"),
            _h("春节", "2025-01-28", "2025-02-04"),
            _h("清明节", "2025-04-04", "2025-04-06"),
            _h("劳动节", "2025-05-01", "2025-05-05"),
            _h("端午节", "2025-05-31", "2025-06-02"),
            _h("国庆节、中秋节", "2025-10-01", "2025-10-08"),
        ),
        tuple(map(_d, ("2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11"))),
    ),
    2026: YearArrangement(
        2026,
        (
            _h("元旦", "2026-01-01", "2026-01-03"),
            _h("春节", "2026-02-15", "2026-02-23"),
            _h("清明节", "2026-04-04", "2026-04-06"),
            _h("劳动节", "2026-05-01", "2026-05-05"),
            _h("端午节", "2026-06-19", "2026-06-21"),
            _h("中秋节", "2026-09-25", "2026-09-27"),
            _h("国庆节", "2026-10-01", "2026-10-07"),
        ),
        tuple(
            map(
                _d,
                (
                    "2026-01-04",
                    "2026-02-14",
                    "2026-02-28",
                    "2026-05-09",
                    "2026-09-20",
                    "2026-10-10",
                ),
            )
        ),
    ),
}


class UnknownYear(LookupError):
    """The calendar has no arrangement for a year (add it under ``calendar.years`` in config)."""


@dataclass(frozen=True)
class HolidayCalendar:
    """Answers "is this day a statutory holiday / a working day" for the years it knows."""

    arrangements: Mapping[int, YearArrangement] = field(
        default_factory=lambda: dict(DEFAULT_ARRANGEMENTS)
    )
    tz: ZoneInfo = CHINA_TZ

    def _year(self, year: int) -> YearArrangement:
        try:
            return self.arrangements[year]
        except KeyError:
            raise UnknownYear(
                f"no holiday arrangement for {year}; add calendar.years.{year} to the config"
            ) from None

    def knows(self, year: int) -> bool:
        return year in self.arrangements

    def holiday_name(self, day: date) -> str | None:
        """The holiday's name when ``day`` is a statutory rest day, else ``None``."""
        for holiday in self._year(day.year).holidays:
            if holiday.first <= day <= holiday.last:
                return holiday.name
        return None

    def is_holiday(self, day: date) -> bool:
        return self.holiday_name(day) is not None

    def is_makeup_workday(self, day: date) -> bool:
        return day in self._year(day.year).workdays

    def is_workday(self, day: date) -> bool:
        """Monday to Friday unless a holiday; a weekend day only when it is a make-up day."""
        if self.is_holiday(day):
            return False
        return day.weekday() < 5 or self.is_makeup_workday(day)

    def holidays_between(self, first: date, last: date, skip_unknown: bool = False) -> list[date]:
        """Every statutory rest day in ``[first, last]``, in order (``skip_unknown``: days of
        years the calendar does not know are left out instead of raising UnknownYear)."""
        out, day = [], first
        while day <= last:
            if not (skip_unknown and not self.knows(day.year)) and self.is_holiday(day):
                out.append(day)
            day += timedelta(days=1)
        return out

    def unknown_years(self, start: datetime, end: datetime) -> list[int]:
        """The years of ``[start, end)`` (local dates) the calendar has no arrangement for."""
        first = start.astimezone(self.tz).year
        last = (end - timedelta(microseconds=1)).astimezone(self.tz).year
        return [y for y in range(first, last + 1) if not self.knows(y)]

    def holiday_intervals(
        self, start: datetime, end: datetime, skip_unknown: bool = False
    ) -> list[tuple[datetime, datetime]]:
        """Holiday time within ``[start, end)`` as aware intervals (local midnight to midnight)."""
        out: list[tuple[datetime, datetime]] = []
        first = start.astimezone(self.tz).date()
        last = (end - timedelta(microseconds=1)).astimezone(self.tz).date()
        for day in self.holidays_between(first, last, skip_unknown):
            lo = datetime.combine(day, datetime.min.time(), self.tz)
            hi = lo + timedelta(days=1)
            lo, hi = max(lo, start), min(hi, end)
            if out and out[-1][1] == lo:
                out[-1] = (out[-1][0], hi)
            elif lo < hi:
                out.append((lo, hi))
        return out


def build_calendar(
    overrides: Mapping[int, tuple[Iterable[Holiday], Iterable[date]]] | None = None,
    tz: ZoneInfo = CHINA_TZ,
) -> HolidayCalendar:
    """The default arrangements, ``overrides`` (year -> (holidays, workdays)) replacing years."""
    arrangements = dict(DEFAULT_ARRANGEMENTS)
    for year, (holidays, workdays) in (overrides or {}).items():
        arrangements[year] = YearArrangement(year, tuple(holidays), tuple(workdays))
    return HolidayCalendar(arrangements, tz)
