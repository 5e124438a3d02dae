"""Fixtures of the webhook tests: stores on SQLite and on the real MariaDB, the Flask app,
API tokens, a settable clock and a fake SMS gateway (a local HTTP server that checks requests)."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from helpers import FIXTURES, free_port, wait_tcp

from sscp_ops.config.webhook import WebhookConfig

WEBHOOK_FIXTURES = FIXTURES / "webhook"
AM_TOKEN = "am-" + "x" * 20
PHONES = ("13812345678", "13987654321", "15011112222")


#: When the captured Alertmanager notifications under fixtures/webhook/ started firing.
CAPTURED_AT = dt.datetime(2026, 11, 28, 21, 9, 55, tzinfo=dt.UTC)
#: Alertmanager's "no end" time, left as it is when dates are moved.
_ZERO_TIME = "0001-01-01T00:00:00Z"


class _Anchor:
    """When the running test started (set by the autouse fixture ``payload_anchor``), so that
    every payload one test loads is moved by the same amount."""

    at: dt.datetime | None = None


def payload(name: str, at: dt.datetime | None = None) -> dict:
    """A captured notification with its dates moved so that it started firing ``at``
    (default: 10 seconds before the running test started), keeping the gaps between them.

    Captured dates are in the past once the suite runs on a later day; a store whose clock is
    today's would then see a fault that resolved before it started (the time bomb of
    2026-12-02). Tests that need the captured dates pass ``at=CAPTURED_AT``."""
    body = json.loads((WEBHOOK_FIXTURES / name).read_text(encoding="utf-8"))
    if at is None:
        started = _Anchor.at or dt.datetime.now(dt.UTC)
        at = started.replace(microsecond=0) - dt.timedelta(seconds=10)
    shift = at - CAPTURED_AT
    for alert in body.get("alerts", []):
        for key in ("startsAt", "endsAt"):
            value = alert.get(key)
            if value and value != _ZERO_TIME:
                moved = dt.datetime.fromisoformat(value) + shift
                alert[key] = moved.isoformat().replace("+00:00", "Z")
    return body


@pytest.fixture(autouse=True)
def payload_anchor(time_shift):
    """Payloads loaded by this test start 10 s before it started (on the shifted clock when
    the test runs under ``time_shift``)."""
    _Anchor.at = dt.datetime.now(dt.UTC)
    yield
    _Anchor.at = None


class Clock:
    """A settable UTC clock for stores and planners (escalation, expiry, rate limits)."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.now = start or dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class PrivateMariaDB:
    """A private ``mariadbd`` (fx_servers' install and command line) that a test can kill
    (SIGKILL) and start again on the same port."""

    def __init__(self, tmp_path) -> None:
        # imported here: fx_servers is a pytest plugin registered after this one
        from fx_servers import mariadb_install

        self.directory = tmp_path / "mariadb"
        self.datadir = self.directory / "data"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        mariadb_install(self.datadir)

    def start(self) -> None:
        from fx_servers import mariadb_command

        self.proc = subprocess.Popen(
            mariadb_command(self.directory, self.datadir, self.port, "--skip-log-bin"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_tcp(self.port, timeout=60)

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def private_mariadb(tmp_path):
    db = PrivateMariaDB(tmp_path)
    db.start()
    try:
        yield db
    finally:
        db.stop()
        shutil.rmtree(db.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def mariadb_port(mysql_server):
    """The machine's MariaDB on 3306 when it runs; else a private mariadbd for the session
    (fx_targets' ``mysql_server``)."""
    return mysql_server.port


@pytest.fixture
def mariadb_url(mariadb_port):
    """A fresh database ``sscp_webhook_<hex>``, dropped afterwards."""
    import pymysql

    name = f"sscp_webhook_{secrets.token_hex(4)}"
    conn = pymysql.connect(host="127.0.0.1", port=mariadb_port, user="root", connect_timeout=5)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield f"mysql+pymysql://root@127.0.0.1:{mariadb_port}/{name}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture(params=["sqlite", "mariadb"])
def db_url(request, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tickets.db'}"
    else:
        yield request.getfixturevalue("mariadb_url")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def am_token_file(tmp_path: Path) -> Path:
    path = tmp_path / "am.token"
    path.write_text(AM_TOKEN + "\n")
    return path


@pytest.fixture
def webhook_config(tmp_path: Path, am_token_file: Path):
    """Factory: a WebhookConfig on a temp SQLite with a two-shift roster."""

    def make(**overrides) -> WebhookConfig:
        data = {
            "database": f"sqlite:///{tmp_path / 'tickets.db'}",
            "alertmanager_token_file": str(am_token_file),
            "session_key_file": str(tmp_path / "session.key"),
            "public_url": "https://itss.example.gov.cn",
            "roster": {
                "rotation": "day",
                "start": "2026-01-05",
                "shifts": [
                    {
                        "primary": {"name": "张三", "phone": PHONES[0]},
                        "backup": {"name": "李四", "phone": PHONES[1]},
                    },
                    {
                        "primary": {"name": "李四", "phone": PHONES[1]},
                        "backup": {"name": "张三", "phone": PHONES[0]},
                    },
                ],
                "escalation": [{"name": "王五", "phone": PHONES[2]}],
            },
            **overrides,
        }
        return WebhookConfig.model_validate(data)

    return make


@pytest.fixture
def make_services(clock):
    """Factory: Services on a migrated store (closed at the end)."""
    from webhook.notices import Planner
    from webhook.services import Services
    from webhook.store import Store

    made = []

    def make(config: WebhookConfig):
        store = Store(config.database_url(), clock=clock)
        store.ack_link_ttl = config.ack_link_ttl
        store.migrate()
        made.append(store)
        return Services(config, store, Planner(config, clock))

    yield make
    for store in made:
        store.close()


@pytest.fixture
def services(webhook_config, make_services):
    return make_services(webhook_config())


@pytest.fixture
def app(services):
    from webhook.app import create_app

    app = create_app(services.config, services)
    app.testing = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def tokens(services) -> dict[str, str]:
    return {
        role: services.store.create_token(role, f"test-{role}")
        for role in ("viewer", "operator", "admin")
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class FakeGateway:
    """A local SMS gateway / robot endpoint: records what arrives, drops duplicate out_ids
    (like a real provider), and can answer 500, stall for a while, or hang on some paths
    until it is closed. Each request is recorded with its arrival time (``at``, monotonic)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.accepted: dict[str, dict] = {}
        self.duplicates: list[str] = []
        self.fail_next = 0
        self.delay = 0.0
        self.hang_paths: set[str] = set()
        self.release = threading.Event()
        self.lock = threading.Lock()
        gw = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with gw.lock:
                    gw.requests.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                            "at": time.monotonic(),
                        }
                    )
                    number = len(gw.requests)
                    fail = gw.fail_next > 0
                    if fail:
                        gw.fail_next -= 1
                    delay = gw.delay
                if self.path in gw.hang_paths:
                    gw.release.wait(120)  # a provider that never answers
                    return
                if delay:
                    time.sleep(delay)
                if fail:
                    self._answer(500, {"error": "gateway down"})
                    return
                if self.path.endswith("/reject"):
                    self._answer(400, {"error": "bad template"})
                    return
                data = json.loads(body)
                key = data.get("out_id") or f"robot-{number}"
                with gw.lock:
                    if key in gw.accepted:
                        gw.duplicates.append(key)
                    else:
                        gw.accepted[key] = data
                self._answer(200, {"errcode": 0, "code": "OK"})

            def _answer(self, status: int, data: dict) -> None:
                out = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def sms(self) -> list[dict]:
        return [v for v in self.accepted.values() if "phone" in v]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def write_webhook_config(path: Path, **webhook) -> Path:
    """Write ``{"webhook": webhook}`` as the YAML config file ``path``."""
    path.write_text(yaml.safe_dump({"webhook": webhook}, allow_unicode=True))
    return path


@contextmanager
def served_webhook(config: Path, *extra: str, log: Path | None = None, timeout: float = 60):
    """``sscp-ops webhook --config.file config`` (gunicorn, and the notice worker unless
    ``--no-worker`` is in ``extra``) on a free loopback port, ready; yields (base URL, process).
    Its log goes to ``log`` (a file: a long-lived chatty child must not fill a pipe)."""
    from helpers import running, sscp_ops_cmd

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = sscp_ops_cmd(
        "webhook", "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}", *extra
    )
    with ExitStack() as stack:
        err = stack.enter_context(open(log, "w")) if log else subprocess.DEVNULL
        proc = stack.enter_context(
            running(cmd, ready_url=f"{base}/healthz", timeout=timeout, stderr=err)
        )
        yield base, proc


@pytest.fixture
def gateway():
    gw = FakeGateway()
    yield gw
    gw.close()


class LiveWebhook:
    """The real webhook app served over HTTP on a free loopback port (werkzeug's server in a
    thread), on the test's ``services`` (temp SQLite store, settable clock)."""

    def __init__(self, services) -> None:
        from werkzeug.serving import make_server

        from webhook.app import create_app

        self.services = services
        self.server = make_server(
            "127.0.0.1", free_port(), create_app(services.config, services), threaded=True
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, role: str = "operator", name: str = "vulns-import") -> str:
        return self.services.store.create_token(role, name)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def live_webhook(services):
    import logging

    quiet = logging.getLogger("werkzeug")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # no access log lines in the test output
    hook = LiveWebhook(services)
    try:
        yield hook
    finally:
        hook.close()
        quiet.setLevel(level)
