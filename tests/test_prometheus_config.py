"""The shipped Prometheus config: `promtool check config`, what it scrapes, and a real
Prometheus loading it with the shipped rules against our real exporter."""

from __future__ import annotations

import subprocess
import time

import yaml
from fx_prometheus import SHIPPED_CONFIG, shipped_config
from helpers import ROOT, require_binary


def test_promtool_check_config() -> None:
    promtool = require_binary("promtool")
    result = subprocess.run(
        [promtool, "check", "config", str(SHIPPED_CONFIG)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rule_files = sorted((ROOT / "rules").glob("*.rules.yml"))
    assert f"SUCCESS: {len(rule_files)} rule files found" in result.stdout


def test_scrapes_exporter_and_webhook_and_alerts_to_local_alertmanager() -> None:
    config = yaml.safe_load(SHIPPED_CONFIG.read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert jobs["sscp-ops"]["static_configs"] == [{"targets": ["127.0.0.1:9810"]}]
    webhook = jobs["sscp-ops-webhook"]
    assert webhook["static_configs"] == [{"targets": ["127.0.0.1:9811"]}]
    assert webhook.get("metrics_path", "/metrics") == "/metrics"
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["127.0.0.1:9093"]
    # The jobs TargetDown expects are the jobs the config scrapes.
    thresholds = yaml.safe_load((ROOT / "rules" / "thresholds.yml").read_text())
    assert set(thresholds["expected_jobs"]) <= set(jobs)


def test_real_prometheus_evaluates_shipped_rules(prometheus, exporter, probe_site) -> None:
    base = exporter(
        "exporter: {collectors: {host: true, probe: true}}\n"
        "targets:\n  probe:\n"
        f"    - {{name: home, url: '{probe_site.http}/ok', keyword: 智慧监管}}\n"
    )
    prom = prometheus(shipped_config({"sscp-ops": [base]}))
    prom.wait_for('up{job="sscp-ops"} == 1')
    prom.wait_for("instance:node_cpu_utilisation:rate5m")
    assert prom.wait_for('target:sla_probe_success:avg5m{target="home"} == 1')
    # Every shipped rule loaded and evaluates without error against real data.
    deadline = time.monotonic() + 20
    while True:
        groups = prom.rule_groups()
        rules = [r for g in groups for r in g["rules"]]
        if all(r.get("lastEvaluation", "").startswith("2") for r in rules) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(0.5)
    files = {g["file"] for g in groups}
    assert files == {str(p) for p in (ROOT / "rules").glob("*.rules.yml")}
    assert [r["name"] for r in rules if r["health"] != "ok"] == []
    alerts = {(a["labels"]["alertname"], a["labels"].get("job")) for a in prom.alerts()}
    assert ("Watchdog", None) in alerts
    # The webhook job is not configured in this test: absent() notices it.
    assert ("TargetDown", "sscp-ops-webhook") in alerts
    assert not any(name == "PlatformProbeFailing" for name, _ in alerts)
