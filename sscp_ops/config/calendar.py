"""The ``calendar:`` section: statutory holidays and make-up working days per year.

Years given here replace the built-in arrangement of that year entirely (the built-ins are the
package chinese-calendar, see :mod:`sscp_ops.holiday_calendar`)::

    calendar:
      timezone: Asia/Shanghai
      years:
        2027:
          holidays:
            - {name: 元旦, first: 2027-01-01, last: 2027-01-01}
          workdays: [2027-02-06]
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from sscp_ops.config.base import Model
from sscp_ops.holiday_calendar import Holiday, HolidayCalendar, build_calendar


class HolidayPeriod(Model):
    name: str = Field(min_length=1, max_length=32)
    first: date
    last: date

    @model_validator(mode="after")
    def _ordered(self):
        if self.last < self.first:
            raise ValueError("last must not be before first")
        return self


class YearConfig(Model):
    holidays: list[HolidayPeriod] = []
    workdays: list[date] = []


class CalendarConfig(Model):
    timezone: str = "Asia/Shanghai"
    years: dict[int, YearConfig] = {}

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _dates_in_year(self):
        for year, cfg in self.years.items():
            days = [p.first for p in cfg.holidays] + [p.last for p in cfg.holidays] + cfg.workdays
            for day in days:
                if day.year != year:
                    raise ValueError(f"years.{year}: date {day} is not in {year}")
        return self

    def build(self) -> HolidayCalendar:
        overrides = {
            year: ([Holiday(p.name, p.first, p.last) for p in cfg.holidays], cfg.workdays)
            for year, cfg in self.years.items()
        }
        return build_calendar(overrides, ZoneInfo(self.timezone))
