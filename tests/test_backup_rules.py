"""The backup rules pass promtool: syntax, and a firing and a quiet case for every alert."""

from __future__ import annotations

import subprocess

import yaml
from helpers import ROOT, require_binary

RULES = ROOT / "rules" / "backup.rules.yml"
TESTS = ROOT / "rules" / "tests" / "backup.test.yml"
ALERTS = {
    "BackupMissing",
    "BackupFailed",
    "BackupSuccessRateLow",
    "Backup321Violation",
    "BackupCopyCorrupt",
    "RestoreDrillOverdue",
    "RestoreDrillFailed",
    "RecoveryTimeObjectiveAtRisk",
}


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = require_binary("promtool")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)


def test_rules_pass_promtool_check() -> None:
    r = promtool("check", "rules", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr


def test_rules_pass_promtool_unit_tests() -> None:
    r = promtool("test", "rules", str(TESTS))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_every_alert_is_complete_and_has_a_firing_and_a_quiet_case() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert set(alerts) == ALERTS
    for name, rule in alerts.items():
        assert "for" in rule, name
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), name
        assert "$value" not in str(rule["labels"]), name
        assert any("\u4e00" <= ch <= "\u9fff" for ch in rule["annotations"]["summary"]), name
    fired, quiet = set(), set()
    for case in yaml.safe_load(TESTS.read_text())["tests"]:
        for t in case.get("alert_rule_test", []):
            (fired if t["exp_alerts"] else quiet).add(t["alertname"])
    assert fired == ALERTS and quiet == ALERTS
