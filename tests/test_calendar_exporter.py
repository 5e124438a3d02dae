"""``sscp_holiday_calendar_last_year`` on a real ``sscp-ops exporter`` scrape, so the
HolidayCalendarYearUnknown rule (rules/calendar.rules.yml) has a series to judge (issue 16
item 14: alert from November of the year before)."""

from __future__ import annotations

import requests
from helpers import parse_exposition, promtool_check_metrics

from exporters.calendar import CalendarCollector
from sscp_ops.config import parse_config

METRIC = ("sscp_holiday_calendar_last_year", frozenset())


def test_collector_value_is_the_calendars_last_year() -> None:
    calendar = parse_config("calendar: {years: {2031: {holidays: []}}}\n").calendar.build()
    (family,) = CalendarCollector(calendar).collect(1.0)
    assert [s.value for s in family.samples] == [2031]


def test_exporter_scrape(exporter) -> None:
    default = parse_config("{}").calendar.build().last_year()
    base = exporter("exporter: {collectors: {host: false, textfile: false}}\n")
    text = requests.get(f"{base}/metrics", timeout=10).text
    samples = parse_exposition(text)
    assert samples[METRIC] == default
    assert samples[("sscp_exporter_collector_success", frozenset({("collector", "calendar")}))]
    assert promtool_check_metrics(text).returncode == 0

    base = exporter(
        "exporter: {collectors: {host: false, textfile: false}}\n"
        "calendar: {years: {2031: {holidays: "
        "[{name: 元旦, first: 2031-01-01, last: 2031-01-01}]}}}\n"
    )
    samples = parse_exposition(requests.get(f"{base}/metrics", timeout=10).text)
    assert samples[METRIC] == 2031
    assert [k for k in samples if k[0] == METRIC[0]] == [METRIC]
