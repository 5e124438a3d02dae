"""Fault test against a real MariaDB: a private ``mariadbd`` (own datadir, free port) is killed
and restarted while clients post notifications the way Alertmanager does (retry on 5xx and on
connection errors, give up on nothing). Every notification must end up in exactly once."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
from fx_webhook import AM_TOKEN, private_mariadb, served_webhook, write_webhook_config

pytestmark = pytest.mark.slow


def body(n: int) -> bytes:
    alerts = [
        {
            "status": "firing",
            "labels": {
                "alertname": "HttpProbeFailed",
                "instance": f"site{n}",
                "path": f"/p{i}",
                "severity": "warning",
            },
            "annotations": {"summary": f"site{n} /p{i} 访问失败"},
            "startsAt": "2026-11-28T20:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": f"{n:08x}{i:08x}",
        }
        for i in range(5)
    ]
    return json.dumps(
        {"version": "4", "status": "firing", "receiver": "sscp-ops\\.tickets", "alerts": alerts}
    ).encode()


class AlertmanagerLike:
    """``clients`` threads posting notifications 0..total-1 the way an HA pair of Alertmanagers
    does: each twice, retrying 5xx and connection errors until 200, giving up on 4xx (which
    Alertmanager drops). ``statuses`` holds every answer (0: none)."""

    def __init__(self, base: str, total: int, clients: int = 4) -> None:
        self.base, self.total, self.clients = base, total, clients
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._post, args=(c,)) for c in range(clients)]

    def _post(self, first: int) -> None:
        session = requests.Session()
        for n in range(first, self.total, self.clients):
            for _attempt in range(2):  # HA pair: every notification is sent twice
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    try:
                        code = session.post(
                            f"{self.base}/api/v1/alerts",
                            data=body(n),
                            timeout=10,
                            headers={"Authorization": f"Bearer {AM_TOKEN}"},
                        ).status_code
                    except requests.RequestException:
                        code = 0
                    with self.lock:
                        self.statuses.append(code)
                    if 400 <= code < 500:
                        return  # Alertmanager would drop it: the test fails below
                    if code == 200:
                        break
                    time.sleep(0.2)
            time.sleep(0.02)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def wait_answers(self, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.statuses) < n and time.monotonic() < deadline:
            time.sleep(0.02)

    def join(self) -> None:
        for t in self.threads:
            t.join(120)
        assert not any(t.is_alive() for t in self.threads)
        assert not [s for s in self.statuses if 400 <= s < 500], "Alertmanager would drop a 4xx"


def test_mariadb_killed_and_restarted_under_load(tmp_path, am_token_file):
    import pymysql

    with private_mariadb(tmp_path) as db:
        admin = pymysql.connect(host="127.0.0.1", port=db.port, user="root")
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE sscp_webhook_fault CHARACTER SET utf8mb4")
        admin.close()
        config = write_webhook_config(
            tmp_path / "sscp.yml",
            database=f"mysql+pymysql://root@127.0.0.1:{db.port}/sscp_webhook_fault",
            alertmanager_token_file=str(am_token_file),
        )
        total = 120
        with served_webhook(config, "--no-worker") as (base, _server):
            clients = AlertmanagerLike(base, total)
            clients.start()
            clients.wait_answers(40)
            db.kill()
            time.sleep(2)  # the store stays down for a while
            db.start()
            clients.join()
        assert 503 in clients.statuses, "the outage never reached the webhook"
        conn = pymysql.connect(
            host="127.0.0.1", port=db.port, user="root", database="sscp_webhook_fault"
        )
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(DISTINCT fingerprint, starts_at) FROM tickets")
            tickets, distinct = cur.fetchone()
        conn.close()
        assert tickets == distinct == total * 5


def test_request_workers_killed_under_load_lose_nothing(tmp_path, am_token_file):
    """``kill -9`` of gunicorn's request workers while clients post the way Alertmanager does
    (each notification twice, as an HA pair): the arbiter replaces them, the clients retry
    what got no answer, and every alert is filed exactly once."""
    import psutil
    import sqlalchemy as sa

    database = f"sqlite:///{tmp_path / 'tickets.db'}"
    config = write_webhook_config(
        tmp_path / "sscp.yml", database=database, alertmanager_token_file=str(am_token_file)
    )
    total, killed = 80, 0
    with served_webhook(config, "--no-worker") as (base, server):
        clients = AlertmanagerLike(base, total)
        clients.start()
        for _ in range(3):  # three rounds of killing every request worker mid-load
            clients.wait_answers(20 * (killed + 1), timeout=20)
            for child in psutil.Process(server.pid).children():
                child.kill()
                killed += 1
        clients.join()
    assert killed >= 3
    engine = sa.create_engine(database)
    with engine.connect() as conn:
        tickets, distinct = conn.execute(
            sa.text("SELECT count(*), count(DISTINCT fingerprint || starts_at) FROM tickets")
        ).one()
    engine.dispose()
    assert tickets == distinct == total * 5
