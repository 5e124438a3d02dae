"""Real Nginx, Tomcat 10, Redis and MariaDB servers for tests, each in a temp dir on a free
loopback port.

The context managers (``nginx_server``, ``tomcat_server``, ``redis_server``,
``mariadb_server``, ``silent_server``) can be used from any test or benchmark; the pytest
fixtures below wrap the first ones:

- ``nginx`` (session): Nginx with ``stub_status`` at ``/stub_status``, a static root (files
  written into ``nginx.root`` are served at ``nginx.url(path)``), and an HTML error page at
  ``/broken`` (a 200 answer that is not stub_status, for garbage tests). Content types come
  from /etc/nginx/mime.types; ``nginx_server(dir, extra_server_conf)`` adds locations.
- ``tomcat`` (session): Tomcat 10 from Debian (``/usr/share/tomcat10``) with a temporary
  CATALINA_BASE (conf copied from /etc/tomcat10), the manager webapp of tomcat10-admin, and a
  user with the ``manager-status`` role. ``tomcat.status_url`` is the XML status page.
- ``nginx_factory`` / ``redis_factory``: start extra servers inside one test (stopped at its
  end), e.g. a Redis to stop and start again.
- ``silent_port``: a TCP server that accepts connections and never answers.
- ``slow_proxy(upstream, delay, marker)``: a TCP proxy that holds matching requests to a real
  server for ``delay`` seconds (a healthy but slow target).

- ``mariadb_server(dir, *options)``: a private ``mariadbd`` (fresh ``mariadb-install-db``
  data dir, root without password on its unix socket), for what the shared MariaDB on
  127.0.0.1:3306 must not be used for (server options, replication, restarts).

Every server is stopped when its fixture ends; logs and pid files stay in the temp dir.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from helpers import free_port, missing, require_binary, running, wait_tcp

# ---------------------------------------------------------------------------- Nginx


@dataclass
class Nginx:
    prefix: Path
    port: int
    root: Path
    proc: subprocess.Popen
    host: str = "127.0.0.1"

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    @property
    def stub_status_url(self) -> str:
        return self.url("/stub_status")

    @property
    def error_log(self) -> Path:
        return self.prefix / "logs" / "error.log"


_NGINX_CONF = """\
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    {mime}default_type application/octet-stream;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
{http}
}}
"""


@contextmanager
def nginx_running(
    prefix: Path, http_conf: str, ready_url: str | None = None
) -> Iterator[subprocess.Popen]:
    """Nginx in the foreground (``daemon off``) with its conf, pid, temp files and
    ``logs/error.log`` in ``prefix``; ``http_conf`` (server blocks, log formats) goes inside
    the ``http`` block. Ready when ``ready_url`` answers (else the caller waits)."""
    binary = require_binary("nginx", "/usr/sbin/nginx")
    for sub in ("logs", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        _NGINX_CONF.format(
            # as root, workers would drop to "nobody", who cannot read pytest's 0700 temp dirs
            user=f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else "",
            mime="include /etc/nginx/mime.types;\n    "
            if Path("/etc/nginx/mime.types").exists()
            else "",
            prefix=prefix,
            http=textwrap.indent(http_conf, " " * 4),
        )
    )
    cmd = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "logs" / "error.log")]
    with running([*cmd, "-g", "daemon off;"], ready_url=ready_url) as proc:
        yield proc


_STUB_STATUS_SERVER = """\
server {{
    listen {host}:{port};
    root {root};
    location = /stub_status {{ stub_status; }}
    location = /broken {{
        default_type text/html;
        return 200 "<html><head><title>502 Bad Gateway</title></head><body>bad</body></html>";
    }}
{extra}
}}"""


@contextmanager
def nginx_server(directory: Path, extra_server_conf: str = "") -> Iterator[Nginx]:
    """Nginx with ``stub_status`` and a static root, its prefix, pid and logs in ``directory``.

    ``extra_server_conf`` is pasted inside the ``server`` block (more locations).
    """
    root = directory / "root"
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = _STUB_STATUS_SERVER.format(
        host="127.0.0.1", port=port, root=root, extra=textwrap.indent(extra_server_conf, " " * 4)
    )
    with nginx_running(directory, server, f"http://127.0.0.1:{port}/stub_status") as proc:
        yield Nginx(prefix=directory, port=port, root=root, proc=proc)


# ---------------------------------------------------------------------------- Tomcat

TOMCAT_HOME = Path("/usr/share/tomcat10")
TOMCAT_CONF = Path("/etc/tomcat10")
TOMCAT_MANAGER = Path("/usr/share/tomcat10-admin/manager")

_TOMCAT_SERVER_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<Server port="-1" shutdown="SHUTDOWN">
  <Listener className="org.apache.catalina.core.JreMemoryLeakPreventionListener" />
  <Listener className="org.apache.catalina.mbeans.GlobalResourcesLifecycleListener" />
  <GlobalNamingResources>
    <Resource name="UserDatabase" auth="Container" type="org.apache.catalina.UserDatabase"
              factory="org.apache.catalina.users.MemoryUserDatabaseFactory"
              pathname="conf/tomcat-users.xml" />
  </GlobalNamingResources>
  <Service name="Catalina">
    <Connector address="127.0.0.1" port="{port}" protocol="HTTP/1.1"
               connectionTimeout="20000" maxThreads="{max_threads}" />
    <Engine name="Catalina" defaultHost="localhost">
      <Realm className="org.apache.catalina.realm.UserDatabaseRealm"
             resourceName="UserDatabase"/>
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false" />
    </Engine>
  </Service>
</Server>
"""

