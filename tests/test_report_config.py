"""The ``report:`` config section: contract defaults and clear errors."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest

from sscp_ops.config import ConfigError, parse_config


def test_contract_defaults() -> None:
    r = parse_config("").report
    assert (r.availability.target, r.availability.step, r.availability.rounding) == (
        Decimal("0.999"),
        Decimal("0.001"),
        "floor",
    )
    assert r.holiday_availability.step == Decimal("0.01")
    assert (r.response.limit_minutes, r.response.tolerated) == (15, 3)
    assert r.response.tolerance_window == "contract_year" and r.response.percent_each is None
    assert r.holiday_downtime == "holiday_scale" and r.annual_downtime_hours == Decimal("8.76")
    assert r.caps.total_percent == 100 and r.caps.indicators == {}
    assert r.contract_start is None
    assert r.vuln_fix_time.limit_hours == 48 and r.vuln_fix_time.percent_per_day == 2
    assert r.recovery_time.limit_hours == 4 and r.restore_success.target == 1
    assert r.recurrence.limit == 3 and r.recurrence.window_months == 6


def test_decimals_are_exact() -> None:
    r = parse_config("report:\n  availability: {target: 0.995, step: 0.0005}\n").report
    assert r.availability.target == Decimal("0.995")
    assert r.availability.step == Decimal("0.0005")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("report:\n  step_seconds: 7\n", "f.yml:2: report.step_seconds: must divide 3600"),
        (
            "report:\n  availability: {rounding: up}\n",
            "f.yml:2: report.availability.rounding: input should be 'floor', 'ceil' or 'linear'",
        ),
        ("report:\n  availability: {target: 99.9}\n", "report.availability.target"),
        ("report:\n  tickets: {url: ftp://x}\n", "report.tickets.url"),
        ("report:\n  fee: 1\n", "f.yml:2: report.fee: unknown key"),
        ("report:\n  caps: {indicators: {uptime: 5}}\n", "unknown indicator 'uptime'"),
        ("report:\n  response: {tolerance_window: week}\n", "report.response.tolerance_window"),
    ],
)
def test_bad_report_config(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(text, "f.yml")


def test_docs_example_is_valid() -> None:
    from helpers import ROOT

    text = (ROOT / "docs" / "sla.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert block, "docs/sla.md has no yaml example"
    config = parse_config(block[1], "docs/sla.md")
    assert config.report.monthly_fee == 4000  # 48 000 a year
    assert config.calendar.build().is_holiday(date(2027, 1, 1))
