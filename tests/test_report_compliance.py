"""The report's patch and account-review sections, from the series the patches collector and
``sscp-ops review accounts`` (through the textfile collector) put in Prometheus, read back from a
real Prometheus holding a backfilled October 2026 (issue 16 item 17: no placeholders)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import fx_report as fx
import pytest
from fx_prometheus import run_prometheus

from sscp_ops.config import parse_config
from sscp_ops.holiday_calendar import CHINA_TZ
from sscp_ops.report.build import Sources, build_report
from sscp_ops.report.compliance import account_review_section, patches_section
from sscp_ops.report.period import month, quarter
from sscp_ops.report.render import render_html
from sscp_ops.report.sources import HttpPrometheus

t = fx.t
START, END, EVERY = t(1, 0), t(1, 0, 0, 11), 300
PATCHED = t(20, 12)  # app1 installs its updates
REVIEWED = t(10, 9)  # the quarter's account review
APP, DB = 'instance="app1:9810",job="sscp-ops"', 'instance="db1:9810",job="sscp-ops"'


def _value(name: str, inst: str, ts: float) -> float | None:
    app = inst == APP
    after = ts >= PATCHED
    return {
        "sscp_os_security_updates_pending": (0 if after else 31) if app else 5,
        "sscp_os_updates_pending": (3 if after else 126) if app else 40,
        "sscp_os_last_update_timestamp_seconds": (
            (PATCHED if after else t(1, 9, 0, 9)) if app else t(1, 9, 0, 8)
        ),
        "sscp_os_reboot_required": 0 if app else 1,
    }[name]


def compliance_openmetrics(path) -> None:
    with path.open("w") as out:
        for name in (
            "sscp_os_security_updates_pending",
            "sscp_os_updates_pending",
            "sscp_os_last_update_timestamp_seconds",
            "sscp_os_reboot_required",
        ):
            out.write(f"# TYPE {name} gauge\n")
            for inst in (APP, DB):
                ts = START
                while ts < END:
                    out.write(f"{name}{{{inst}}} {_value(name, inst, ts)} {ts:.0f}\n")
                    ts += EVERY
        out.write("# TYPE sscp_account_review_last_run_timestamp_seconds gauge\n")
        ts = REVIEWED
        while ts < END:
            out.write(
                f"sscp_account_review_last_run_timestamp_seconds{{{APP}}} {REVIEWED} {ts:.0f}\n"
            )
            ts += EVERY
        out.write("# TYPE sscp_account_review_findings gauge\n")
        for kind, n in (("os_sudo", 2), ("mysql_any_host", 1), ("os_uid0", 0)):
            ts = REVIEWED
            while ts < END:
                out.write(f'sscp_account_review_findings{{kind="{kind}",{APP}}} {n} {ts:.0f}\n')
                ts += EVERY
        out.write("# EOF\n")


@pytest.fixture(scope="module")
def compliance_prometheus(tmp_path_factory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("compliance-prom")
    om = tmp / "series.om"
    compliance_openmetrics(om)
    fx.backfill(om, tmp / "tsdb")
    config = "global: {scrape_interval: 1h}\nscrape_configs: []\n"
    with run_prometheus(config, tmp, timeout=60, tsdb=tmp / "tsdb", retention="100y") as prom:
        yield prom.url


def test_patches_section_per_host(compliance_prometheus: str) -> None:
    section = patches_section(month("2026-10", CHINA_TZ), HttpPrometheus(compliance_prometheus))
    assert section["hosts"] == [
        {
            "instance": "app1:9810",
            "security_pending": 0,
            "pending": 3,
            "security_pending_max": 31,
            "last_update": PATCHED,
            "updated_in_period": True,
            "reboot_required": False,
        },
        {
            "instance": "db1:9810",
            "security_pending": 5,
            "pending": 40,
            "security_pending_max": 5,
            "last_update": t(1, 9, 0, 8),
            "updated_in_period": False,
            "reboot_required": True,
        },
    ]
    # September: nothing collected yet
    assert patches_section(month("2026-09", CHINA_TZ), HttpPrometheus(compliance_prometheus)) == {
        "hosts": []
    }


def test_account_review_section(compliance_prometheus: str) -> None:
    prom = HttpPrometheus(compliance_prometheus)
    section = account_review_section(quarter("2026Q4", CHINA_TZ), prom)
    assert section == {
        "hosts": [
            {
                "instance": "app1:9810",
                "last_run": REVIEWED,
                "reviewed_in_period": True,
                "findings": {"mysql_any_host": 1, "os_sudo": 2},
                "total": 3,
            }
        ]
    }
    assert account_review_section(quarter("2026Q3", CHINA_TZ), prom) == {"hosts": []}


@pytest.mark.parametrize("kind", ["monthly", "quarterly"])
def test_report_has_no_placeholders(compliance_prometheus: str, kind: str) -> None:
    cfg = parse_config("report: {events: {enabled: false}}\n").report
    period = month("2026-10", CHINA_TZ) if kind == "monthly" else quarter("2026Q4", CHINA_TZ)
    calendar = parse_config("{}").calendar.build()
    report = build_report(
        period, cfg, calendar, Sources(HttpPrometheus(compliance_prometheus)), datetime.now(UTC)
    )
    html = render_html(report, CHINA_TZ)
    assert "尚未接入本报告" not in html
    assert "db1:9810" in html and "需要重启" in html
    if kind == "quarterly":
        assert "全局 ALL 权限" not in html  # only kinds found are listed
        assert "未经批准的 sudo 权限 2 项" in html and "允许任意主机（%）登录 1 项" in html
    else:
        assert report["account_review"]["hosts"][0]["total"] == 3
    assert len(report["patches"]["hosts"]) == 2
