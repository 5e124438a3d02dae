"""Calendar collector: the last year the holiday calendar knows (chinese-calendar plus
``calendar.years`` of the config), for the HolidayCalendarYearUnknown alert, which fires from
November of the year before a year the report could not judge. Sample output::

    sscp_holiday_calendar_last_year 2026
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric

from exporters.core import Collector
from sscp_ops.config import Config
from sscp_ops.holiday_calendar import HolidayCalendar


class CalendarCollector(Collector):
    name = "calendar"

    def __init__(self, calendar: HolidayCalendar) -> None:
        self._calendar = calendar

    def collect(self, timeout: float) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "sscp_holiday_calendar_last_year",
            "The last year whose statutory holidays the calendar knows.",
            value=self._calendar.last_year(),
        )


def build(config: Config) -> list[Collector]:
    return [CalendarCollector(config.calendar.build())]
