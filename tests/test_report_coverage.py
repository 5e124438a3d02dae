"""A report period older than the data Prometheus holds is flagged 证据不足 (issue 16 item 13):
the earliest sample is ``prometheus_tsdb_lowest_timestamp_seconds`` of the Prometheus that
answers (the shipped config scrapes itself), here a real Prometheus over the backfilled
October 2026 of the report tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import fx_report as fx
import pytest
from fx_prometheus import Prometheus
from helpers import free_port, require_binary, running

from sscp_ops.config import parse_config
from sscp_ops.holiday_calendar import CHINA_TZ
from sscp_ops.report.build import Sources, build_report
from sscp_ops.report.coverage import data_start
from sscp_ops.report.period import month
from sscp_ops.report.render import render_html
from sscp_ops.report.sources import HttpPrometheus


@pytest.fixture(scope="module")
def self_scraping_prometheus(tmp_path_factory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("coverage-prom")
    om = fx.write_openmetrics(
        tmp / "series.om", fx.FAILURES, fx.GAPS, [], fx.START.timestamp(), fx.END.timestamp()
    )
    fx.backfill(om, tmp / "tsdb")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - {{job_name: prometheus, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}\n"
    )
    cmd = [
        require_binary("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=100y",
        "--log.level=warn",
    ]
    with running(cmd, ready_url=f"{url}/-/ready", timeout=60):
        Prometheus(url, config).wait_for("prometheus_tsdb_lowest_timestamp_seconds")
        yield url


def _report(url: str, label: str) -> dict:
    cfg = parse_config("report: {events: {enabled: false}}\n").report
    calendar = parse_config("{}").calendar.build()
    return build_report(
        month(label, CHINA_TZ), cfg, calendar, Sources(HttpPrometheus(url)), datetime.now(UTC)
    )


def test_data_start_is_the_earliest_sample(self_scraping_prometheus: str) -> None:
    assert data_start(HttpPrometheus(self_scraping_prometheus)) == fx.START.timestamp()


def test_period_before_the_data_is_flagged(self_scraping_prometheus: str) -> None:
    september = _report(self_scraping_prometheus, "2026-09")
    october = _report(self_scraping_prometheus, "2026-10")
    assert september["data_coverage"] == {
        "data_start": fx.START.timestamp(),
        "sufficient": False,
        "warning": "证据不足：Prometheus 现存最早数据为 2026-09-30 22:00，"
        "晚于本期开始（2026-09-01 00:00）；此前的监控数据已删除或未采集，"
        "本期可用性等指标仅按现存数据计算。",
    }
    assert october["data_coverage"] == {"data_start": fx.START.timestamp(), "sufficient": True}
    # the coverage warning (other 证据不足 lines, e.g. for missing probe data, are not this one)
    assert "Prometheus 现存最早数据" in render_html(september, CHINA_TZ)
    assert "Prometheus 现存最早数据" not in render_html(october, CHINA_TZ)


def test_without_the_self_scrape_the_coverage_is_unknown(report_prometheus: str) -> None:
    report = _report(report_prometheus, "2026-09")
    assert report["data_coverage"] == {"data_start": None, "sufficient": None}
