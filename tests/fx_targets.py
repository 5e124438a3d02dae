"""Fixtures for the remote-system collectors (nginx, tomcat, redis, mysql): a MySQL user of
our own, the Debian reference exporters, an exporter process whose stderr can be read, and a
Redis-speaking TCP server that answers garbage.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest
from fx_servers import mariadb_server, tcp_listener
from helpers import exporter_running, free_port, missing, require_binary, running

MYSQL_HOST, MYSQL_PORT = "127.0.0.1", 3306


# ---------------------------------------------------------------------------- exposition

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text format -> {(name, labels): value}, sample names exactly as written
    (prometheus_client's parser appends ``_total`` to counters that lack it)."""
    out: dict[tuple[str, frozenset], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise ValueError(f"not a sample line: {line!r}")
        name, labels, value = match.groups()
        pairs = frozenset(
            (k, v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"))
            for k, v in _LABEL.findall(labels or "")
        )
        out[(name, pairs)] = float(value)
    return out


# ---------------------------------------------------------------------------- MySQL user


@dataclass(frozen=True)
class MysqlUser:
    user: str
    password: str
    password_file: Path
    host: str = MYSQL_HOST
    port: int = MYSQL_PORT

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def mysql_root() -> pymysql.connections.Connection:
    """root on the machine's MariaDB (127.0.0.1:3306, no password)."""
    try:
        return pymysql.connect(
            host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="", connect_timeout=5
        )
    except pymysql.err.OperationalError as exc:
        missing(f"MariaDB on {MYSQL_HOST}:{MYSQL_PORT} ({exc.args[0]})")
        raise


@dataclass(frozen=True)
class MysqlServer:
    host: str
    port: int
    root: Callable[[], pymysql.connections.Connection]  # a new root connection


SHARED_MYSQL = MysqlServer(MYSQL_HOST, MYSQL_PORT, mysql_root)


def _shared_mysql_up() -> bool:
    try:
        pymysql.connect(
            host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="", connect_timeout=3
        ).close()
        return True
    except pymysql.err.MySQLError:
        return False


@pytest.fixture(scope="session")
def mysql_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MysqlServer]:
    """The machine's MariaDB on 127.0.0.1:3306 when it runs, else a private mariadbd."""
    if _shared_mysql_up():
        yield SHARED_MYSQL
        return
    with mariadb_server(tmp_path_factory.mktemp("mysqld")) as server:
        yield MysqlServer(server.host, server.port, server.root)


@contextmanager
def mysql_exporter_user(directory: Path, server: MysqlServer = SHARED_MYSQL) -> Iterator[MysqlUser]:
    """A dedicated exporter user (random name and password, in ``directory``/exporter.pass)
    with the grants the docs ask for, on ``server``; dropped afterwards."""
    root = server.root()
    user = f"sscp_exp_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(18)
    path = directory / "exporter.pass"
    path.write_text(password + "\n")
    path.chmod(0o600)
    account = f"'{user}'@'{MYSQL_HOST}'"
    with root.cursor() as cur:
        cur.execute(f"CREATE USER {account} IDENTIFIED BY %s", (password,))
        cur.execute(f"GRANT PROCESS, REPLICATION CLIENT, SELECT ON *.* TO {account}")
        cur.execute("SELECT VERSION()")
        if "MariaDB" in cur.fetchone()[0]:
            cur.execute(f"GRANT SLAVE MONITOR ON *.* TO {account}")
    try:
        yield MysqlUser(user, password, path, host=server.host, port=server.port)
    finally:
        root.close()
        root = server.root()  # a fresh one: the first may have timed out meanwhile
        with root.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS {account}")
        root.close()


@pytest.fixture(scope="session")
def mysql_user(
    mysql_server: MysqlServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MysqlUser]:
    with mysql_exporter_user(tmp_path_factory.mktemp("mysql"), mysql_server) as user:
        yield user


# ---------------------------------------------------------------------------- reference exporters


@contextmanager
def reference_exporter(cmd: list[str], port: int, env: dict | None = None) -> Iterator[str]:
    url = f"http://127.0.0.1:{port}/metrics"
    # Reference exporters log per failed scrape and nobody reads it: no pipe to fill.
    with running(cmd, ready_url=url, env=env, stderr=subprocess.DEVNULL):
        yield url


@contextmanager
def nginx_reference(stub_status_url: str) -> Iterator[str]:
    """Debian's prometheus-nginx-exporter (0.11) scraping ``stub_status_url``."""
    binary = require_binary("prometheus-nginx-exporter")
    port = free_port()
    cmd = [
        binary,
        f"-nginx.scrape-uri={stub_status_url}",
        f"-web.listen-address=127.0.0.1:{port}",
    ]
    with reference_exporter(cmd, port) as url:
        yield url


@contextmanager
def redis_reference(address: str, password: str | None = None) -> Iterator[str]:
    """Debian's prometheus-redis-exporter (1.45) for ``address``."""
    binary = require_binary("prometheus-redis-exporter")
    port = free_port()
    cmd = [binary, f"-redis.addr=redis://{address}", f"-web.listen-address=127.0.0.1:{port}"]
    env = {"REDIS_PASSWORD": password} if password else None
    with reference_exporter(cmd, port, env) as url:
        yield url


@contextmanager
def mysqld_reference(user: MysqlUser, directory: Path, *flags: str) -> Iterator[str]:
    """Debian's prometheus-mysqld-exporter (0.14, default collectors + ``flags``) as ``user``."""
    binary = require_binary("prometheus-mysqld-exporter")
    cnf = directory / "exporter.my.cnf"
    cnf.write_text(
        f"[client]\nuser={user.user}\npassword={user.password}\nhost={user.host}\n"
        f"port={user.port}\n"
    )
    cnf.chmod(0o600)
    port = free_port()
    cmd = [binary, f"--config.my-cnf={cnf}", f"--web.listen-address=127.0.0.1:{port}", *flags]
    with reference_exporter(cmd, port) as url:
        yield url


# ---------------------------------------------------------------------------- our exporter


@contextmanager
def start_exporter(directory: Path, config_text: str) -> Iterator[str]:
    """``sscp-ops exporter`` with ``config_text`` on a free port (for module-scoped fixtures);
    yields its base URL."""
    cfg = directory / f"exporter-{secrets.token_hex(4)}.yml"
    cfg.write_text(config_text)
    with exporter_running(cfg) as (base, _):
        yield base


@dataclass
class ExporterProcess:
    base: str
    proc: subprocess.Popen

    @property
    def metrics_url(self) -> str:
        return f"{self.base}/metrics"

    def stop(self) -> str:
        """Stop the exporter (SIGTERM) and return everything it wrote to stderr."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        return self.proc.stderr.read() if self.proc.stderr else ""


@pytest.fixture
def exporter_process(write_config) -> Iterator:
    """Factory: ``exporter_process(config_text)`` -> :class:`ExporterProcess` (stopped at the
    end of the test); ``.stop()`` returns its stderr."""
    with ExitStack() as stack:

        def start(config_text: str, env: dict | None = None) -> ExporterProcess:
            cfg = write_config(config_text, f"exporter-{secrets.token_hex(4)}.yml")
            return ExporterProcess(*stack.enter_context(exporter_running(cfg, env=env)))

        yield start


# ---------------------------------------------------------------------------- garbage Redis


def _read_command(rfile) -> list[bytes] | None:
    """One RESP request (``*N`` array of bulk strings) from ``rfile``; None at EOF."""
    line = rfile.readline()
    if not line:
        return None
    if not line.startswith(b"*"):
        return line.split()
    args = []
    for _ in range(int(line[1:])):
        size = int(rfile.readline()[1:])
        args.append(rfile.read(size + 2)[:-2])
    return args


@contextmanager
def garbage_redis(info_reply: bytes) -> Iterator[int]:
    """A TCP server speaking just enough RESP that ``INFO`` answers ``info_reply`` (e.g. an INFO
    cut short); other commands get +OK, ``SLOWLOG LEN`` 0. Yields its port."""
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        conn.settimeout(5)
        with conn, conn.makefile("rb") as rfile:
            while not stop.is_set():
                try:
                    command = _read_command(rfile)
                except (OSError, ValueError):
                    return
                if not command:
                    return
                name = command[0].upper()
                if name == b"INFO":
                    reply = b"$%d\r\n%s\r\n" % (len(info_reply), info_reply)
                elif name == b"SLOWLOG":
                    reply = b":0\r\n"
                elif name == b"CONFIG":
                    reply = b"*2\r\n$9\r\ndatabases\r\n$2\r\n16\r\n"
                else:
                    reply = b"+OK\r\n"
                try:
                    conn.sendall(reply)
                except OSError:
                    return

    def on_connect(conn: socket.socket) -> None:
        threading.Thread(target=serve, args=(conn,), daemon=True).start()

    try:
        with tcp_listener(on_connect, "garbage-redis", backlog=16) as port:
            yield port
    finally:
        stop.set()
