"""The systemd timer and service that produce the monthly report on the 1st of each month."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import subprocess
from datetime import UTC, datetime

from helpers import ROOT, require_binary

from sscp_ops.commands.report import previous_period
from sscp_ops.holiday_calendar import CHINA_TZ

UNITS = ROOT / "deploy" / "systemd"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment]
    parser.read(UNITS / name)
    return parser


def test_timer_fires_on_the_first_at_two_china_time() -> None:
    tool = require_binary("systemd-analyze")
    spec = unit("sscp-ops-report-monthly.timer")["Timer"]["OnCalendar"]
    out = subprocess.run(
        [tool, "calendar", "--iterations=3", spec],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TZ": "UTC"},
    ).stdout
    elapses = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) UTC", out)
    assert len(elapses) == 3, out
    for when in elapses:
        local = datetime.fromisoformat(when).replace(tzinfo=UTC).astimezone(CHINA_TZ)
        assert (local.day, local.hour, local.minute) == (1, 2, 0)
    assert unit("sscp-ops-report-monthly.timer")["Timer"]["Persistent"] == "true"


def test_service_reports_last_month() -> None:
    service = unit("sscp-ops-report-monthly.service")["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[:2] == ["/bin/sh", "-c"]
    script = argv[2].replace("%%", "%")
    month_expr = script.split(" && ")[0]  # month=$(...)
    done = subprocess.run(
        ["/bin/sh", "-c", f'{month_expr}; echo "$month"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == previous_period("monthly", datetime.now(CHINA_TZ))
    assert "report monthly" in script and "--out" in script


def test_previous_period() -> None:
    assert previous_period("monthly", datetime(2026, 1, 1, 2, tzinfo=CHINA_TZ)) == "2025-12"
    assert previous_period("monthly", datetime(2026, 11, 1, 2, tzinfo=CHINA_TZ)) == "2026-10"
    assert previous_period("quarterly", datetime(2026, 1, 5, tzinfo=CHINA_TZ)) == "2025Q4"
    assert previous_period("quarterly", datetime(2026, 10, 1, tzinfo=CHINA_TZ)) == "2026Q3"
    assert previous_period("annual", datetime(2026, 1, 1, tzinfo=CHINA_TZ)) == "2025"