_TOMCAT_USERS_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<tomcat-users xmlns="http://tomcat.apache.org/xml" version="1.0">
  <role rolename="manager-status"/>
  <user username="{user}" password="{password}" roles="manager-status"/>
</tomcat-users>
"""


@dataclass
class Tomcat:
    base: Path
    port: int
    user: str
    password: str
    password_file: Path
    proc: subprocess.Popen
    max_threads: int
    host: str = "127.0.0.1"

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    @property
    def status_url(self) -> str:
        return self.url("/manager/status?XML=true")


@contextmanager
def tomcat_server(
    directory: Path, max_threads: int = 50, timeout: float = 90.0
) -> Iterator[Tomcat]:
    """Tomcat 10 with CATALINA_BASE in ``directory``, run by ``catalina.sh run``.

    The shutdown port is disabled (``port="-1"``): the server is stopped by a signal.
    """
    if not (TOMCAT_HOME / "bin" / "catalina.sh").exists():
        missing("tomcat10")
    if not TOMCAT_MANAGER.is_dir():
        missing("tomcat10-admin")
    conf = directory / "conf"
    shutil.copytree(TOMCAT_CONF, conf, ignore=shutil.ignore_patterns("Catalina", "policy.d"))
    for sub in ("logs", "temp", "work", "webapps", "conf/Catalina/localhost"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    port = free_port()
    user, password = "monitor", secrets.token_hex(12)
    (conf / "server.xml").write_text(_TOMCAT_SERVER_XML.format(port=port, max_threads=max_threads))
    (conf / "tomcat-users.xml").write_text(_TOMCAT_USERS_XML.format(user=user, password=password))
    (conf / "Catalina" / "localhost" / "manager.xml").write_text(
        f'<Context path="/manager" docBase="{TOMCAT_MANAGER}" privileged="true" />\n'
    )
    password_file = directory / "monitor.pass"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    env = {
        "CATALINA_HOME": str(TOMCAT_HOME),
        "CATALINA_BASE": str(directory),
        "CATALINA_TMPDIR": str(directory / "temp"),
        "CATALINA_PID": str(directory / "tomcat.pid"),
        "CATALINA_OUT": str(directory / "logs" / "catalina.out"),
        "JAVA_OPTS": "-Djava.awt.headless=true -Xms64m -Xmx256m -XX:TieredStopAtLevel=1 "
        "-Xshare:auto",
    }
    # catalina.sh logs to the console: send it to a file, a full pipe would block the JVM.
    out = directory / "logs" / "console.log"
    cmd = ["sh", "-c", f'exec "{TOMCAT_HOME}/bin/catalina.sh" run >"{out}" 2>&1']
    with running(cmd, env=env) as proc:
        tomcat = Tomcat(directory, port, user, password, password_file, proc, max_threads)
        _wait_tomcat_manager(tomcat, proc, timeout)
        yield tomcat


def _wait_tomcat_manager(tomcat: Tomcat, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (tomcat.base / "logs" / "console.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"tomcat exited with {proc.returncode}: {tail}")
        try:
            r = requests.get(tomcat.status_url, auth=(tomcat.user, tomcat.password), timeout=2)
            if r.status_code == 200 and "<status>" in r.text:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"tomcat manager at {tomcat.status_url} not ready within {timeout}s")


# ---------------------------------------------------------------------------- Redis


@dataclass
class Redis:
    directory: Path
    port: int
    password: str | None
    proc: subprocess.Popen | None = None
    host: str = "127.0.0.1"
    _binary: str = ""
    _stack: ExitStack = field(default_factory=ExitStack)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        """Start (again) on the same port and directory."""
        cmd = [
            self._binary,
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        if self.password:
            cmd += ["--requirepass", self.password]
        self.proc = self._stack.enter_context(running(cmd))
        wait_tcp(self.port, self.host)

    def stop(self) -> None:
        self._stack.close()
        self.proc = None


@contextmanager
def redis_server(directory: Path, password: str | None = None) -> Iterator[Redis]:
    """A private ``redis-server`` (no persistence) that the test may stop and start again."""
    directory.mkdir(parents=True, exist_ok=True)
    server = Redis(directory, free_port(), password, _binary=require_binary("redis-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------- silent TCP


@contextmanager
def tcp_listener(
    on_connect: Callable[[socket.socket], None], name: str, backlog: int = 64
) -> Iterator[int]:
    """A loopback TCP listener whose thread hands each accepted connection to ``on_connect``;
    yields the port, stops accepting and closes the listener after."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(backlog)
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            on_connect(conn)

    thread = threading.Thread(target=accept, name=name, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never sends a byte; yields the port."""
    held: list[socket.socket] = []
    try:
        with tcp_listener(held.append, "silent-server") as port:
            yield port
    finally:
        for conn in held:
            conn.close()


@dataclass
class SlowProxy:
    """What :func:`slow_proxy` saw: ``requests`` counts the requests it held back."""

    port: int
    delay: float
    requests: int = 0
    _changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def seen(self, chunk: int) -> None:
        with self._changed:
            self.requests += chunk
            self._changed.notify_all()

    def wait_requests(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` requests were held in all; False if ``timeout`` passed."""
        with self._changed:
            return self._changed.wait_for(lambda: self.requests >= count, timeout)


@contextmanager
def slow_proxy(upstream: tuple[str, int], delay: float, marker: bytes) -> Iterator[SlowProxy]:
    """A TCP proxy in front of a real server that holds each request containing ``marker``
    (``b"GET "``, ``b"INFO"``, a SQL keyword) for ``delay`` seconds before passing it on: the
    server stays healthy, it only answers that request late (a slow Nginx, Redis or MySQL).
    Other requests (handshakes, logins) and all answers pass at once."""
    conns: list[socket.socket] = []
    proxy = SlowProxy(port=0, delay=delay)

    def pump(src: socket.socket, dst: socket.socket, slow: bool) -> None:
        try:
            while data := src.recv(65536):
                if slow and marker in data:
                    proxy.seen(1)
                    time.sleep(delay)  # the slowness this proxy exists to add
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def on_connect(client: socket.socket) -> None:
        try:
            server = socket.create_connection(upstream, timeout=5)
        except OSError:
            client.close()
            return
        client.settimeout(None)
        server.settimeout(None)
        conns.extend((client, server))
        for args in ((client, server, True), (server, client, False)):
            threading.Thread(target=pump, args=args, name="slow-proxy", daemon=True).start()

    try:
        with tcp_listener(on_connect, "slow-proxy") as port:
            proxy.port = port
            yield proxy
    finally:
        for conn in conns:
            conn.close()


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    with nginx_server(tmp_path_factory.mktemp("nginx")) as server:
        yield server


@pytest.fixture
def nginx_factory(tmp_path: Path) -> Iterator:
    """Start more Nginx servers in one test: ``nginx_factory(extra_server_conf="")``."""
    with ExitStack() as stack:
        count = iter(range(1000))

        def start(extra_server_conf: str = "") -> Nginx:
            return stack.enter_context(
                nginx_server(tmp_path / f"nginx{next(count)}", extra_server_conf)
            )

        yield start


@pytest.fixture(scope="session")
def tomcat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tomcat]:
    with tomcat_server(tmp_path_factory.mktemp("tomcat")) as server:
        yield server


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator:
    """Start private Redis servers in one test: ``redis_factory(password=None)``."""
    with ExitStack() as stack:
        count = iter(range(1000))

        def start(password: str | None = None) -> Redis:
            return stack.enter_context(redis_server(tmp_path / f"redis{next(count)}", password))

        yield start


