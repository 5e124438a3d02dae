"""``sscp-ops report`` end to end: a real Prometheus (tests/fx_report.py), HTML, PDF and JSON.

The ticket API, backup catalogue and security-event command are stand-ins in the shapes agreed
with the branches building them (issue-5, -6, -7), which are not merged yet: a local HTTP server
that checks the bearer token, an SQLite file, and a script printing JSON lines.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import require_binary, sscp_ops_cmd

from sscp_ops.holiday_calendar import CHINA_TZ

pytestmark = pytest.mark.slow

TOKEN = "t0ken-for-tests"


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=CHINA_TZ)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(CHINA_TZ).isoformat()


def ticket(n: int, start: datetime, ack_min: int, fix_min: int | None, **kw) -> dict:
    return {
        "id": f"INC-{n}",
        "kind": "incident",
        "alertname": "SlaProbeFailed",
        "severity": "critical",
        "target": "home",
        "status": "resolved" if fix_min else "open",
        "fired": iso(start),
        "created": iso(start + timedelta(minutes=1)),
        "acknowledged": iso(start + timedelta(minutes=ack_min)),
        "resolved": iso(start + timedelta(minutes=fix_min)) if fix_min else None,
        "title": "首页无法访问，联系人 13812345678",
        **kw,
    }


# Five incidents, four acknowledged after 15 min (one over the 3 tolerated: 1 %).
TICKETS = [
    ticket(1, local(3, 2), 20, 90),
    ticket(2, local(5, 10), 16, 60),
    ticket(3, local(15, 14), 30, 50, problem_id="PRB-1"),
    ticket(4, local(18, 9), 40, 100),
    ticket(5, local(25, 9), 5, 30),
    {
        "id": "VUL-1",
        "kind": "vulnerability",
        "risk": "high",
        "created": iso(local(10, 9)),
        "resolved": iso(local(12, 8)),
        "due_at": iso(local(12, 9)),
        "title": "Struts2 远程代码执行",
    },
]


class TicketApi(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_response(401)
            self.end_headers()
            return
        if not self.path.startswith("/api/v1/tickets"):
            self.send_response(404)
            self.end_headers()
            return
        body = json.dumps({"tickets": TICKETS}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def ticket_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), TicketApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def catalogue(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE runs (job, kind, started_at, finished_at, status, detail)")
    rows = []
    for day in range(1, 32):
        s = local(day, 2)
        rows.append(("mysql-full", "backup", iso(s), iso(s + timedelta(minutes=20)), "success", ""))
    s = local(16, 2)
    rows.append(("files", "backup", iso(s), iso(s), "failure", "磁盘已满"))
    s = local(21, 14)
    rows.append(
        ("mysql-full", "drill", iso(s), iso(s + timedelta(hours=3, minutes=10)), "success", "")
    )
    rows.append(("mysql-full", "restore", iso(s), iso(s + timedelta(hours=1)), "success", ""))
    con.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.commit()
    con.close()
    return path


EVENTS_SCRIPT = """
import json, sys
assert sys.argv[sys.argv.index("--format") + 1] == "json"
for i in range(12):
    print(json.dumps({"time": "2026-10-%02dT03:00:00Z" % (1 + i), "kind": "sql_injection",
                      "source": "203.0.113.%d" % (i % 3)}))
print(json.dumps({"time": "2026-10-09T08:00:00Z", "kind": "login_failure",
                  "source": "198.51.100.7", "detail": "user 13812345678"}))
