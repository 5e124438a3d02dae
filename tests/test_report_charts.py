"""Charts and formatting: missing data is drawn as missing, never as 0 or 100 %."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from sscp_ops.holiday_calendar import CHINA_TZ
from sscp_ops.report import charts
from sscp_ops.report.penalty import pct
from sscp_ops.report.render import _count_top, _duration, by_month

SVG = "{http://www.w3.org/2000/svg}"


def bars(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)  # well-formed XML
    return [r for r in root.iter(f"{SVG}rect")]


def test_missing_bar_is_grey_and_labelled() -> None:
    svg = charts.bar_chart(["1", "2"], [0.995, None], 0.99, 1.0, lambda v: pct(v, 2))
    rects = bars(svg)
    assert [r.get("fill") for r in rects] == [charts.COLOURS[0], charts.MISSING_FILL]
    assert rects[1].find(f"{SVG}title").text == "缺失"
    assert "缺失</text>" in svg


def test_by_month_excludes_missing_time() -> None:
    daily = [
        {"date": "2026-09-30", "up_seconds": 0, "down_seconds": 0},
        {"date": "2026-10-01", "up_seconds": 86400 - 600, "down_seconds": 600},
        {"date": "2026-10-02", "up_seconds": 43200, "down_seconds": 0},
    ]
    labels, ratios = by_month(daily)
    assert labels == ["9月", "10月"]
    assert ratios == [None, (86400 - 600 + 43200) / (86400 + 43200)]


def test_line_chart_without_data_says_so() -> None:
    svg = charts.line_chart({"CPU": []}, 0, 86400, CHINA_TZ, lambda v: pct(v, 0), 0, 1)
    assert "数据缺失" in svg
    ET.fromstring(svg)


def test_timeline_marks_outages() -> None:
    svg = charts.timeline_chart(0, 86400, CHINA_TZ, [(3600, 3660)], [(7200, 9000)])
    fills = [r.get("fill") for r in bars(svg)]
    assert fills == ["#4caf50", charts.MISSING_FILL, "#c62828"]


def test_formats() -> None:
    assert pct(1.0, 0) == "100%" and pct(0.9995, 3) == "99.95%"
    assert _duration(42) == "42 秒" and _duration(3000) == "50 分钟"
    assert _duration(7200) == "2.00 小时" and _duration(None) == "—"
    assert _count_top([1]) == 4 and _count_top([9]) == 12
