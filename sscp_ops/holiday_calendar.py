"""China's statutory holidays and make-up working days (法定节假日与调休上班日).

The State Council publishes each year's arrangement in a notice (国务院办公厅关于 YYYY 年部分
节假日安排的通知) in November of the year before. The defaults come from the maintained
``chinese-calendar`` package (upgrade it when a notice is out); other years, or corrections,
come from the ``calendar:`` config section, which replaces a year's data wholesale. A year known
to neither is :class:`UnknownYear`: the report warns, and the alert HolidayCalendarYearUnknown
fires from November of the year before (``sscp_holiday_calendar_last_year``).

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


#: chinese-calendar's English names -> the notices' Chinese names.
_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}


def _from_library() -> dict[int, YearArrangement]:
    """Every year chinese-calendar knows (it follows the State Council notices, each published
    in November of the year before): consecutive rest days form one holiday period, named
    after the festivals in it (2025's 国庆节、中秋节)."""
    import chinese_calendar

    days = sorted(chinese_calendar.holidays.items())
    periods: dict[int, list[list]] = {}
    for day, name in days:
        zh = _NAMES.get(name, name)
        year = periods.setdefault(day.year, [])
        if year and year[-1][1] + timedelta(days=1) == day:
            year[-1][1] = day
            if zh not in year[-1][2]:
                year[-1][2].append(zh)
        else:
            year.append([day, day, [zh]])
    workdays: dict[int, list[date]] = {}
    for day in sorted(chinese_calendar.workdays):
        workdays.setdefault(day.year, []).append(day)
    return {
        y: YearArrangement(
            y,
            tuple(Holiday("、".join(names), first, last) for first, last, names in items),
            tuple(workdays.get(y, ())),
        )
        for y, items in periods.items()
    }


#: The maintained calendar (PyPI ``chinese-calendar``); ``calendar.years`` in the config
#: replaces a year (a notice newer than the installed package, or a correction).
DEFAULT_ARRANGEMENTS: Mapping[int, YearArrangement] = _from_library()


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

    def last_year(self) -> int:
        """The last year the calendar knows (the value of ``sscp_holiday_calendar_last_year``)."""
        return max(self.arrangements)

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
