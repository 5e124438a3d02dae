"""Journeys as probes: a real ``sscp-ops exporter`` runs them on their own schedule, a scrape
reads the last results, and Prometheus with the shipped rule raises JourneyFailed naming the
broken step."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from fx_journeys import journey_yaml
from fx_prometheus import RULES, scrape_config
from helpers import parse_exposition, promtool_check_metrics, wait_for

from exporters.journeys import JourneyCollector, JourneyScheduler
from sscp_ops.config import parse_config
from sscp_ops.journeys.runner import JourneyResult, StepResult

STEPS = ["登录页", "登录", "企业查询", "检查表单", "提交检查", "数据接口", "清理测试数据"]


def _value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _config(platform, password, interval: int = 300) -> str:
    return "exporter: {collectors: {host: false}}\njourneys:\n" + journey_yaml(
        platform.base, password, interval=interval, availability="true"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("breaks", "step"),
    [("renamed_field", "登录"), ("slow_search", "企业查询"), ("json_field_removed", "数据接口")],
)
def test_exporter_exports_the_failing_step_of_a_broken_upgrade(
    platform, probe_password, exporter, breaks, step
) -> None:
    platform.upgrade(breaks)
    base = exporter(_config(platform, probe_password))

    def scrape() -> dict:
        return parse_exposition(requests.get(f"{base}/metrics", timeout=10).text)

    samples = wait_for(
        lambda: (
            (s := scrape())
            and _value(s, "sla_journey_success", journey="inspection-form") is not None
            and s
        ),
        timeout=20,
        what="the first journey run",
    )
    j = {"journey": "inspection-form"}
    assert _value(samples, "sla_journey_success", **j) == 0
    assert _value(samples, "sla_journey_failed_step_info", **j, step=step) == 1
    failed = [k for k in samples if k[0] == "sla_journey_failed_step_info"]
    assert len(failed) == 1  # only the first failing step
    passed = STEPS[: STEPS.index(step)]
    got = {s: _value(samples, "sla_journey_step_success", **j, step=s) for s in STEPS}
    assert got == {s: 1 if s in passed else 0 for s in STEPS} | (
        {"清理测试数据": 1} if step == "数据接口" else {}
    )
    if step == "企业查询":
        assert _value(samples, "sla_journey_step_duration_seconds", **j, step=step) >= 2.3
    # availability: true -> counted like a probe target
    assert _value(samples, "sla_probe_success", target="inspection-form") == 0
    assert abs(time.time() - _value(samples, "sla_journey_last_run_timestamp_seconds", **j)) < 60
    assert platform.leftovers() == []


@pytest.mark.slow
def test_scrapes_read_the_last_result_without_running_the_journey(
    platform, probe_password, exporter
) -> None:
    base = exporter(_config(platform, probe_password))
    url = f"{base}/metrics"
    text = wait_for(
        lambda: "sla_journey_success{" in (t := requests.get(url, timeout=10).text) and t,
        timeout=20,
        what="the first journey run",
    )
    before = platform.state.requests
    timings = []
    for _ in range(20):
        start = time.perf_counter()
        text = requests.get(url, timeout=10).text
        timings.append(time.perf_counter() - start)
    samples = parse_exposition(text)

    assert platform.state.requests == before == 7  # one run, 7 requests; 21 scrapes
    assert _value(samples, "sla_journey_success", journey="inspection-form") == 1
    assert _value(samples, "sla_probe_success", target="inspection-form") == 1
    assert not [k for k in samples if k[0] == "sla_journey_failed_step_info"]
    took = _value(samples, "sscp_exporter_collector_duration_seconds", collector="journeys")
    assert took is not None and took < 0.05  # reads a dict, no I/O
    assert sorted(timings)[10] < 0.5
    check = promtool_check_metrics(text)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.slow
def test_prometheus_raises_journey_failed_naming_the_step(
    platform, probe_password, exporter, prometheus
) -> None:
    platform.upgrade("json_field_removed")
    base = exporter(_config(platform, probe_password))
    prom = prometheus(
        scrape_config({"sscp-ops": [base]}, rule_files=[RULES / "journeys.rules.yml"])
    )

    def journey_alert():
        alerts = [a for a in prom.alerts() if a["labels"]["alertname"] == "JourneyFailed"]
        return alerts or None

    (alert,) = wait_for(journey_alert, timeout=30, what="JourneyFailed pending")
    assert alert["state"] == "pending"  # for: 2m; the expression already matches
    assert alert["labels"]["journey"] == "inspection-form"
    assert alert["labels"]["step"] == "数据接口"
    assert alert["annotations"]["summary"] == "业务流程拨测失败：inspection-form 的步骤「数据接口」"
    assert "在步骤「数据接口」失败" in alert["annotations"]["description"]


def _result(name: str, ok: bool) -> JourneyResult:
    step = StepResult("s", "passed" if ok else "failed", 0.1, 200, "" if ok else "why")
    return JourneyResult(name, "sscp-probe-x", 1000.0, 0.1, (step,))


def test_scheduler_runs_each_journey_on_its_own_schedule_and_stops_promptly() -> None:
    config = parse_config(
        "journeys:\n"
        + "".join(
            f"  - {{name: {n}, interval: {i}, steps: [{{name: s, request: {{url: 'http://x/'}}}}]}}\n"
            for n, i in (("fast", 10), ("slow", 600))
        )
    )
    runs: list[str] = []
    ran = threading.Event()

    def run(journey):
        runs.append(journey.name)
        if len(runs) >= 2:
            ran.set()
        return _result(journey.name, journey.name == "fast")

    scheduler = JourneyScheduler(config.journeys, run=run)
    collector = JourneyCollector(scheduler)
    collector.start()
    try:
        assert ran.wait(5)
        names = {m.name: m for m in collector.collect(1.0)}
        assert [s.value for s in names["sla_journey_success"].samples] == [1, 0]
        assert [s.labels for s in names["sla_journey_failed_step_info"].samples] == [
            {"journey": "slow", "step": "s"}
        ]
    finally:
        start = time.monotonic()
        collector.close()
        assert time.monotonic() - start < 1  # no waiting out the 600 s interval
    assert sorted(runs) == ["fast", "slow"]  # once each: the next runs are 10 s / 600 s away
