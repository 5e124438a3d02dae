"""Availability, holiday availability and deductions from a REAL Prometheus (tests/fx_report.py).

Every expected number is computed by hand from the known outages, not by the code under test.
"""

from __future__ import annotations

from fractions import Fraction

import fx_report as fx
import pytest

from sscp_ops.config import parse_config
from sscp_ops.holiday_calendar import CHINA_TZ
from sscp_ops.report.build import availability_section, resources_section
from sscp_ops.report.period import month
from sscp_ops.report.sources import HttpPrometheus, SourceError

pytestmark = pytest.mark.slow

OCT = month("2026-10", CHINA_TZ)


def config(extra: str = ""):
    return parse_config(f"report:\n  monthly_fee: 100000\n{extra}")


def test_availability_and_holidays(report_prometheus: str) -> None:
    cfg = config()
    section, (whole, holiday) = availability_section(
        OCT, cfg.report, cfg.calendar.build(), HttpPrometheus(report_prometheus)
    )
    w = section["whole"]
    assert w["down_seconds"] == fx.DOWN_MINUTES * 60  # 200 min, the 1 Nov one excluded
    assert w["missing_seconds"] == fx.MISSING_MINUTES * 60  # 115 min: missing, not up
    assert w["up_seconds"] == (fx.MONTH_MINUTES - fx.DOWN_MINUTES - fx.MISSING_MINUTES) * 60
    expected = Fraction(
        fx.MONTH_MINUTES - fx.DOWN_MINUTES - fx.MISSING_MINUTES,
        fx.MONTH_MINUTES - fx.MISSING_MINUTES,
    )
    assert w["ratio"] == float(expected)  # 44,325 / 44,525 = 99.5508 % (shown, not judged)
    # Issue 16: holiday time is judged on the holiday scale only. The normal scale covers
    # 44,640 - 10,080 = 34,560 min, 115 missing, 50 down: 34,395 / 34,445 = 99.8548 %;
    # 0.0452 % below 99.9 % = 0.452 step of 0.1 %, whole steps only: 0 % (was 4 % when the
    # whole month was judged and a started step counted: 3.49 -> 4).
    n = section["normal"]
    assert (n["up_seconds"], n["down_seconds"]) == (34395 * 60, 50 * 60)
    assert whole.measured == 34395 / 34445
    assert whole.deduction.percent == 0
    assert whole.passed is False
    assert "0.452 档（按整档计，不足一档不计，计 0 档）" in whole.deduction.arithmetic

    h = section["holiday"]
    assert h["down_seconds"] == fx.HOLIDAY_DOWN_MINUTES * 60
    assert h["up_seconds"] + h["down_seconds"] == fx.HOLIDAY_MINUTES * 60
    assert h["ratio"] == (fx.HOLIDAY_MINUTES - fx.HOLIDAY_DOWN_MINUTES) / fx.HOLIDAY_MINUTES
    # 98.512 %: 1.388 % below 99.9 % = 1.388 steps of 1 %, whole steps: 1 % (ceil gave 2 %)
    assert holiday.deduction.percent == 1
    assert section["holidays"][0]["name"] == "国庆节"

    outages = [(o["start"], o["seconds"] // 60, o["targets"]) for o in section["outages"]]
    assert outages == [
        ("2026-10-03T02:00:00+08:00", 90, ["login"]),
        ("2026-10-05T10:00:00+08:00", 60, ["home", "login"]),
        ("2026-10-15T14:00:00+08:00", 50, ["home"]),
    ]
    assert section["missing_intervals"] == [
        {"start": "2026-10-20T00:05:00+08:00", "end": "2026-10-20T02:00:00+08:00", "seconds": 6900}
    ]
    days = {d["date"]: d for d in section["daily"]}
    assert len(days) == 31
    assert days["2026-10-15"]["down_seconds"] == 50 * 60
    assert days["2026-10-20"]["missing_seconds"] == 115 * 60
    assert days["2026-10-03"]["holiday"] and not days["2026-10-15"]["holiday"]
    assert section["targets"]["login"]["down_seconds"] == 150 * 60


def test_old_reading_from_config(report_prometheus: str) -> None:
    """The pre-issue-16 reading, still available as settings: the whole month on the normal
    scale and a started step counting: 3.492 -> 4 %; holidays 1.388 -> 2 %."""
    cfg = config(
        "  holiday_downtime: both_scales\n  availability: {rounding: ceil}\n"
        "  holiday_availability: {rounding: ceil, step: 0.01}\n"
    )
    _, (whole, holiday) = availability_section(
        OCT, cfg.report, cfg.calendar.build(), HttpPrometheus(report_prometheus)
    )
    assert whole.deduction.percent == 4
    assert holiday.deduction.percent == 2


def test_month_without_data_is_missing_not_full(report_prometheus: str) -> None:
    cfg = config()
    section, (whole, holiday) = availability_section(
        month("2026-08", CHINA_TZ),
        cfg.report,
        cfg.calendar.build(),
        HttpPrometheus(report_prometheus),
    )
    assert section["whole"]["ratio"] is None
    assert whole.passed is None and whole.measured_text == "数据缺失"
    assert holiday.passed is None  # August 2026 has no statutory holiday


def test_resources_per_host(report_prometheus: str) -> None:
    res = resources_section(OCT, HttpPrometheus(report_prometheus))
    app, db = res["hosts"]["app1:9100"], res["hosts"]["db1:9100"]
    assert app["cpu"]["avg"] == pytest.approx(0.25, abs=1e-6)
    assert db["memory"]["peak"] == pytest.approx(0.9, abs=1e-6)
    assert app["net_out"]["avg"] == pytest.approx(5e6, rel=1e-6)
    # disk grows 70 % -> 85 % over 31.25 days: 0.48 % a day
    assert app["disk"]["growth_per_day"] == pytest.approx(0.15 / 31.25, rel=1e-3)
    assert res["services"]["node"] == 1.0


def test_unreachable_prometheus_is_a_source_error() -> None:
    from helpers import free_port

    with pytest.raises(SourceError, match="prometheus"):
        HttpPrometheus(f"http://127.0.0.1:{free_port()}").query_range("up", 0, 120, 60)


def test_slow_queries_with_advice(report_prometheus: str) -> None:
    from sscp_ops.report.build import slow_queries_section

    db = slow_queries_section(OCT, HttpPrometheus(report_prometheus))
    rows = db["statements"]
    assert [r["digest"] for r in rows] == ["d1", "d3", "d2"]  # by total time
    d1, d3, d2 = rows
    assert d1["seconds"] == pytest.approx(2000 * 31, rel=1e-3)
    assert d1["calls"] == pytest.approx(1000 * 31, rel=1e-3)
    assert d1["avg_seconds"] == pytest.approx(2.0, rel=1e-3)
    assert any("索引" in a for a in d1["advice"])
    assert any("5000 倍" in a for a in d1["advice"])
    assert any("EXPLAIN" in a for a in d1["advice"])
    assert any("sort_buffer_size" in a for a in d3["advice"])
    assert d2["advice"] == ["耗时主要来自调用次数，建议评估缓存或合并请求"]
    assert db["slow_queries"]["db1:9100"] == pytest.approx(1000 * 31, rel=1e-3)


def test_requests_under_2s(report_prometheus: str) -> None:
    """Issue 16 item 10: web1 answered 100 requests a minute in October, 10 of them in exactly
    2.000 s. 44,640 min x 100 = 4,464,000 requests; under 2 s (le="1.999") 44,640 x 90 =
    4,017,600 = 90 %, below the 95 % objective (the old le="2.0" reading said 100 %)."""
    from sscp_ops.report.build import requests_under_2s_section

    cfg = config()
    section = requests_under_2s_section(OCT, cfg.report, HttpPrometheus(report_prometheus))
    assert section["bucket_le"] == "1.999"
    assert section["requests"] == pytest.approx(4_464_000, rel=1e-9)
    assert section["under_2s"] == pytest.approx(4_017_600, rel=1e-9)
    assert section["ratio"] == pytest.approx(0.9, rel=1e-9)
    assert section["passed"] is False
    assert section["targets"]["web1"]["ratio"] == pytest.approx(0.9, rel=1e-9)
    assert "恰好 2.000 秒不计入" in section["rule"]


def test_requests_under_2s_without_data_has_no_verdict(report_prometheus: str) -> None:
    from sscp_ops.report.build import requests_under_2s_section

    cfg = config()
    aug = month("2026-08", CHINA_TZ)
    section = requests_under_2s_section(aug, cfg.report, HttpPrometheus(report_prometheus))
    assert section["ratio"] is None and section["passed"] is None
