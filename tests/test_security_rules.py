"""The security rule files (vulns, patches, tls, accounts): `promtool check rules`, their
`promtool test rules` files, and the alert conventions (for, severity, Chinese annotations,
an existing runbook)."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from helpers import ROOT, require_binary

AREAS = ("vulns", "patches", "tls", "accounts")
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("area", AREAS)
def test_promtool_check_and_test(area: str) -> None:
    promtool = require_binary("promtool")
    rules = ROOT / "rules" / f"{area}.rules.yml"
    check = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(
        [promtool, "test", "rules", f"{area}.test.yml"],
        cwd=ROOT / "rules" / "tests",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert test.returncode == 0, test.stdout + test.stderr


@pytest.mark.parametrize("area", AREAS)
def test_alert_conventions(area: str) -> None:
    doc = yaml.safe_load((ROOT / "rules" / f"{area}.rules.yml").read_text())
    tests = (ROOT / "rules" / "tests" / f"{area}.test.yml").read_text()
    alerts = [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
    assert alerts
    for rule in alerts:
        name = rule["alert"]
        assert rule.get("for"), name
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        ann = rule["annotations"]
        assert CJK.search(ann["summary"]) and CJK.search(ann["description"]), name
        assert ann["runbook_url"] == f"docs/runbooks/{name}.md"
        assert (ROOT / ann["runbook_url"]).is_file(), name
        # every alert has a test case where it fires and one where it does not
        assert f"alertname: {name}\n        exp_alerts: []" in tests, name
        assert re.search(rf"alertname: {name}\n        exp_alerts:\n", tests), name