@pytest.fixture
def silent_port() -> Iterator[int]:
    with silent_server() as port:
        yield port


# ---------------------------------------------------------------------------- MariaDB


@dataclass
class MariaDB:
    """A private ``mariadbd`` on a free loopback port; root (no password) on its socket."""

    directory: Path
    port: int
    proc: subprocess.Popen
    host: str = "127.0.0.1"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def socket(self) -> Path:
        return self.directory / "mysqld.sock"

    def root(self):
        import pymysql

        return pymysql.connect(unix_socket=str(self.socket), user="root", autocommit=True)


def mariadb_install(datadir: Path) -> None:
    """A fresh data directory (``mariadb-install-db``, root without password)."""
    binary = require_binary("mariadb-install-db", "mysql_install_db")
    user = pwd.getpwuid(os.geteuid()).pw_name
    subprocess.run(
        [
            binary,
            "--no-defaults",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            f"--user={user}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def mariadb_command(directory: Path, datadir: Path, port: int, *options: str) -> list[str]:
    """The ``mariadbd`` command line: ``datadir``, socket, pid and error log in ``directory``,
    listening on 127.0.0.1:``port``; ``options`` are extra server options."""
    return [
        require_binary("mariadbd", "/usr/sbin/mariadbd"),
        "--no-defaults",
        f"--user={pwd.getpwuid(os.geteuid()).pw_name}",
        f"--datadir={datadir}",
        f"--socket={directory / 'mysqld.sock'}",
        f"--pid-file={directory / 'mysqld.pid'}",
        f"--log-error={directory / 'error.log'}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        "--skip-name-resolve",
        "--innodb-buffer-pool-size=32M",
        *options,
    ]


@contextmanager
def mariadb_server(
    directory: Path, *options: str, datadir: Path | None = None
) -> Iterator[MariaDB]:
    """``mariadbd`` with its data (a fresh install unless ``datadir`` is given), socket, pid and
    error log in ``directory``; ``options`` are extra server options (``--log-bin``...)."""
    directory.mkdir(parents=True, exist_ok=True)
    if datadir is None:
        datadir = directory / "data"
        mariadb_install(datadir)
    port = free_port()
    with running(mariadb_command(directory, datadir, port, *options)) as proc:
        wait_tcp(port, timeout=60)
        yield MariaDB(directory, port, proc)
