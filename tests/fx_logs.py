"""Fixtures for the log-analysis tests: a real Nginx writing an access log in a given format,
and a throw-away MariaDB server writing a slow query log."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import free_port, require_binary, running, wait_tcp

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
    binary = require_binary("nginx", "/usr/sbin/nginx")
    port, slow_port = free_port(), free_port()
    prefix = tmp / "nginx"
    root = prefix / "html"
    (prefix / "logs").mkdir(parents=True)
    root.mkdir()
    (root / "index.html").write_text("<h1>ok</h1>\n")
    (root / "export").mkdir()
    (root / "export" / "cases.csv").write_text("id,name\n" + "1,x\n" * 5000)
    access_log = prefix / "logs" / "access.log"
    escaped = log_format.replace("'", "\\'")
    conf = prefix / "nginx.conf"
    conf.write_text(
        textwrap.dedent(
            f"""
            worker_processes 1;
            pid {prefix}/nginx.pid;
            error_log {prefix}/logs/error.log warn;
            events {{ worker_connections 64; }}
            http {{
                access_log off;
                log_format sscp '{escaped}';
                client_body_temp_path {prefix}/tmp_body;
                proxy_temp_path {prefix}/tmp_proxy;
                fastcgi_temp_path {prefix}/tmp_fcgi;
                uwsgi_temp_path {prefix}/tmp_uwsgi;
                scgi_temp_path {prefix}/tmp_scgi;
                server {{
                    listen 127.0.0.1:{port};
                    root {root};
                    access_log {access_log} sscp;
                    location /slow {{ proxy_pass http://127.0.0.1:{slow_port}/; }}
                }}
            }}
            """
        )
    )
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(user + conf.read_text())
    cmd = [binary, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"]
    upstream = ThreadingHTTPServer(("127.0.0.1", slow_port), _SlowHandler)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    try:
        with running(cmd):
            wait_tcp(port)
            yield NginxLog(f"http://127.0.0.1:{port}", port, access_log, log_format, root)
    finally:
        upstream.shutdown()
        upstream.server_close()


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
def own_mariadb(tmp: Path) -> Iterator[MariaDB]:
    """A private mariadbd in a temp datadir on a free port, logging every statement as slow
    (long_query_time=0). The shared MariaDB on 3306 is never touched."""
    install = require_binary("mariadb-install-db", "mysql_install_db")
    server = require_binary("mariadbd", "/usr/sbin/mariadbd", "mysqld", "/usr/sbin/mysqld")
    datadir, run = tmp / "data", tmp / "run"
    run.mkdir()
    slow_log = tmp / "slow.log"
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [
            install,
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
