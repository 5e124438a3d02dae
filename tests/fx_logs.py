"""Fixtures for the log-analysis tests: a real Nginx writing an access log in a given format,
and a throw-away MariaDB server writing a slow query log."""

from __future__ import annotations

import base64
import http.client
import os
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import free_port, require_binary, running, serving, wait_tcp

#: The log format of the issue: combined plus $request_time.
ISSUE_FORMAT = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" $request_time'
)


@dataclass(frozen=True)
class NginxLog:
    base_url: str
    port: int
    access_log: Path
    log_format: str
    root: Path


@contextmanager
def nginx_logging(tmp: Path, log_format: str = ISSUE_FORMAT) -> Iterator[NginxLog]:
    """Nginx on a free loopback port serving ``root/``, logging every request in ``log_format``.

    ``/slow`` answers after 2.1 s (proxied to a local upstream that waits), for the
    request-duration histogram.
    """
    from fx_servers import nginx_running  # a plugin registered after this one

    port, slow_port = free_port(), free_port()
    prefix = tmp / "nginx"
    root = prefix / "html"
    root.mkdir(parents=True)
    (root / "index.html").write_text("<h1>ok</h1>\n")
    (root / "export").mkdir()
    (root / "export" / "cases.csv").write_text("id,name\n" + "1,x\n" * 5000)
    access_log = prefix / "logs" / "access.log"
    escaped = log_format.replace("'", "\\'")
    http_conf = textwrap.dedent(
        f"""\
        log_format sscp '{escaped}';
        server {{
            listen 127.0.0.1:{port};
            root {root};
            access_log {access_log} sscp;
            location /slow {{ proxy_pass http://127.0.0.1:{slow_port}/; }}
        }}"""
    )
    upstream = ThreadingHTTPServer(("127.0.0.1", slow_port), _SlowHandler)
    with serving(upstream), nginx_running(prefix, http_conf):
        wait_tcp(port)
        yield NginxLog(f"http://127.0.0.1:{port}", port, access_log, log_format, root)


