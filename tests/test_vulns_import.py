"""Vulnerability import: ZAP JSON / CSV parsing, reconciling, and the HTTP client and CLI
against the real ticket webhook (``live_webhook``: the Flask app on a temp SQLite store, served
on a loopback port, with a real operator token)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest
import requests
from fx_webhook import LiveWebhook
from helpers import FIXTURES, sscp_ops_cmd

from sscp_ops.vulns import (
    HttpVulnTicketClient,
    ReportError,
    TicketServiceError,
    apply_actions,
    finding_key,
    parse_findings_csv,
    parse_zap_json,
    reconcile,
)

ZAP = FIXTURES / "vulns" / "zap-report.json"
SITE_A = "https://zhjg.example.gov.cn:443"
SITE_B = "http://10.20.0.15:8080"
T1 = dt.datetime(2026, 11, 20, 2, 0, 5, 512804, tzinfo=dt.UTC)


def zap_doc() -> dict:
    return json.loads(ZAP.read_text())


def test_parse_zap_report_one_finding_per_plugin_url_param() -> None:
    scan = parse_zap_json(ZAP.read_text())
    assert scan.source == "zap" and scan.scanned_at == T1
    assert scan.sites == {SITE_A, SITE_B}
    by_key = {(f.check, f.url, f.param): f for f in scan.findings}
    xss = by_key["40012", "https://zhjg.example.gov.cn/portal/search", "q"]
    assert xss.risk == "high" and xss.instances == 2 and xss.cwe == "79"
    assert xss.key == finding_key("zap", "40012", xss.url, "q")
    assert xss.key.startswith("zap:40012:") and "/" not in xss.key
    assert ("40012", "https://zhjg.example.gov.cn/portal/feedback", "content") in by_key
    assert by_key["40018", "https://zhjg.example.gov.cn/api/case/list", "size"].risk == "high"
    assert by_key["10038", "https://zhjg.example.gov.cn/portal/", ""].risk == "medium"
    assert by_key["10021", "https://zhjg.example.gov.cn/static/app.js", "x-content-type-options"]
    assert by_key["10202", "http://10.20.0.15:8080/manager/user/save", ""].site == SITE_B
    assert len({f.key for f in scan.findings}) == len(scan.findings)
    # informational (10096) and false positives (confidence 0: 10020) are not findings
    assert not any(f.check in ("10096", "10020") for f in scan.findings)
    assert len(scan.findings) == 7
    assert xss.description.startswith("Cross-site Scripting (XSS) is an attack")
    assert "<p>" not in xss.solution and "\n" in xss.solution


def test_parse_zap_generated_time_of_older_reports() -> None:
    doc = zap_doc()
    del doc["created"], doc["@programName"]
    scan = parse_zap_json(json.dumps(doc))
    assert scan.scanned_at == dt.datetime(2026, 11, 20, 10, 0, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ('{"@version": "2.15.0"}', "no 'site' list"),
        ('{"site": [], "created": "yesterday"}', "not an ISO 8601 time"),
        ('{"created": "2026-11-20T02:00:05Z", "site": [{"@name": "ftp://x"}]}', "not an http"),
    ],
)
def test_parse_zap_rejects(text: str, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        parse_zap_json(text)


CSV = (FIXTURES / "vulns" / "pentest.csv").read_text(encoding="utf-8")


def test_parse_csv() -> None:
    scan = parse_findings_csv(CSV)
    assert scan.source == "pentest"
    assert scan.scanned_at == dt.datetime(2026, 11, 19, 2, 0, tzinfo=dt.UTC)
    assert len(scan.findings) == 2
    f = scan.findings[0]
    assert f.key == finding_key(
        "pentest", "PT-01", "https://zhjg.example.gov.cn/api/case/detail", "id"
    )
    assert f.risk == "high" and f.instances == 2
    assert "13812345678" not in f.description and "138****5678" in f.description


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("check,title,risk\n", "lacks column"),
        (CSV.replace("高危", "urgent", 1), "line 2: risk 'urgent'"),
        (CSV.replace("2026-11-18T09:00:00+08:00", "18/11/2026"), "line 2: not an ISO"),
    ],
)
def test_parse_csv_rejects(text: str, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        parse_findings_csv(text)


def scan_without(doc: dict, plugin: str, created: str) -> str:
    doc = copy.deepcopy(doc)
    doc["created"] = created
    for site in doc["site"]:
        site["alerts"] = [a for a in site["alerts"] if a["pluginid"] != plugin]
    return json.dumps(doc)


NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)  # the webhook's clock in these tests


@pytest.fixture
def api(live_webhook: LiveWebhook, clock) -> LiveWebhook:
    clock.now = NOW
    live_webhook.operator = live_webhook.token("operator")
    return live_webhook


def by_key(api: LiveWebhook) -> dict[str, dict]:
    """The vulnerability tickets as the API shows them, by external key."""
    r = requests.get(
        f"{api.url}/api/v1/tickets?kind=vulnerability&limit=1000",
        headers={"Authorization": f"Bearer {api.operator}"},
        timeout=10,
    )
    r.raise_for_status()
    return {t["external_key"]: t for t in r.json()["tickets"]}


SQLI = finding_key("zap", "40018", "https://zhjg.example.gov.cn/api/case/list", "size")
CSP = finding_key("zap", "10038", "https://zhjg.example.gov.cn/portal/", "")
XCTO = finding_key(
    "zap", "10021", "https://zhjg.example.gov.cn/static/app.js", "x-content-type-options"
)


def test_import_cycle_against_the_ticket_api(api: LiveWebhook) -> None:
    client = HttpVulnTicketClient(api.url, api.operator)
    first = parse_zap_json(ZAP.read_text())
    done = apply_actions(client, reconcile(first, client.list("zap")))
    assert done == {"create": 7, "update": 0, "close": 0, "reopen": 0}
    tickets = by_key(api)
    sqli = tickets[SQLI]
    assert sqli["starts_at"] == "2026-11-20T02:00:05.512Z"
    assert sqli["due_at"] == "2026-11-22T02:00:05.512Z"  # high: 48 h
    assert sqli["labels"]["url"] == "https://zhjg.example.gov.cn/api/case/list"
    assert sqli["labels"]["param"] == "size" and sqli["labels"]["site"] == SITE_A
    assert sqli["target"] == "https://zhjg.example.gov.cn/api/case/list"
    assert "修复建议" in sqli["description"] and "prepared statements" in sqli["description"]
    assert tickets[CSP]["due_at"] == "2026-11-27T02:00:05.512Z"  # medium: 7 days
    assert tickets[XCTO]["due_at"] == "2026-12-20T02:00:05.512Z"  # low: 30 days
    assert all("13812345678" not in json.dumps(t, ensure_ascii=False) for t in tickets.values())

    # A week later the SQL injection is fixed: its ticket closes, fixed at the scan time.
    second = parse_zap_json(scan_without(zap_doc(), "40018", "2026-11-27T03:00:00Z"))
    done = apply_actions(client, reconcile(second, client.list("zap")))
    assert done == {"create": 0, "update": 0, "close": 1, "reopen": 0}
    sqli = by_key(api)[SQLI]
    assert sqli["status"] == "closed" and sqli["closed_at"] == "2026-11-27T03:00:00.000Z"
    assert sqli["resolved_at"] == "2026-11-27T03:00:00.000Z"
    assert sqli["resolution_source"] == "scan"

    # Importing the same scan again changes nothing.
    assert reconcile(second, client.list("zap")) == []

    # It comes back: the same ticket reopens, due 48 h after it was found again.
    third = zap_doc()
    third["created"] = "2026-11-28T01:00:00Z"
    done = apply_actions(client, reconcile(parse_zap_json(json.dumps(third)), client.list("zap")))
    assert done == {"create": 0, "update": 0, "close": 0, "reopen": 1}
    sqli = by_key(api)[SQLI]
    assert sqli["status"] == "open" and sqli["closed_at"] is None and sqli["reopen_count"] == 1
    assert sqli["resolved_at"] is None and sqli["resolution_source"] is None
    # first found stays on record; the new episode and its deadline start when found again
    assert sqli["starts_at"] == "2026-11-20T02:00:05.512Z"
    assert sqli["last_starts_at"] == "2026-11-28T01:00:00.000Z"
    assert sqli["due_at"] == "2026-11-30T01:00:00.000Z"
    assert sqli["labels"]["url"] == "https://zhjg.example.gov.cn/api/case/list"
    assert len(by_key(api)) == 7
    assert reconcile(parse_zap_json(json.dumps(third)), client.list("zap")) == []
    actions = [a["action"] for a in api.services.store.audit_rows("ticket")]
    assert actions.count("create") == 7 and actions.count("close") == 1
    assert actions.count("reopen") == 1


def test_scan_of_one_site_does_not_close_another(api: LiveWebhook) -> None:
    client = HttpVulnTicketClient(api.url, api.operator)
    apply_actions(client, reconcile(parse_zap_json(ZAP.read_text()), client.list("zap")))
    doc = zap_doc()
    doc["site"] = doc["site"][1:]  # a scan of site B only, where nothing was found
    doc["site"][0]["alerts"] = []
    doc["created"] = "2026-11-21T00:00:00Z"
    done = apply_actions(client, reconcile(parse_zap_json(json.dumps(doc)), client.list("zap")))
    assert done["close"] == 1
    closed = [t for t in by_key(api).values() if t["status"] == "closed"]
    assert [t["labels"]["site"] for t in closed] == [SITE_B]


def test_risk_change_updates_the_ticket(api: LiveWebhook) -> None:
    client = HttpVulnTicketClient(api.url, api.operator)
    apply_actions(client, reconcile(parse_zap_json(ZAP.read_text()), client.list("zap")))
    doc = zap_doc()
    doc["site"][0]["alerts"][3]["riskcode"] = "3"  # X-Content-Type-Options raised to high
    doc["created"] = "2026-11-21T00:00:00Z"
    actions = reconcile(parse_zap_json(json.dumps(doc)), client.list("zap"))
    assert [(a.kind, a.ticket.key, dict(a.fields)) for a in actions] == [
        ("update", XCTO, {"risk": "high"})
    ]
    apply_actions(client, actions)
    xcto = by_key(api)[XCTO]
    assert xcto["risk"] == "high" and xcto["due_at"] == "2026-11-22T02:00:05.512Z"
    assert xcto["severity"] == "critical"
    assert xcto["labels"]["param"] == "x-content-type-options"  # PATCH keeps the labels


def test_old_scan_does_not_undo_a_later_fix_or_finding(api: LiveWebhook) -> None:
    client = HttpVulnTicketClient(api.url, api.operator)
    apply_actions(client, reconcile(parse_zap_json(ZAP.read_text()), client.list("zap")))
    # an operator marks the SQL injection fixed now (NOW), by hand
    r = requests.patch(
        f"{api.url}/api/v1/vulnerabilities/{SQLI}",
        json={"status": "resolved", "note": "已修复并部署"},
        headers={"Authorization": f"Bearer {api.operator}"},
        timeout=10,
    )
    assert r.status_code == 200 and r.json()["resolution_source"] == "manual"
    # a scan made before that fix (still finding it) is imported afterwards: no reopen
    older = zap_doc()
    older["created"] = "2026-11-28T09:00:00Z"
    assert reconcile(parse_zap_json(json.dumps(older)), client.list("zap")) == []
    # a scan from before the findings were found closes nothing
    before = scan_without(zap_doc(), "40012", "2026-11-19T00:00:00Z")
    assert reconcile(parse_zap_json(before), client.list("zap")) == []
    # a scan after the fix that finds it again reopens it
    api.services.store.clock.now = NOW + dt.timedelta(hours=2)
    newer = zap_doc()
    newer["created"] = iso_z(NOW + dt.timedelta(hours=1))
    done = apply_actions(client, reconcile(parse_zap_json(json.dumps(newer)), client.list("zap")))
    assert done["reopen"] == 1
    sqli = by_key(api)[SQLI]
    assert sqli["status"] == "open" and sqli["last_starts_at"] == "2026-11-28T13:00:00.000Z"


def iso_z(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def test_many_tickets_are_paged(api: LiveWebhook) -> None:
    client = HttpVulnTicketClient(api.url, api.operator)
    client.PAGE = 3
    apply_actions(client, reconcile(parse_zap_json(ZAP.read_text()), client.list("zap")))
    assert len(client.list("zap")) == 7
    assert client.list("pentest") == []


def test_client_errors_carry_no_token(api: LiveWebhook) -> None:
    client = HttpVulnTicketClient(api.url, "wrong-token")
    with pytest.raises(TicketServiceError, match="HTTP 401 missing or invalid API token") as exc:
        client.list("zap")
    assert "wrong-token" not in str(exc.value)
    viewer = HttpVulnTicketClient(api.url, api.token("viewer", "report"))
    assert viewer.list("zap") == []
    finding = parse_zap_json(ZAP.read_text()).findings[0]
    with pytest.raises(TicketServiceError, match="HTTP 403 role viewer may not do this"):
        viewer.create(finding, NOW)


def run_cli(*args: str, token: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SSCP_OPS_API_TOKEN"}
    if token is not None:
        env["SSCP_OPS_API_TOKEN"] = token
    return subprocess.run(
        sscp_ops_cmd("vulns", "import", *args), capture_output=True, text=True, env=env, timeout=60
    )


def test_cli_import_zap_and_csv(api: LiveWebhook, tmp_path: Path) -> None:
    proc = run_cli(str(ZAP), "--api-url", api.url, token=api.operator)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["created"] == 7 and summary["findings"] == 7
    csv_file = tmp_path / "pentest-2026Q4.csv"
    csv_file.write_text(CSV, encoding="utf-8")
    token_file = tmp_path / "token"
    token_file.write_text(api.operator + "\n")
    proc = run_cli(str(csv_file), "--api-url", api.url, "--token-file", str(token_file), token=None)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["created"] == 2
    tickets = by_key(api)
    assert len(tickets) == 9
    pt_url = "https://zhjg.example.gov.cn/api/case/detail"
    pt = tickets[finding_key("pentest", "PT-01", pt_url, "id")]
    assert pt["starts_at"] == "2026-11-19T02:00:00.000Z" and pt["risk"] == "high"
    # --dry-run lists what would change and changes nothing
    audit_before = api.services.store.audit_rows()
    doc = zap_doc()
    doc["site"][0]["alerts"] = doc["site"][0]["alerts"][1:]  # the XSS findings are gone
    doc["created"] = "2026-11-21T00:00:00Z"
    later = tmp_path / "zap-later.json"
    later.write_text(json.dumps(doc))
    proc = run_cli(str(later), "--api-url", api.url, "--dry-run", token=api.operator)
    assert proc.returncode == 0, proc.stderr
    assert sorted(line.split()[0] for line in proc.stdout.splitlines()) == ["close", "close"]
    proc = run_cli(str(ZAP), "--api-url", api.url, "--dry-run", token=api.operator)
    assert proc.returncode == 0 and proc.stdout == "no changes\n"
    assert api.services.store.audit_rows() == audit_before
    assert all(t["status"] == "open" for t in by_key(api).values())


def test_cli_errors(api: LiveWebhook, tmp_path: Path) -> None:
    proc = run_cli(str(ZAP), "--api-url", api.url, token=None)
    assert proc.returncode == 2 and "no API token" in proc.stderr
    proc = run_cli(str(ZAP), "--api-url", api.url, token="nope")
    assert proc.returncode == 1 and "HTTP 401" in proc.stderr and "nope" not in proc.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("check,title\n")
    proc = run_cli(str(bad), "--api-url", api.url, token="x")
    assert proc.returncode == 2 and "lacks column" in proc.stderr
