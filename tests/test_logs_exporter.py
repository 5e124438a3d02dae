"""The ``logs`` collector in a running exporter: a real Nginx's access log, an auth.log, a
private MariaDB's slow log; metrics, stored events, ``sscp-ops logs events``, restarts."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pymysql
import pytest
import requests
from fx_logs import NginxLog, own_mariadb, send, wait_lines
from helpers import parse_exposition, promtool_check_metrics, require_binary, sscp_ops_cmd

from exporters.catalog import CATALOG
from exporters.logs import LogsCollector
from sscp_ops.config import parse_config
from sscp_ops.events import EventStore


def config_text(tmp: Path, nginx: NginxLog, auth_log: Path, slow_log: Path | None = None) -> str:
    slow = (
        f"    - {{name: db1-slow, path: {slow_log}, kind: mysql_slow, target: db1}}\n"
        if slow_log
        else ""
    )
    fmt = nginx.log_format.replace("'", "''")
    return (
        "exporter: {collectors: {host: false}}\n"
        "logs:\n"
        f"  positions_dir: {tmp / 'positions'}\n"
        f"  events_db: {tmp / 'events.sqlite'}\n"
        "  logins: {maxretry: 3, findtime: 600, work_hours: [0, 24]}\n"
        "  exports: {max_requests: 3, window: 3600}\n"
        "  files:\n"
        f"    - {{name: web1, path: {nginx.access_log}, kind: nginx, format: '{fmt}'}}\n"
        f"    - {{name: sshd, path: {auth_log}, kind: sshd}}\n" + slow
    )


def sshd_lines(now: float) -> str:
    stamp = datetime.fromtimestamp(now).strftime("%b %e %H:%M:%S")
    out = [
        f"{stamp} web1 sshd[900{i}]: Failed password for invalid user admin from 203.0.113.7 "
        f"port {40000 + i} ssh2"
        for i in range(4)
    ]
    out.append(f"{stamp} web1 sshd[9010]: Accepted password for admin from 203.0.113.7 port 1 ssh2")
    return "\n".join(out) + "\n"


def scrape(base: str) -> dict:
    resp = requests.get(f"{base}/metrics", timeout=10)
    assert resp.status_code == 200
    return parse_exposition(resp.text)


@pytest.mark.slow
def test_exporter_logs_collector_end_to_end(exporter, nginx_log: NginxLog, tmp_path) -> None:
    auth_log = tmp_path / "auth.log"
    auth_log.write_text(sshd_lines(time.time()))
    cfg = config_text(tmp_path, nginx_log, auth_log)
    (tmp_path / "config.yml").write_text(cfg)
    sent = [
        ("/index.html", "Mozilla/5.0"),
        ("/item?id=1%27%20OR%20%271%27=%271", "Mozilla/5.0"),
        ("/item?id=2%20UNION%20SELECT%20password%20FROM%20users", "Mozilla/5.0"),
        ("/../../etc/passwd", "Mozilla/5.0"),
        ("/", "Nikto/2.1.6"),
    ] + [("/export/cases.csv", "Mozilla/5.0")] * 4
    for target, ua in sent:
        send(nginx_log, target, ua)
    wait_lines(nginx_log.access_log, len(sent))

    base = exporter(cfg)
    m = scrape(base)
    assert m[("sscp_exporter_collector_success", frozenset({("collector", "logs")}))] == 1
    resp = {k[1]: v for k, v in m.items() if k[0] == "nginx_http_responses_total"}
    assert resp[frozenset({("target", "web1"), ("status_class", "2xx")})] == 6
    assert resp[frozenset({("target", "web1"), ("status_class", "4xx")})] == 3
    inf = frozenset({("target", "web1"), ("le", "+Inf")})
    assert m[("nginx_http_request_duration_seconds_bucket", inf)] == len(sent)
    le2 = frozenset({("target", "web1"), ("le", "2.0")})
    assert m[("nginx_http_request_duration_seconds_bucket", le2)] == len(sent)

    def events_of(kind: str) -> float:
        return m[("sscp_security_events_total", frozenset({("type", kind)}))]

    assert events_of("sql_injection") == 2
    assert events_of("path_traversal") == 1
    assert events_of("scanner") == 1
    assert events_of("abnormal_export") == 1  # 4 downloads > max_requests 3 from one IP
    assert events_of("brute_force") == 2  # per account admin and per IP 203.0.113.7
    assert events_of("login_after_failures") == 2
    assert events_of("xss") == 0
    attempts = {k[1]: v for k, v in m.items() if k[0] == "sscp_login_attempts_total"}
    assert attempts[frozenset({("log", "sshd"), ("result", "failure")})] == 4

    # What Prometheus would scrape passes promtool's lint.
    text = requests.get(f"{base}/metrics", timeout=10).text
    check = promtool_check_metrics(text)
    assert check.returncode == 0, check.stdout + check.stderr

    # The monthly report reads the stored events.
    out = subprocess.run(
        sscp_ops_cmd(
            "logs",
            "events",
            "--config.file",
            str(tmp_path / "config.yml"),
            "--since",
            "2000-01-01",
            "--format",
            "json",
        ),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    events = json.loads(out.stdout)
    assert len(events) == 9
    assert {e["type"] for e in events} == {
        "sql_injection",
        "path_traversal",
        "scanner",
        "abnormal_export",
        "brute_force",
        "login_after_failures",
    }
    assert all(e["time_iso"] and e["client_ip"] for e in events)


def test_restart_resumes_without_double_counting(nginx_log: NginxLog, tmp_path) -> None:
    auth_log = tmp_path / "auth.log"
    auth_log.write_text("")
    cfg = parse_config(config_text(tmp_path, nginx_log, auth_log)).logs
    assert cfg is not None
    send(nginx_log, "/item?id=1%27%20OR%20%271%27=%271", "Mozilla/5.0")
    wait_lines(nginx_log.access_log, 1)
    first = LogsCollector(cfg)
    assert first.read() == 1
    first.close()
    # Down: the position file says where it stopped; new lines arrive meanwhile.
    send(nginx_log, "/q?s=%3Cscript%3Ealert(1)%3C/script%3E", "Mozilla/5.0")
    send(nginx_log, "/index.html", "Mozilla/5.0")
    wait_lines(nginx_log.access_log, 3)
    second = LogsCollector(cfg)
    assert second.read() == 1  # only the XSS: the SQL injection is not read or stored again
    assert second.sources[0].lines == 2
    second.close()
    store = EventStore(cfg.events_db)
    assert sorted(e.type for e in store.query()) == ["sql_injection", "xss"]
    store.close()


def test_collector_is_built_only_with_a_logs_section() -> None:
    assert CATALOG["logs"].build(parse_config("exporter: {}\n")) == []


@pytest.mark.slow
def test_mysql_exports_found_in_a_real_slow_log(tmp_path) -> None:
    with own_mariadb(tmp_path / "db") as db:
        conn = pymysql.connect(unix_socket=str(db.socket), user="root", autocommit=True)
        cur = conn.cursor()
        cur.execute("CREATE DATABASE sscp_exp")
        cur.execute("CREATE TABLE sscp_exp.people (id INT PRIMARY KEY, phone CHAR(11))")
        cur.execute("INSERT INTO sscp_exp.people VALUES (1, '13812345678'), (2, '13912345678')")
        out = tmp_path / "dump.txt"
        cur.execute(f"SELECT * FROM sscp_exp.people INTO OUTFILE '{out}'")
        cur.execute("USE sscp_exp")
        cur.execute("SELECT /*!40001 SQL_NO_CACHE */ * FROM `people`")
        cur.execute("SELECT * FROM people WHERE id = 1")
        conn.close()
    cfg = parse_config(
        "logs:\n"
        f"  positions_dir: {tmp_path / 'positions'}\n"
        f"  events_db: {tmp_path / 'events.sqlite'}\n"
        "  exports: {backup_accounts: [backup]}\n"
        f"  files: [{{name: db1-slow, path: {db.slow_log}, kind: mysql_slow, target: db1}}]\n"
    ).logs
    assert cfg is not None
    collector = LogsCollector(cfg)
    collector.read()
    # The last entry is complete once another one follows (or at the next restart's read).
    with open(db.slow_log, "a") as f:
        f.write("# User@Host: x[x] @ localhost []\n# Query_time: 0.1  Lock_time: 0\nSELECT 1;\n")
    collector.read()
    metrics = {m.name: m for m in collector.metrics()}
    stored = collector.store.query(types=["abnormal_export"])
    collector.close()
    assert sorted(e.rule for e in stored) == ["dump-by-non-backup", "into-outfile"]
    assert all(e.account == "root" for e in stored)
    slow = metrics["mysql_slow_queries"].samples[0]
    assert slow.labels == {"target": "db1"} and slow.value > 5


@pytest.mark.slow
def test_running_exports_seen_in_processlist(tmp_path) -> None:
    dump = require_binary("mariadb-dump", "mysqldump")
    with own_mariadb(tmp_path / "db") as db:
        admin = pymysql.connect(unix_socket=str(db.socket), user="root", autocommit=True)
        cur = admin.cursor()
        cur.execute("CREATE DATABASE sscp_exp")
        cur.execute("CREATE TABLE sscp_exp.people (id INT PRIMARY KEY, phone CHAR(11))")
        cur.execute("INSERT INTO sscp_exp.people VALUES (1, '13812345678')")
        cur.execute("LOCK TABLES sscp_exp.people WRITE")  # both exports wait, visible
        dumper = subprocess.Popen(
            [
                dump,
                "--no-defaults",
                f"--socket={db.socket}",
                "-uroot",
                "--single-transaction",
                "sscp_exp",
                "people",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        other = pymysql.connect(unix_socket=str(db.socket), user="root", autocommit=True)
        outfile = tmp_path / "people.txt"
        import threading

        worker = threading.Thread(
            target=lambda: other.cursor().execute(
                f"SELECT * FROM sscp_exp.people INTO OUTFILE '{outfile}'"
            )
        )
        worker.start()
        try:
            cfg = parse_config(
                "logs:\n"
                f"  positions_dir: {tmp_path / 'positions'}\n"
                f"  events_db: {tmp_path / 'events.sqlite'}\n"
                f"  files: [{{name: db1-slow, path: {tmp_path / 'none.log'}, kind: mysql_slow,"
                " target: db1}]\n"
                f"targets: {{mysql: [{{name: db1, address: '127.0.0.1:{db.port}', user: root}}]}}\n"
            )
            collector = LogsCollector(cfg.logs, mysql_targets=cfg.targets.mysql)
            deadline = time.monotonic() + 20
            rules: list[str] = []
            while time.monotonic() < deadline and len(rules) < 2:
                collector.read()
                rules = sorted(e.rule for e in collector.store.query(types=["abnormal_export"]))
                time.sleep(0.2)
            collector.read()  # seen again: not counted again
            assert rules == ["dump-by-non-backup-running", "into-outfile-running"]
            assert collector.security["abnormal_export"] == 2
            collector.close()
        finally:
            cur.execute("UNLOCK TABLES")
            worker.join(20)
            dumper.wait(20)
            other.close()
            admin.close()


@pytest.mark.slow
def test_rows_sent_per_account_from_performance_schema(tmp_path) -> None:
    with own_mariadb(tmp_path / "db", performance_schema=True) as db:
        cfg = parse_config(
            "logs:\n"
            f"  positions_dir: {tmp_path / 'positions'}\n"
            f"  events_db: {tmp_path / 'events.sqlite'}\n"
            "  exports: {max_rows_sent: 50, backup_accounts: [backup]}\n"
            f"  files: [{{name: db1-slow, path: {tmp_path / 'none.log'}, kind: mysql_slow,"
            " target: db1}]\n"
            f"targets: {{mysql: [{{name: db1, address: '127.0.0.1:{db.port}', user: root}}]}}\n"
        )
        collector = LogsCollector(cfg.logs, mysql_targets=cfg.targets.mysql)
        collector.read()  # the baseline
        conn = pymysql.connect(unix_socket=str(db.socket), user="root")
        with conn.cursor() as cur:
            cur.execute("SELECT * FROM information_schema.COLLATIONS")
            many = len(cur.fetchall())
        conn.close()
        assert many > 50
        collector.read()
        collector.read()  # nothing new: no second event
        metrics = {m.name: m for m in collector.metrics()}
        stored = collector.store.query(types=["abnormal_export"])
        collector.close()
    assert [(e.rule, e.account) for e in stored] == [("rows-sent-per-account", "root")]
    rows = {s.labels["account"]: s.value for s in metrics["mysql_account_rows_sent"].samples}
    assert rows["root"] >= many


def test_platform_login_log_through_the_collector(tmp_path) -> None:
    log = tmp_path / "login.log"
    log.write_text(
        "2026-11-28 10:00:01 alice 10.1.1.1 FAIL\n"
        "2026-11-28 10:00:02 alice 10.1.1.1 FAIL\n"
        "2026-11-28 10:00:03 alice 10.1.1.1 FAIL\n"
        "garbage that is no login line\n"
        "2026-11-28 10:00:09 alice 10.1.1.1 成功\n"
        "2026-11-28 10:01:00 olduser 10.1.1.2 成功\n"
    )
    cfg = parse_config(
        "logs:\n"
        f"  positions_dir: {tmp_path / 'positions'}\n"
        f"  events_db: {tmp_path / 'events.sqlite'}\n"
        "  logins: {maxretry: 3, work_hours: [0, 24], disabled_accounts: [olduser]}\n"
        "  files:\n"
        f"    - {{name: platform-login, path: {log}, kind: login, time_format: '%Y-%m-%d %H:%M:%S',"
        " pattern: '(?P<time>\\S+ \\S+) (?P<user>\\S+) (?P<ip>\\S+) (?P<result>\\S+)'}\n"
    ).logs
    collector = LogsCollector(cfg)
    assert collector.read() == 5
    got = sorted((e.type, e.account) for e in collector.store.query())
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for m in collector.metrics()
        for s in m.samples
    }
    collector.close()
    assert got == [
        ("brute_force", "alice"),  # per account
        ("brute_force", "alice"),  # per IP
        ("disabled_account_login", "olduser"),
        ("login_after_failures", "alice"),
        ("login_after_failures", "alice"),
    ]
    key = ("sscp_login_attempts_total", (("log", "platform-login"), ("result", "success")))
    assert samples[key] == 2
    assert samples[("sscp_logs_unparsed_lines_total", (("log", "platform-login"),))] == 1


def test_privileged_logins_outside_the_bastion_through_the_collector(tmp_path) -> None:
    # The captured MariaDB logs (server_audit and general log of one private mariadbd 10.11),
    # followed as the exporter follows them: the events, the counter, the store.
    fixtures = Path(__file__).resolve().parent / "fixtures" / "logs"
    for name in ("mariadb-audit.log", "mariadb-general.log"):
        (tmp_path / name).write_text((fixtures / name).read_text())
    cfg = parse_config(
        "logs:\n"
        f"  positions_dir: {tmp_path / 'positions'}\n"
        f"  events_db: {tmp_path / 'events.sqlite'}\n"
        "  logins: {work_hours: [0, 24], learn_logins: 1000, bastion_hosts: [192.0.2.2],"
        " privileged_accounts: [root, dba]}\n"
        "  files:\n"
        f"    - {{name: db1-audit, path: {tmp_path / 'mariadb-audit.log'}, kind: mariadb_audit}}\n"
        f"    - {{name: db1-general, path: {tmp_path / 'mariadb-general.log'},"
        " kind: mariadb_general}\n"
    ).logs
    collector = LogsCollector(cfg)
    collector.read()
    got = sorted(
        (e.source, e.account, e.client_ip)
        for e in collector.store.query()
        if e.type == "privileged_outside_bastion"
    )
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for m in collector.metrics()
        for s in m.samples
    }
    collector.close()
    expected = [("dba", "127.0.0.1"), ("dba", "localhost"), ("root", "localhost")]
    assert got == sorted(
        [("db1-audit", u, ip) for u, ip in expected]
        + [("db1-general", u, ip) for u, ip in expected]
    )
    key = ("sscp_security_events_total", (("type", "privileged_outside_bastion"),))
    assert samples[key] == 6
    ok = ("sscp_login_attempts_total", (("log", "db1-audit"), ("result", "success")))
    assert samples[ok] == 6
