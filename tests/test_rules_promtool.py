"""The shipped rules: `promtool check rules`, one `promtool test rules` file per rule file,
and the alert contract of issue 4 (names, for:, severity, Chinese annotations, runbooks)."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from helpers import ROOT, require_binary

RULES = ROOT / "rules"
RULE_FILES = sorted(RULES.glob("*.rules.yml"))
AREAS = [p.name.removesuffix(".rules.yml") for p in RULE_FILES]

# The alert names other parts and the operations manual rely on (issue 4's table).
CONTRACT = {
    "HostHighCpuUsage": {"critical"},
    "HostMemoryHigh": {"warning"},
    "HostDiskSpaceLow": {"warning"},
    "HostDiskSpaceCritical": {"critical"},
    "HostDiskWillFillIn24h": {"warning"},
    "HostNetworkBandwidthHigh": {"warning"},
    "TargetDown": {"critical"},
    "NginxDown": {"critical"},
    "TomcatDown": {"critical"},
    "RedisDown": {"critical"},
    "MySQLDown": {"critical"},
    "TomcatThreadPoolSaturated": {"warning"},
    "RedisMemoryHigh": {"warning"},
    "MySQLConnectionsHigh": {"warning"},
    "MySQLSlowQueries": {"warning"},
    "MySQLReplicationLag": {"critical"},
    "PlatformProbeFailing": {"critical"},
    "PlatformSlowResponse": {"warning"},
    "AvailabilityBudgetBurnFast": {"critical"},
    "AvailabilityBudgetBurnSlow": {"warning"},
    "AvailabilityBelowTarget": {"critical"},
    "TlsCertificateExpiringSoon": {"warning", "critical"},
    "ExporterCollectorFailing": {"warning"},
    "Watchdog": {"none"},
}
CJK = re.compile(r"[\u4e00-\u9fff]")


def _alerts() -> list[tuple[str, dict]]:
    out = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            out += [(path.name, r) for r in group["rules"] if "alert" in r]
    return out


def test_promtool_check_rules() -> None:
    promtool = require_binary("promtool")
    result = subprocess.run(
        [promtool, "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout


def test_one_test_file_per_rule_file() -> None:
    tests = sorted(p.name.removesuffix(".test.yml") for p in (RULES / "tests").glob("*.test.yml"))
    assert tests == AREAS
    for area in AREAS:
        doc = yaml.safe_load((RULES / "tests" / f"{area}.test.yml").read_text())
        assert doc["rule_files"] == [f"../{area}.rules.yml"]


@pytest.mark.parametrize("area", AREAS)
def test_promtool_test_rules(area: str) -> None:
    promtool = require_binary("promtool")
    result = subprocess.run(
        [promtool, "test", "rules", f"{area}.test.yml"],
        cwd=RULES / "tests",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_contract_alert_names_and_severities() -> None:
    found: dict[str, set[str]] = {}
    for _, rule in _alerts():
        found.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
    # Other areas (backups, tickets, security) add alerts of their own; the contract's must
    # all be there with exactly their severities.
    assert {name: found.get(name) for name in CONTRACT} == CONTRACT


ALERTS = _alerts()


@pytest.mark.parametrize(
    ("file", "rule"), ALERTS, ids=[f"{file}:{rule['alert']}" for file, rule in ALERTS]
)
def test_alert_shape(file: str, rule: dict) -> None:
    name = rule["alert"]
    where = f"{file}: {name}"
    assert "for" in rule, f"{where}: no for:"
    assert set(rule.get("labels", {})) == {"severity"}, (
        f"{where}: labels {sorted(rule.get('labels', {}))}: only severity (no $value or extra "
        "labels)"
    )
    notes = rule.get("annotations", {})
    assert set(notes) == {"summary", "description", "runbook_url"}, (
        f"{where}: annotations {sorted(notes)}"
    )
    assert CJK.search(notes["summary"]), f"{where}: summary not in Chinese"
    assert CJK.search(notes["description"]), f"{where}: description not in Chinese"
    if name != "Watchdog":
        # The description names the target and shows the value (or a label naming the target).
        assert "$labels." in notes["description"], f"{where}: description names no target"
    if name not in ("TargetDown", "ExporterCollectorFailing", "Watchdog"):  # 0/1 states
        assert "$value" in notes["description"], f"{where}: description shows no $value"
    assert notes["runbook_url"] == f"docs/runbooks/{name}.md", f"{where}: runbook_url"
    runbook = ROOT / notes["runbook_url"]
    assert runbook.is_file(), f"{where}: no runbook {runbook}"
    text = runbook.read_text()
    for heading in ("## 含义", "## 首先检查", "## 处置", "## 升级"):
        assert heading in text, f"{where}: {runbook.name}: missing {heading}"


def test_every_alert_fires_and_stays_quiet_in_the_promtool_tests() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in (RULES / "tests").glob("*.test.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    # Every alert, not only the contract's (issue 4): the pipeline's own alerts too.
    names = {rule["alert"] for _, rule in ALERTS}
    assert names >= set(CONTRACT)
    assert names - fires == set()
    assert names - quiet == {"Watchdog"}


def test_ratios_guard_their_denominators() -> None:
    divisor = re.compile(r"/\s*\(?\s*[A-Za-z_]")  # dividing by a series, not a constant
    checked = 0
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                expr = " ".join(rule["expr"].split())
                for m in divisor.finditer(expr):
                    checked += 1
                    assert "> 0)" in expr[m.start() :], (
                        f"{path.name}: {rule.get('record') or rule['alert']}: denominator not "
                        f"guarded with (... > 0): {expr}"
                    )
    assert checked >= 6
