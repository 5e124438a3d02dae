"""The security alert rules pass promtool's checks and unit tests."""

from __future__ import annotations

import subprocess

from helpers import ROOT, require_binary


def test_security_rules_check_and_unit_tests() -> None:
    promtool = require_binary("promtool")
    for args in (
        ["check", "rules", "rules/security.rules.yml"],
        ["test", "rules", "rules/tests/security.test.yml"],
    ):
        out = subprocess.run(
            [promtool, *args], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "SUCCESS" in out.stdout


def test_every_security_alert_has_a_runbook() -> None:
    text = (ROOT / "rules" / "security.rules.yml").read_text(encoding="utf-8")
    for name in (
        "SqlInjectionAttempts",
        "BruteForceLogin",
        "AbnormalDataExport",
        "SlowQueriesSurge",
    ):
        assert f"alert: {name}" in text
        assert (ROOT / "docs" / "runbooks" / f"{name}.md").exists()
