"""Fault test against a real MariaDB: a private ``mariadbd`` (own datadir, free port) is killed
and restarted while clients post notifications the way Alertmanager does (retry on 5xx and on
connection errors, give up on nothing). Every notification must end up in exactly once."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
import yaml
from fx_webhook import AM_TOKEN, private_mariadb
from helpers import free_port, running, sscp_ops_cmd

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


def test_mariadb_killed_and_restarted_under_load(tmp_path, am_token_file):
    import pymysql

    with private_mariadb(tmp_path) as db:
        admin = pymysql.connect(host="127.0.0.1", port=db.port, user="root")
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE sscp_webhook_fault CHARACTER SET utf8mb4")
        admin.close()
        port = free_port()
        config = tmp_path / "sscp.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "webhook": {
                        "database": f"mysql+pymysql://root@127.0.0.1:{db.port}/sscp_webhook_fault",
                        "alertmanager_token_file": str(am_token_file),
                    }
                }
            )
        )
        base = f"http://127.0.0.1:{port}"
        cmd = sscp_ops_cmd(
            "webhook",
            "--no-worker",
            "--config.file",
            str(config),
            "--web.listen-address",
            f"127.0.0.1:{port}",
        )
        statuses: list[int] = []
        lock = threading.Lock()
        total, clients = 120, 4

        def alertmanager_like(first: int) -> None:
            session = requests.Session()
            for n in range(first, total, clients):
                for _attempt in range(2):  # HA pair: every notification is sent twice
                    while True:
                        try:
                            r = session.post(
                                f"{base}/api/v1/alerts",
                                data=body(n),
                                timeout=10,
                                headers={"Authorization": f"Bearer {AM_TOKEN}"},
                            )
                            code = r.status_code
                        except requests.RequestException:
                            code = 0
                        with lock:
                            statuses.append(code)
                        if 400 <= code < 500:
                            return  # Alertmanager would drop it: the test fails below
                        if code == 200:
                            break
                        time.sleep(0.2)
                time.sleep(0.02)

        with running(cmd, ready_url=f"{base}/healthz", timeout=60):
            threads = [
                threading.Thread(target=alertmanager_like, args=(c,)) for c in range(clients)
            ]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 30
            while len(statuses) < 40 and time.monotonic() < deadline:
                time.sleep(0.05)
            db.kill()
            time.sleep(2)
            db.start()
            for t in threads:
                t.join(120)
            assert not any(t.is_alive() for t in threads)
        assert not [s for s in statuses if 400 <= s < 500], "a 4xx would make Alertmanager drop"
        assert 503 in statuses, "the outage never reached the webhook"
        conn = pymysql.connect(
            host="127.0.0.1", port=db.port, user="root", database="sscp_webhook_fault"
        )
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(DISTINCT fingerprint, starts_at) FROM tickets")
            tickets, distinct = cur.fetchone()
            cur.execute("SELECT count(*) FROM outbox")
        conn.close()
        assert tickets == distinct == total * 5


def test_request_workers_killed_under_load_lose_nothing(tmp_path, am_token_file):
    """``kill -9`` of gunicorn's request workers while clients post the way Alertmanager does
    (each notification twice, as an HA pair): the arbiter replaces them, the clients retry
    what got no answer, and every alert is filed exactly once."""
    import psutil
    import sqlalchemy as sa

    database = f"sqlite:///{tmp_path / 'tickets.db'}"
    port = free_port()
    config = tmp_path / "sscp.yml"
    config.write_text(
        yaml.safe_dump(
            {"webhook": {"database": database, "alertmanager_token_file": str(am_token_file)}}
        )
    )
    base = f"http://127.0.0.1:{port}"
    cmd = sscp_ops_cmd(
        "webhook",
        "--no-worker",
        "--config.file",
        str(config),
        "--web.listen-address",
        f"127.0.0.1:{port}",
    )
    total, clients = 80, 4
    statuses: list[int] = []
    lock = threading.Lock()

    def alertmanager_like(first: int) -> None:
        session = requests.Session()
        for n in range(first, total, clients):
            for _attempt in range(2):
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        code = session.post(
                            f"{base}/api/v1/alerts",
                            data=body(n),
                            timeout=10,
                            headers={"Authorization": f"Bearer {AM_TOKEN}"},
                        ).status_code
                    except requests.RequestException:
                        code = 0
                    with lock:
                        statuses.append(code)
                    if code == 200 or 400 <= code < 500:
                        break
                    time.sleep(0.1)

    killed = 0
    with running(cmd, ready_url=f"{base}/healthz", timeout=60) as server:
        threads = [threading.Thread(target=alertmanager_like, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        for _ in range(3):  # three rounds of killing every request worker mid-load
            deadline = time.monotonic() + 20
            while len(statuses) < 20 * (killed + 1) and time.monotonic() < deadline:
                time.sleep(0.02)
            for child in psutil.Process(server.pid).children():
                child.kill()
                killed += 1
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads)
    assert killed >= 3
    assert not [s for s in statuses if 400 <= s < 500]
    engine = sa.create_engine(database)
    with engine.connect() as conn:
        tickets, distinct = conn.execute(
            sa.text("SELECT count(*), count(DISTINCT fingerprint || starts_at) FROM tickets")
        ).one()
    engine.dispose()
    assert tickets == distinct == total * 5