"""


def run_report(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        sscp_ops_cmd("report", *args), capture_output=True, text=True, timeout=240, check=False
    )


def test_monthly_report_end_to_end(report_prometheus, ticket_api, tmp_path) -> None:
    pdftoppm = require_binary("pdftoppm")
    pdftotext = require_binary("pdftotext")
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "events.py").write_text(EVENTS_SCRIPT)
    cfg = tmp_path / "config.yml"
    cfg.write_text(
        "report:\n"
        "  monthly_fee: 200000\n"
        "  company: 某某信息技术有限公司\n"
        f"  tickets: {{url: '{ticket_api}', token_file: '{tmp_path / 'token'}'}}\n"
        f"  backups: {{catalogue: '{catalogue(tmp_path / 'backups.sqlite')}'}}\n"
        f"  events: {{command: ['{sys.executable}', '{tmp_path / 'events.py'}']}}\n"
    )
    out = tmp_path / "out"
    done = run_report(
        [
            "monthly",
            "--config.file",
            str(cfg),
            "--month",
            "2026-10",
            "--prometheus-url",
            report_prometheus,
            "--out",
            str(out),
        ]
    )
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stderr

    report = json.loads((out / "report.json").read_text())
    ind = {i["key"]: i for i in report["indicators"]}
    assert len(ind) == 11
    assert ind["availability"]["deduction_percent"] == 4
    assert ind["holiday_availability"]["deduction_percent"] == 2
    assert ind["response"]["measured"] == 4 and ind["response"]["deduction_percent"] == 1
    assert ind["resolution_time"]["measured"] == (90 + 60 + 50 + 100 + 30) * 60 / 5
    assert ind["resolution_rate"]["measured"] == 1.0
    assert ind["vuln_fix_time"]["deduction_percent"] == 0 and ind["vuln_fix_time"]["passed"]
    assert ind["backup_success"]["measured"] == 31 / 32 and not ind["backup_success"]["passed"]
    assert ind["restore_success"]["passed"] is True
    assert ind["recovery_time"]["measured"] == 3 * 3600 + 600
    for i in report["indicators"]:  # ratios are fractions, never percent
        if i["key"].endswith(("rate", "success", "availability")) and i["measured"] is not None:
            assert 0 <= i["measured"] <= 1
    assert report["deductions"]["total_percent"] == 7
    assert report["deductions"]["amount"] == 14000  # 7 % of 200,000
    assert report["security"]["total"] == 13
    assert report["security"]["by_kind"][0] == {
        "kind": "sql_injection",
        "name": "SQL 注入",
        "count": 12,
    }
    assert report["resources"]["hosts"]["app1:9100"]["cpu"]["avg"] == pytest.approx(0.25)

    html = (out / "report.html").read_text()
    for heading in (
        "一、服务指标考核",
        "二、系统可用性与中断时间线",
        "三、事件、问题与变更",
        "四、安全事件与漏洞",
        "五、资源使用",
        "六、备份与恢复演练",
        "七、优化建议",
        "八、签字确认",
    ):
        assert heading in html
    assert "13812345678" not in html  # phone numbers masked
    assert html.count("<svg") >= 1 + 2 * 2 + 2  # availability, 2 charts per host, trends

    pdf = out / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    text = subprocess.run(
        [pdftotext, str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "服务指标考核" in text and "合计扣减 7%" in text  # CJK text is real text
    subprocess.run([pdftoppm, "-r", "40", "-gray", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.pgm"))
    assert len(pages) >= 3
    for page in pages:
        assert dark_share(page) > 0.002, f"{page.name} looks blank"


def dark_share(pgm: Path) -> float:
    """Share of pixels darker than light grey in a binary PGM (P5) from pdftoppm -gray."""
    data = pgm.read_bytes()
    m = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    assert m, "not a binary PGM"
    pixels = data[m.end() :]
    return sum(1 for b in pixels if b < 200) / len(pixels)


def test_missing_sources_are_shown_missing(report_prometheus, tmp_path) -> None:
    """No ticket API or catalogue configured: those indicators have no verdict, not a pass."""
    cfg = tmp_path / "config.yml"
    cfg.write_text("report:\n  events: {enabled: false}\n")
    out = tmp_path / "out"
    done = run_report(
        [
            "quarterly",
            "--config.file",
            str(cfg),
            "--quarter",
            "2026Q4",
            "--prometheus-url",
            report_prometheus,
            "--out",
            str(out),
        ]
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["period"]["title"] == "2026年第4季度"
    ind = {i["key"]: i for i in report["indicators"]}
    assert ind["response"]["passed"] is None and ind["response"]["measured"] is None
    # The data ends 1 Nov 04:00 (last sample 03:59:30, bridged 5 min by the look-back): the
    # quarter adds 245 known minutes with the 30 min outage of 1 Nov; the rest is missing.
    assert ind["availability"]["measured"] == pytest.approx(
        (44325 + 215) / (44525 + 245), rel=1e-12
    )
    assert report["availability"]["whole"]["down_seconds"] == (200 + 30) * 60
    html = (out / "report.html").read_text()
    assert "季度运维报告" in html and "账号审查" in html and "工单系统未配置" in html
    assert "section missing" in done.stderr


def test_bad_period_is_a_usage_error(tmp_path) -> None:
    done = run_report(["monthly", "--month", "2026-13", "--out", str(tmp_path)])
    assert done.returncode == 2 and "2026-10" in done.stderr


def test_annual_report(report_prometheus, tmp_path) -> None:
    """A year: data exists only around October, the rest is missing (not up, not down)."""
    cfg = tmp_path / "config.yml"
    cfg.write_text("report:\n  events: {enabled: false}\n")
    out = tmp_path / "out"
    done = run_report(
        [
            "annual",
            "--config.file",
            str(cfg),
            "--year",
            "2026",
            "--prometheus-url",
            report_prometheus,
            "--out",
            str(out),
        ]
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["period"]["title"] == "2026年度"
    ind = {i["key"]: i for i in report["indicators"]}
    # Sep 30 22:00-24:00 local (120 min, 30 of them down) + October + 1 Nov 00:00-04:05
    known = 120 + 44525 + 245
    down = 30 + 200 + 30
    assert ind["availability"]["measured"] == pytest.approx((known - down) / known, rel=1e-12)
    assert ind["holiday_availability"]["measured"] == pytest.approx(9930 / 10080, rel=1e-12)
    assert len(report["availability"]["daily"]) == 365
    assert "年度运维总结报告" in (out / "report.html").read_text()
