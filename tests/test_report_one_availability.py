"""Issue 16 item 11: one availability. The signed report, the big screen (overview 本月可用性)
and the alert (AvailabilityBelowTarget's platform:sla_availability:avg30d) read the same
recording rule, platform:sla_availability:up, and give the same number over the same
backfilled data (tests/fx_report.py: the shipped rule evaluated over the raw probe series).

The 30 days from 2026-10-02 00:00 to 2026-11-01 00:00 (China time) hold 43,200 minutes: the
platform is down 90 (3 Oct, login) + 60 (5 Oct, both) + 50 (15 Oct, home) = 200 min and
missing 115 min (20 Oct, home without data after the 5 min look-back):
42,885 / 43,085 = 99.5358 %.

Before, three figures: the report 99.5358 % (any failing probe), the dashboard and
job:sla_probe_success:avg30d the mean of the targets' own ratios (home 110 of 43,085 min down,
login 150 of 43,200): (0.997447 + 0.996528) / 2 = 99.6987 %, and the alert judged each
target alone (home 99.7447 %, login 99.6528 %).
"""

from __future__ import annotations

import json
from datetime import datetime
from fractions import Fraction

import pytest
import yaml
from helpers import ROOT

from sscp_ops.config import parse_config
from sscp_ops.holiday_calendar import CHINA_TZ
from sscp_ops.report.build import availability_section
from sscp_ops.report.period import Period
from sscp_ops.report.sources import HttpPrometheus

pytestmark = pytest.mark.slow

START = datetime(2026, 10, 2, tzinfo=CHINA_TZ)
END = datetime(2026, 11, 1, tzinfo=CHINA_TZ)
EXPECTED = Fraction(43200 - 200 - 115, 43200 - 115)  # 42,885 / 43,085


def _panel_expr(board: str, title: str) -> str:
    data = json.loads((ROOT / "grafana" / "dashboards" / board).read_text(encoding="utf-8"))
    panels = [p for p in data["panels"] if p.get("title") == title]
    panels += [q for p in data["panels"] for q in p.get("panels", []) if q.get("title") == title]
    [panel] = panels
    [target] = panel["targets"]
    return target["expr"]


def _rule_expr(record: str) -> str:
    groups = yaml.safe_load((ROOT / "rules" / "availability.rules.yml").read_text())["groups"]
    return next(r["expr"] for g in groups for r in g["rules"] if r.get("record") == record)


def _alert_expr(alert: str) -> str:
    groups = yaml.safe_load((ROOT / "rules" / "availability.rules.yml").read_text())["groups"]
    return next(r["expr"] for g in groups for r in g["rules"] if r.get("alert") == alert)


def test_report_dashboard_and_alert_give_one_availability(report_prometheus: str) -> None:
    prom = HttpPrometheus(report_prometheus)
    cfg = parse_config("report: {}\n")
    period = Period("period", "30d", "30 天", START, END)
    section, _ = availability_section(period, cfg.report, cfg.calendar.build(), prom)
    report = section["whole"]
    assert (report["up_seconds"], report["down_seconds"], report["missing_seconds"]) == (
        42885 * 60,
        200 * 60,
        115 * 60,
    )
    assert report["ratio"] == float(EXPECTED)

    # The last instant inside the period: a range [t - 30d, t] then holds exactly its minutes.
    at = END.timestamp() - 1

    # The big screen: Grafana's $__range over these 30 days.
    screen_expr = _panel_expr("overview.json", "本月可用性").replace("$__range", "30d")
    [(_, screen)] = prom.query(screen_expr, at)

    # The alert: AvailabilityBelowTarget compares platform:sla_availability:avg30d, whose
    # expression is evaluated here as Prometheus' rule manager would at that instant.
    assert "platform:sla_availability:avg30d" in _alert_expr("AvailabilityBelowTarget")
    [(_, alert)] = prom.query(_rule_expr("platform:sla_availability:avg30d"), at)

    assert screen == pytest.approx(float(EXPECTED), abs=1e-12)
    assert alert == pytest.approx(float(EXPECTED), abs=1e-12)
    assert round(float(EXPECTED) * 100, 4) == 99.5358

    # The downtime the screen shows is the report's down time.
    down_expr = _panel_expr("overview.json", "本月不可用时长").replace("$__range", "30d")
    [(_, down)] = prom.query(down_expr, at)
    assert down == 200 * 60

    # And its missing time is the report's (issue 16 item 12: shown separately on both).
    missing_expr = (
        _panel_expr("overview.json", "本月数据缺失")
        .replace("$__range_s", str(30 * 86400))
        .replace("$__range", "30d")
    )
    [(_, missing)] = prom.query(missing_expr, at)
    assert missing == report["missing_seconds"] == 115 * 60
