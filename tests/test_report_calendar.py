"""The holiday calendar: the State Council notices for 2025 and 2026, and config overrides."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest

from sscp_ops.config import ConfigError, parse_config
from sscp_ops.holiday_calendar import CHINA_TZ, HolidayCalendar, UnknownYear

CAL = HolidayCalendar()

# (day, is statutory holiday, is working day): from the notices' own wording.
CASES = [
    ("2026-01-01", True, False),  # 元旦 1月1日至3日
    ("2026-01-03", True, False),
    ("2026-01-04", False, True),  # Sunday, 1月4日（周日）上班
    ("2026-02-14", False, True),  # Saturday make-up day before 春节
    ("2026-02-15", True, False),  # 春节 2月15日至23日, 9 days
    ("2026-02-23", True, False),
    ("2026-02-24", False, True),
    ("2026-02-28", False, True),  # Saturday make-up day
    ("2026-05-05", True, False),
    ("2026-05-09", False, True),  # Saturday make-up day
    ("2026-06-19", True, False),  # 端午节
    ("2026-09-20", False, True),  # Sunday make-up day before 国庆
    ("2026-09-26", True, False),  # 中秋节 9月25日至27日
    ("2026-10-07", True, False),
    ("2026-10-08", False, True),
    ("2026-10-10", False, True),  # Saturday make-up day
    ("2026-10-11", False, False),  # an ordinary Sunday: not a statutory holiday, not a workday
    ("2025-01-28", True, False),  # 2025 春节 1月28日至2月4日
    ("2025-02-08", False, True),
    ("2025-10-08", True, False),  # 2025 国庆中秋 10月1日至8日
    ("2025-10-11", False, True),
]


@pytest.mark.parametrize(("day", "holiday", "workday"), CASES)
def test_notice_days(day: str, holiday: bool, workday: bool) -> None:
    d = date.fromisoformat(day)
    assert CAL.is_holiday(d) is holiday
    assert CAL.is_workday(d) is workday


@pytest.mark.parametrize(
    ("year", "rest_days", "makeup_days"),
    [(2025, 1 + 8 + 3 + 5 + 3 + 8, 5), (2026, 3 + 9 + 3 + 5 + 3 + 3 + 7, 6)],
)
def test_year_totals(year: int, rest_days: int, makeup_days: int) -> None:
    holidays = CAL.holidays_between(date(year, 1, 1), date(year, 12, 31))
    assert len(holidays) == rest_days
    assert len(CAL.arrangements[year].workdays) == makeup_days
    for day in CAL.arrangements[year].workdays:
        assert day.weekday() >= 5, f"{day} make-up day should fall on a weekend"


def test_matches_holidays_library() -> None:
    """Cross-check against python-holidays' CN data (maintained independently of ours).

    The library lists the statutory days that fall on weekdays plus the swapped rest days
    ("Day off (substituted from MM/DD/YYYY)"); weekend days inside a holiday period are not
    listed. So: its days are a subset of ours, ours beyond it are weekends, and the days it was
    substituted from are exactly our make-up working days.
    """
    import re

    import holidays as lib

    for year in (2025, 2026):
        cn = lib.country_holidays("CN", years=year)
        ours = set(CAL.holidays_between(date(year, 1, 1), date(year, 12, 31)))
        theirs = set(cn)
        assert theirs <= ours, sorted(theirs - ours)
        assert all(d.weekday() >= 5 for d in ours - theirs), sorted(ours - theirs)
        swapped = set()
        for name in cn.values():
            for m, d, y in re.findall(r"substituted from (\d\d)/(\d\d)/(\d{4})", name):
                swapped.add(date(int(y), int(m), int(d)))
        assert swapped == set(CAL.arrangements[year].workdays)


def test_holiday_intervals_clip_to_the_period() -> None:
    start = datetime(2026, 10, 1, tzinfo=CHINA_TZ)
    end = datetime(2026, 11, 1, tzinfo=CHINA_TZ)
    intervals = CAL.holiday_intervals(start, end)
    assert intervals == [(start, start + timedelta(days=7))]
    mid = datetime(2026, 10, 3, 12, tzinfo=CHINA_TZ)
    assert CAL.holiday_intervals(mid, end) == [(mid, start + timedelta(days=7))]


def test_unknown_year_is_an_error_not_a_guess() -> None:
    with pytest.raises(UnknownYear, match="calendar.years.2031"):
        CAL.is_holiday(date(2031, 1, 1))


def test_config_replaces_a_year() -> None:
    config = parse_config(
        """
calendar:
  years:
    2027:
      holidays:
        - {name: 元旦, first: 2027-01-01, last: 2027-01-03}
      workdays: [2027-01-09]
"""
    )
    cal = config.calendar.build()
    assert cal.is_holiday(date(2027, 1, 2))
    assert cal.is_workday(date(2027, 1, 9))
    assert cal.is_holiday(date(2026, 10, 1))  # defaults kept for other years


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "calendar:\n  years:\n    2027:\n      workdays: [2026-01-09]\n",
            "not in 2027",
        ),
        (
            "calendar:\n  years:\n    2027:\n      holidays:\n"
            "        - {name: x, first: 2027-01-03, last: 2027-01-01}\n",
            "f.yml:5: calendar.years[2027].holidays[0]: last must not be before first",
        ),
        ("calendar:\n  timezone: Mars/Base\n", "calendar.timezone: unknown time zone"),
    ],
)
def test_bad_calendar_config(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(text, "f.yml")


def test_defaults_come_from_chinese_calendar() -> None:
    """The maintained package, not a transcription: it knows 2026 (and what came before),
    named in Chinese; 2027 comes with the notice of November 2026."""
    import chinese_calendar

    assert CAL.is_holiday(date(2026, 10, 2)) is chinese_calendar.is_holiday(date(2026, 10, 2))
    assert CAL.holiday_name(date(2025, 10, 6)) == "国庆节、中秋节"
    assert CAL.last_year() >= 2026 and CAL.knows(2016)
