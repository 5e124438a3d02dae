"""End to end: ``sscp-ops vulns import`` of a ZAP report, then of a later scan (one finding
gone, one new), into the real ticket webhook; the tickets, the webhook's ``/metrics`` and the
alert rules of rules/vulns.rules.yml evaluated on what that /metrics exposes."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import requests
import yaml
from fx_webhook import LiveWebhook
from helpers import (
    FIXTURES,
    ROOT,
    parse_exposition,
    promtool_check_metrics,
    require_binary,
    sscp_ops_cmd,
)

from sscp_ops.vulns import finding_key

ZAP = FIXTURES / "vulns" / "zap-report.json"
SCAN1 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
SCAN2 = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)  # the webhook's clock at the 2nd import
RISKS = ("high", "medium", "low")
SQLI = finding_key("zap", "40018", "https://zhjg.example.gov.cn/api/case/list", "size")
STORED_XSS = finding_key("zap", "40014", "https://zhjg.example.gov.cn/portal/notice", "title")


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def reports(tmp_path: Path) -> tuple[Path, Path]:
    """The captured report as scanned at SCAN1, and a SCAN2 copy in which the SQL injection
    is fixed and a stored XSS (high) is new."""
    doc = json.loads(ZAP.read_text())
    first = copy.deepcopy(doc)
    first["created"] = iso(SCAN1)
    second = copy.deepcopy(doc)
    second["created"] = iso(SCAN2)
    alerts = second["site"][0]["alerts"]
    new = copy.deepcopy(next(a for a in alerts if a["pluginid"] == "40012"))
    new.update(pluginid="40014", alertRef="40014", alert="Cross Site Scripting (Persistent)")
    new.update(name="Cross Site Scripting (Persistent)")
    new["instances"] = [{"uri": "https://zhjg.example.gov.cn/portal/notice", "param": "title"}]
    second["site"][0]["alerts"] = [a for a in alerts if a["pluginid"] != "40018"] + [new]
    out = []
    for name, d in (("zap-1.json", first), ("zap-2.json", second)):
        (tmp_path / name).write_text(json.dumps(d))
        out.append(tmp_path / name)
    return out[0], out[1]


def cli_token(tmp_path: Path, database: str) -> str:
    """An operator token made the way an operator does: ``sscp-ops webhook token create``."""
    cfg = tmp_path / "webhook.yml"
    cfg.write_text(yaml.safe_dump({"webhook": {"database": database}}))
    proc = subprocess.run(
        sscp_ops_cmd(
            "webhook",
            "token",
            "create",
            "--config.file",
            str(cfg),
            "--role",
            "operator",
            "--name",
            "zap-import",
        ),  # fmt: skip
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def vulns_import(report: Path, url: str, token: str) -> dict:
    env = {**os.environ, "SSCP_OPS_API_TOKEN": token}
    proc = subprocess.run(
        sscp_ops_cmd("vulns", "import", str(report), "--api-url", url),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def scrape(url: str) -> tuple[str, dict]:
    r = requests.get(f"{url}/metrics", timeout=10)
    r.raise_for_status()
    return r.text, parse_exposition(r.text)


def by_risk(m: dict, name: str) -> list[float | None]:
    return [m.get((name, frozenset({("risk", r)}))) for r in RISKS]


def test_import_then_rescan_tickets_and_metrics(live_webhook: LiveWebhook, clock, tmp_path):
    first, second = reports(tmp_path)
    token = cli_token(tmp_path, live_webhook.services.config.database_url())
    headers = {"Authorization": f"Bearer {token}"}

    clock.now = SCAN1 + dt.timedelta(hours=1)
    summary = vulns_import(first, live_webhook.url, token)
    assert summary["created"] == 7 and summary["closed"] == summary["reopened"] == 0
    _, m = scrape(live_webhook.url)
    assert by_risk(m, "sscp_vulnerabilities_open") == [3, 3, 1]
    assert by_risk(m, "sscp_vulnerabilities_overdue") == [0, 0, 0]
    oldest = by_risk(m, "sscp_vulnerabilities_oldest_open_timestamp_seconds")
    assert oldest == [SCAN1.timestamp()] * 3
    assert ("sscp_vulnerability_fix_ratio", frozenset()) not in m  # nothing fixed or due yet

    clock.now = NOW
    summary = vulns_import(second, live_webhook.url, token)
    assert (summary["created"], summary["closed"], summary["updated"]) == (1, 1, 0)
    assert summary["reopened"] == 0

    tickets = requests.get(
        f"{live_webhook.url}/api/v1/tickets?kind=vulnerability", headers=headers, timeout=10
    ).json()["tickets"]
    keyed = {t["external_key"]: t for t in tickets}
    assert len(keyed) == 8
    sqli, stored = keyed[SQLI], keyed[STORED_XSS]
    assert sqli["status"] == "closed" and sqli["resolved_at"] == sqli["closed_at"]
    assert sqli["closed_at"] == iso(SCAN2).replace("Z", ".000Z")
    assert stored["status"] == "open" and stored["risk"] == "high"
    assert stored["starts_at"] == "2026-11-27T12:00:00.000Z"
    assert stored["due_at"] == "2026-11-29T12:00:00.000Z"
    assert sorted(t["status"] for t in tickets) == ["closed"] + ["open"] * 7

    text, m = scrape(live_webhook.url)
    # high: the two reflected XSS (found at SCAN1, due 48 h later: overdue) and the new
    # stored XSS (found at SCAN2: due tomorrow); medium and low are within their 7 / 30 days
    assert by_risk(m, "sscp_vulnerabilities_open") == [3, 3, 1]
    assert by_risk(m, "sscp_vulnerabilities_overdue") == [2, 0, 0]
    oldest = by_risk(m, "sscp_vulnerabilities_oldest_open_timestamp_seconds")
    assert oldest == [SCAN1.timestamp()] * 3
    # due or fixed in 90 days: the fixed SQL injection and the two overdue XSS -> 1 of 3
    assert m[("sscp_vulnerability_fix_ratio", frozenset())] == 1 / 3
    lint = promtool_check_metrics(text)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert_rules_fire_on(text, tmp_path)


def assert_rules_fire_on(exposition: str, tmp_path: Path) -> None:
    """rules/vulns.rules.yml evaluated by ``promtool test rules`` on the series the webhook
    exposed (held constant): the names and labels the rules use are the ones it exposes."""
    series = []
    for (name, labels), value in parse_exposition(exposition).items():
        if name.startswith(("sscp_vulnerabilities_", "sscp_vulnerability_")):
            lab = ",".join(f'{k}="{v}"' for k, v in sorted({*labels, ("job", "itss")}))
            series.append({"series": f"{name}{{{lab}}}", "values": f"{value!r}x100"})
    overdue = (
        "itss 统计有 2 个高危漏洞已超过 48 小时修复时限仍未关闭，违反合同要求，请立即修复并复测。"
    )
    test = {
        "rule_files": [str(ROOT / "rules" / "vulns.rules.yml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": "70m",
                        "alertname": "HighRiskVulnerabilityOverdue",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "job": "itss",
                                    "risk": "high",
                                    "severity": "critical",
                                },
                                "exp_annotations": {
                                    "summary": "有高危漏洞超过 48 小时未修复",
                                    "description": overdue,
                                    "runbook_url": "docs/runbooks/HighRiskVulnerabilityOverdue.md",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "70m",
                        "alertname": "VulnerabilityFixRateLow",
                        "exp_alerts": [
                            {
                                "exp_labels": {"job": "itss", "severity": "warning"},
                                "exp_annotations": {
                                    "summary": "漏洞修复率低于 90%",
                                    "description": "itss 统计近 90 天已到期漏洞的修复率为 33.33%，"
                                    "低于合同要求的 90%。",
                                    "runbook_url": "docs/runbooks/VulnerabilityFixRateLow.md",
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "vulns-live.test.yml"
    path.write_text(yaml.safe_dump(test, allow_unicode=True))
    proc = subprocess.run(
        [require_binary("promtool"), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
