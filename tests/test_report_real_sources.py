"""The report's adapters against the real sources, and ``sscp-ops report monthly`` end to end.

- tickets: the real webhook app served on a free port (tests/fx_webhook.py ``live_webhook``),
  seeded through its API (tests/report_seed.py);
- security events: sshd auth.log lines read by the real logs collector into the event store,
  printed by ``sscp-ops logs events``;
- backups: the catalogue written by ``sscp-ops backup run`` and ``drill`` against MariaDB
  (tests/fx_backup.py).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import free_port, sscp_ops_cmd
from report_seed import Seeder, sshd_burst

from exporters.logs import LogsCollector
from sscp_ops.config import load_config
from sscp_ops.events import Event, EventStore
from sscp_ops.holiday_calendar import CHINA_TZ
from sscp_ops.report.period import month
from sscp_ops.report.sources import (
    CommandEventSource,
    HttpTicketSource,
    SourceError,
    SqliteBackupCatalogue,
)

H = timedelta(hours=1)
M = timedelta(minutes=1)


def month_of(moment: datetime):
    local = moment.astimezone(CHINA_TZ)
    return month(f"{local.year}-{local.month:02d}", CHINA_TZ)


# --- tickets --------------------------------------------------------------------------------


def test_tickets_from_the_live_webhook(live_webhook, clock) -> None:
    seed = Seeder(live_webhook.url, clock, live_webhook.token("operator", "seed"))
    t0 = datetime(2026, 10, 3, 10, 0, tzinfo=CHINA_TZ)
    a = seed.fire("HostDown", "web1", t0)
    seed.ack(a, t0 + 7 * M)
    seed.clear("HostDown", "web1", t0, t0 + 50 * M)
    b = seed.fire("DiskFull", "db1", t0 + 2 * H)
    seed.resolve(b, t0 + 3 * H)
    before = seed.fire("HostDown", "web2", datetime(2026, 9, 30, 23, 0, tzinfo=CHINA_TZ))
    seed.vuln("zap:1", "high", datetime(2026, 8, 1, 8, 0, tzinfo=CHINA_TZ))  # old, still open
    seed.vuln("zap:2", "medium", t0 + 1 * H)
    seed.fix("zap:2", t0 + 30 * H)
    seed.vuln("zap:3", "low", datetime(2026, 11, 2, tzinfo=CHINA_TZ))  # after the period
    for i in range(3):  # more tickets than one page
        seed.fire(f"Extra{i}", "app1", t0 + (5 + i) * H)

    source = HttpTicketSource(live_webhook.url, live_webhook.token("viewer", "monthly-report"))
    source.PAGE = 2
    oct_ = month("2026-10", CHINA_TZ)
    got = {t.id: t for t in source.tickets(oct_.start, oct_.end)}
    assert str(before) not in got  # created before the period
    incidents = [t for t in got.values() if t.kind == "incident"]
    vulns = sorted((t for t in got.values() if t.kind == "vulnerability"), key=lambda t: t.risk)
    assert len(incidents) == 5 and [v.risk for v in vulns] == ["high", "medium"]

    ta = got[str(a)]
    assert ta.created == t0 and ta.start == t0  # the SLA clocks start at created_at
    assert ta.fired == t0 - 2 * M  # Alertmanager's startsAt
    assert ta.acknowledged == t0 + 7 * M and ta.resolved == t0 + 50 * M
    assert (ta.alertname, ta.target, ta.severity) == ("HostDown", "web1", "critical")
    assert ta.title == "web1 故障，值班电话 138****5678"  # masked by the API
    tb = got[str(b)]
    assert tb.acknowledged is None and tb.done == t0 + 3 * H and tb.status == "resolved"

    high, medium = vulns
    assert high.found_at == datetime(2026, 8, 1, 8, 0, tzinfo=CHINA_TZ) and high.done is None
    assert high.due_at == high.found_at + 48 * H
    assert medium.found_at == t0 + 1 * H and medium.resolved == t0 + 30 * H


def test_ticket_source_errors(live_webhook) -> None:
    since = datetime(2026, 10, 1, tzinfo=CHINA_TZ)
    with pytest.raises(SourceError, match="HTTP 401"):
        HttpTicketSource(live_webhook.url, "wrong").tickets(since, since + H)
    with pytest.raises(SourceError, match="HTTP 404"):  # a wrong base URL
        HttpTicketSource(f"{live_webhook.url}/api/v1/tickets/1", "x").tickets(since, since + H)
    with pytest.raises(SourceError, match="tickets http://127.0.0.1"):
        HttpTicketSource(f"http://127.0.0.1:{free_port()}", "x", timeout=2).tickets(since, since)


# --- security events ------------------------------------------------------------------------


def logs_config(tmp: Path, auth_log: Path) -> str:
    return (
        "logs:\n"
        f"  positions_dir: {tmp / 'positions'}\n"
        f"  events_db: {tmp / 'events.sqlite'}\n"
        "  logins: {maxretry: 3, findtime: 600, work_hours: [0, 24]}\n"
        "  files:\n"
        f"    - {{name: sshd, path: {auth_log}, kind: sshd}}\n"
    )


def read_logs(config: Path) -> int:
    cfg = load_config(config).logs
    assert cfg is not None
    collector = LogsCollector(cfg)
    try:
        return collector.read()
    finally:
        collector.close()


def test_events_through_the_logs_pipeline(tmp_path: Path) -> None:
    auth = tmp_path / "auth.log"
    moment = datetime.now(UTC).replace(microsecond=0) - 2 * H
    auth.write_text(sshd_burst(moment))
    config = tmp_path / "config.yml"
    config.write_text(logs_config(tmp_path, auth))
    assert read_logs(config) >= 1
    store = EventStore(tmp_path / "events.sqlite")
    stored = store.query()
    store.close()
    source = CommandEventSource(sscp_ops_cmd("logs", "events"), config_file=str(config))
    got = source.events(moment - H, moment + H)
    assert [(e.kind, e.rule, e.source, e.log) for e in got] == [
        (s.type, s.rule, s.client_ip, "sshd") for s in stored
    ]
    assert "brute_force" in {e.kind for e in got}
    assert {e.source for e in got} == {"203.0.113.7"}
    assert all(e.time == moment for e in got)  # syslog stamps are local time, read back exactly
    assert source.events(moment + H, moment + 2 * H) == []  # --until is exclusive, window honoured
    with pytest.raises(SourceError, match="no logs section"):
        CommandEventSource(sscp_ops_cmd("logs", "events")).events(moment, moment + H)


# --- backups --------------------------------------------------------------------------------


def backup(setup, action: str, *args: str) -> None:
    done = subprocess.run(
        sscp_ops_cmd("backup", action, *args, "--config.file", str(setup.config)),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_catalogue_of_real_backup_runs_and_drills(backup_setup) -> None:
    backup(backup_setup, "run")
    backup(backup_setup, "drill")
    con = sqlite3.connect(backup_setup.catalog)
    (run,) = con.execute("SELECT started, finished, duration, result FROM runs").fetchall()
    (drill,) = con.execute("SELECT started, finished, duration, result FROM drills").fetchall()
    # a run that died (still 'running' two days later) and one running now
    con.execute(
        "INSERT INTO runs (set_name, run_id, started, result) VALUES ('platform', 'dead', ?, "
        "'running'), ('platform', 'live', ?, 'running')",
        (run[0] - 2 * 86400, run[0] + 1),
    )
    con.commit()
    con.close()
    started = datetime.fromtimestamp(run[0], UTC)
    source = SqliteBackupCatalogue(backup_setup.catalog)
    got = source.runs(started - 3 * timedelta(days=1), started + timedelta(days=1))
    kinds = [(r.kind, r.success) for r in got]
    assert kinds == [("backup", False), ("backup", True), ("drill", True)]
    dead, ok, drl = got
    assert "never finished" in dead.detail
    assert ok.job == "platform" and ok.started == started
    assert ok.duration_seconds == pytest.approx(run[2]) and run[3] == "success"
    assert drl.duration_seconds == pytest.approx(drill[2]) and drl.duration_seconds > 0
    assert drl.finished == datetime.fromtimestamp(drill[1], UTC)
    assert source.runs(started + H, started + 2 * H) == []


# --- end to end -----------------------------------------------------------------------------


def test_monthly_report_from_the_real_sources(backup_setup, live_webhook, clock, tmp_path):
    """A known month → ``sscp-ops report monthly`` → report.json equals the hand count."""
    backup(backup_setup, "run")
    backup(backup_setup, "drill")
    con = sqlite3.connect(backup_setup.catalog)
    ((drill_seconds, drill_started),) = con.execute("SELECT duration, started FROM drills")
    con.close()
    period = month_of(datetime.fromtimestamp(drill_started, UTC))
    day = period.start  # every seeded moment is within the first 20 days of that month

    seed = Seeder(live_webhook.url, clock, live_webhook.token("operator", "seed"))
    # 1. on time, resolved by the alert after 60 min
    a = seed.fire("HostDown", "web1", day + 10 * H)
    seed.ack(a, day + 10 * H + 10 * M)
    seed.clear("HostDown", "web1", day + 10 * H, day + 11 * H)
    # 2. acknowledged after 20 min (late), resolved by hand after 200 min (slow)
    b = seed.fire("DiskFull", "db1", day + 34 * H)
    seed.ack(b, day + 34 * H + 20 * M)
    seed.resolve(b, day + 34 * H + 200 * M)
    # 3. the same fault five times on days 3..7 (4 recurrences: a problem); two acked late
    for i in range(5):
        at = day + timedelta(days=2 + i, hours=9)
        c = seed.fire("ApiDown", "api", at)
        seed.ack(c, at + (30 * M if i in (1, 3) else 5 * M))
        seed.clear("ApiDown", "api", at, at + 30 * M)
    # 4. never acknowledged, never resolved
    seed.fire("CpuHigh", "app1", day + timedelta(days=9, hours=9))
    # vulnerabilities: high fixed after 78 h (30 h late: 2 started days), high on time,
    # medium overdue and open, low open and not yet due
    seed.vuln("zap:1", "high", day + timedelta(days=4, hours=8))
    seed.fix("zap:1", day + timedelta(days=7, hours=14))
    seed.vuln("zap:2", "high", day + timedelta(days=11, hours=8))
    seed.fix("zap:2", day + timedelta(days=12, hours=8))
    seed.vuln("zap:3", "medium", day + timedelta(days=13))
    seed.vuln("zap:4", "low", day + timedelta(days=19))
    seed.change("ApiDown 连接池扩容", day + timedelta(days=8, hours=22))
    seed.change("上月变更", day - timedelta(days=3))  # before the period: not listed

    # security events: one burst through the logs pipeline, two stored by hand, one outside
    auth = tmp_path / "auth.log"
    # in the period and never in the future (syslog stamps have no year)
    burst = max(period.start, datetime.now(UTC).replace(microsecond=0) - 2 * H)
    auth.write_text(sshd_burst(burst))
    config = backup_setup.config
    token = tmp_path / "report.token"
    token.write_text(live_webhook.token("viewer", "monthly-report") + "\n")
    config.write_text(
        config.read_text()
        + logs_config(tmp_path, auth)
        + "report:\n"
        + "  monthly_fee: 4000\n"
        + f"  tickets: {{url: '{live_webhook.url}', token_file: '{token}'}}\n"
        + f"  events: {{command: ['{sys.executable}', '-m', 'sscp_ops', 'logs', 'events']}}\n"
    )
    read_logs(config)
    store = EventStore(tmp_path / "events.sqlite")
    hand = [("sql_injection", period.start + 5 * H), ("xss", period.start + 6 * H)]
    hand.append(("xss", period.start - H))
    store.add(
        Event(f"k{i}", t.timestamp(), "web1", kind, "r", "198.51.100.9", "", "手机 13812345678")
        for i, (kind, t) in enumerate(hand)
    )
    stored = store.query(period.start.timestamp(), period.end.timestamp())
    store.close()

    out = tmp_path / "out"
    done = subprocess.run(
        sscp_ops_cmd(
            "report",
            "monthly",
            "--config.file",
            str(config),
            "--month",
            period.label,
            "--prometheus-url",
            f"http://127.0.0.1:{free_port()}",  # no Prometheus: availability has no verdict
            "--out",
            str(out),
        ),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text())
    ind = {i["key"]: i for i in report["indicators"]}

    # incidents only (8); the 4 vulnerabilities never count here
    assert ind["response"]["measured"] == 4  # #2, two of #3, #4 (never acknowledged)
    # 4 late - 3 tolerated = 1 charged; the contract says only 按次扣款 and no amount is set
    # (issue 16): 0 %, the count and 按合同约定 (was 1 % with an invented 1 % each).
    assert ind["response"]["deduction_percent"] == 0
    assert "= 1 次，按次扣款，金额按合同约定" in ind["response"]["deduction_arithmetic"]
    fixed_minutes = 60 + 200 + 5 * 30
    assert ind["resolution_time"]["measured"] == pytest.approx(fixed_minutes * 60 / 7)
    assert ind["resolution_time"]["passed"] is True
    assert ind["resolution_rate"]["measured"] == pytest.approx(7 / 8)
    assert ind["resolution_rate"]["passed"] is False
    # 5 occurrences of ApiDown @ api (report.recurrence.counting: occurrences, the default)
    assert ind["recurrence"]["measured"] == 5 and ind["recurrence"]["passed"] is False
    (problem,) = ind["recurrence"]["details"]
    assert problem["problem"] == "ApiDown @ api" and problem["problem_id"] is not None
    # vulnerabilities only
    assert ind["vuln_fix_time"]["measured"] == 78 * 3600
    assert ind["vuln_fix_time"]["deduction_percent"] == 4  # 2 started days × 2 %
    assert ind["vuln_fix_rate"]["measured"] == pytest.approx(2 / 3)  # medium overdue, low not due
    # backups: the real run and drill
    assert ind["backup_success"]["measured"] == 1 and ind["backup_success"]["passed"]
    assert ind["restore_success"]["measured"] == 1 and ind["restore_success"]["passed"]
    assert ind["recovery_time"]["measured"] == pytest.approx(drill_seconds)
    assert ind["recovery_time"]["passed"] is True
    assert ind["resolution_time"]["measured_text"] == "58.6 分钟（7 起已解决）"
    assert ind["availability"]["passed"] is None  # no data: no verdict, no deduction

    assert report["deductions"]["total_percent"] == 4  # vulnerability fix time only
    assert report["deductions"]["amount"] == 160  # 4 % of 4,000 元
    assert "按合同约定" in report["deductions"]["summary"]
    tickets = report["tickets"]
    assert len(tickets["incidents"]) == 8
    assert [len(p["incidents"]) for p in tickets["problems"]] == [5]
    assert tickets["vulnerabilities"] | {"overdue_list": None} == {
        "found": 4,
        "fixed": 2,
        "overdue": 1,
        "overdue_list": None,
    }
    assert [(c["title"], c["status"]) for c in tickets["changes"]] == [
        ("ApiDown 连接池扩容", "success")
    ]
    assert report["backups"]["runs"] == 1 and len(report["backups"]["drills"]) == 1
    sec = report["security"]
    assert sec["total"] == len(stored) >= 3
    counts = {k["kind"]: k["count"] for k in sec["by_kind"]}
    assert counts["xss"] == 1 and counts["sql_injection"] == 1 and counts["brute_force"] >= 1
    assert "13812345678" not in (out / "report.html").read_text()