class _SlowHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        time.sleep(2.1)
        body = b"slow\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def send(log: NginxLog, target: str, ua: str, user: str | None = None) -> tuple[int, int]:
    conn = http.client.HTTPConnection("127.0.0.1", log.port, timeout=10)
    headers = {"User-Agent": ua}
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:x".encode()).decode()
    conn.putrequest("GET", target, skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, len(body)


def wait_lines(path: Path, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} has fewer than {count} lines")


@pytest.fixture
def nginx_log(tmp_path: Path) -> Iterator[NginxLog]:
    with nginx_logging(tmp_path) as log:
        yield log


@dataclass(frozen=True)
class MariaDB:
    port: int
    socket: Path
    slow_log: Path
    datadir: Path

    def client(self, *args: str) -> list[str]:
        binary = require_binary("mariadb", "mysql")
        return [binary, "--protocol=socket", f"--socket={self.socket}", "-uroot", *args]


@contextmanager
def own_mariadb(tmp: Path, performance_schema: bool = False) -> Iterator[MariaDB]:
    """A private mariadbd in a temp datadir on a free port, logging every statement as slow
    (long_query_time=0). The shared MariaDB on 3306 is never touched."""
    install = require_binary("mariadb-install-db", "mysql_install_db")
    server = require_binary("mariadbd", "/usr/sbin/mariadbd", "mysqld", "/usr/sbin/mysqld")
    datadir, run = tmp / "data", tmp / "run"
    run.mkdir(parents=True)
    slow_log = tmp / "slow.log"
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [
            install,
            "--no-defaults",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *user,
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    port = free_port()
    sock = run / "mysqld.sock"
    cmd = [
        server,
        "--no-defaults",
        f"--datadir={datadir}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--socket={sock}",
        f"--pid-file={run / 'mysqld.pid'}",
        "--slow-query-log=1",
        "--long-query-time=0",
        "--log-slow-verbosity=query_plan",
        f"--slow-query-log-file={slow_log}",
        "--innodb-buffer-pool-size=32M",
        f"--performance-schema={'ON' if performance_schema else 'OFF'}",
        "--skip-log-bin",
        *user,
    ]
    with running(cmd, timeout=60):
        wait_tcp(port, timeout=60)
        deadline = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        yield MariaDB(port, sock, slow_log, datadir)
    shutil.rmtree(datadir, ignore_errors=True)


def run_workload(db: MariaDB, rounds: int = 300, seed: int = 5) -> None:
    """An application-like mix of statements against ``db`` (own database ``sscp_slow``):
    point lookups, IN lists of varying length, scans on unindexed columns, joins, multi-row
    inserts, updates and deletes, with literals, comments and spacing varying between runs."""
    import random

    import pymysql

    rng = random.Random(seed)
    conn = pymysql.connect(unix_socket=str(db.socket), user="root", autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("CREATE DATABASE IF NOT EXISTS sscp_slow")
        cur.execute("USE sscp_slow")
        cur.execute(
            "CREATE TABLE cases (id INT PRIMARY KEY AUTO_INCREMENT, district_id INT NOT NULL,"
            " owner_id INT NOT NULL, status VARCHAR(16) NOT NULL, title VARCHAR(64) NOT NULL,"
            " amount DECIMAL(10,2) NOT NULL, created_at DATETIME NOT NULL)"
        )
        cur.execute("CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(32), phone CHAR(11))")
        cur.execute(
            "CREATE TABLE audit (id INT PRIMARY KEY AUTO_INCREMENT, who VARCHAR(32),"
            " action VARCHAR(32))"
        )
        for start in range(0, 200, 50):
            rows = ", ".join(
                f"({i}, 'user{i}', '138{i:08d}')" for i in range(start + 1, start + 51)
            )
            cur.execute(f"INSERT INTO users (id, name, phone) VALUES {rows}")
        for _ in range(40):
            rows = ", ".join(
                f"({rng.randint(1, 16)}, {rng.randint(1, 200)}, "
                f"'{rng.choice(['open', 'closed', 'pending'])}', 'case {rng.random():.6f}', "
                f"{rng.uniform(0, 9999):.2f}, '2026-{rng.randint(1, 11):02d}-"
                f"{rng.randint(1, 28):02d} 10:00:00')"
                for _ in range(100)
            )
            cur.execute(
                "INSERT INTO cases (district_id, owner_id, status, title, amount, created_at)"
                f" VALUES {rows}"
            )
        statuses = ["open", "closed", "pending"]
        for _ in range(rounds):
            n = rng.randint(1, 4000)
            cur.execute(f"SELECT * FROM cases WHERE id = {n}")
            cur.execute(f"select  title ,amount\n  from cases where ID={n + 1}")
            ids = ",".join(str(rng.randint(1, 4000)) for _ in range(rng.randint(1, 12)))
            cur.execute(f"SELECT id, status FROM cases WHERE id IN ({ids})")
            if rng.random() < 0.5:
                cur.execute(
                    f"SELECT id, title FROM cases WHERE district_id = {rng.randint(1, 16)} "
                    f"AND status = '{rng.choice(statuses)}' ORDER BY created_at ASC "
                    f"LIMIT {rng.randint(5, 50)}"
                )
            if rng.random() < 0.3:
                cur.execute(f"SELECT COUNT(*) FROM cases WHERE title LIKE '%{rng.randint(0, 99)}%'")
            if rng.random() < 0.3:
                cur.execute(
                    "SELECT c.id, u.name FROM cases c JOIN users u ON u.id = c.owner_id "
                    f"WHERE c.amount > {rng.uniform(0, 9999):.2f} LIMIT 10 OFFSET 20"
                )
            if rng.random() < 0.2:
                cur.execute(
                    "SELECT /* monthly report */ district_id, SUM(amount) FROM cases "
                    f"WHERE created_at >= '2026-{rng.randint(1, 11):02d}-01' GROUP BY district_id"
                )
            if rng.random() < 0.4:
                cur.execute(
                    f"UPDATE cases SET status = '{rng.choice(statuses)}' "
                    f"WHERE id = {rng.randint(1, 4000)}"
                )
            if rng.random() < 0.3:
                rows = ", ".join(
                    f"('user{rng.randint(1, 200)}', 'view')" for _ in range(rng.randint(1, 5))
                )
                cur.execute(f"INSERT INTO audit (who, action) VALUES {rows}")
            if rng.random() < 0.1:
                cur.execute(f"DELETE FROM audit WHERE id < {rng.randint(1, 50)}")
            if rng.random() < 0.1:
                cur.execute(f"SELECT name FROM users WHERE phone = '138{n:08d}' AND TRUE")
            if rng.random() < 0.05:
                cur.execute(
                    f"SELECT * FROM cases WHERE status = 'open' ORDER BY amount DESC, id ASC "
                    f"LIMIT {rng.randint(0, 9)}, 10"
                )
    finally:
        conn.close()
