"""The real thing end to end: ``sscp-ops webhook`` (gunicorn + worker) fed by Debian's
Alertmanager 0.25, the token command, /metrics through ``promtool check metrics``, the
ticket rules through ``promtool test rules``, and reconciliation against Alertmanager's API."""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import yaml
from fx_webhook import AM_TOKEN, PHONES
from fx_webhook import bearer as auth
from helpers import ROOT, free_port, require_binary, running, sscp_ops_cmd

from webhook.worker import Worker

pytestmark = pytest.mark.slow


@contextmanager
def alertmanager(tmp_path: Path, webhook_base: str, token_file: Path):
    binary = require_binary("prometheus-alertmanager", "alertmanager")
    port = free_port()
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "route": {
                    "receiver": "sscp-ops.tickets",
                    "group_by": ["alertname", "instance"],
                    "group_wait": "1s",
                    "group_interval": "1s",
                    "repeat_interval": "1h",
                    "routes": [
                        {
                            "matchers": ['alertname="Watchdog"'],
                            "receiver": "heartbeat",
                            "repeat_interval": "1m",
                        }
                    ],
                },
                "receivers": [
                    {
                        "name": "sscp-ops.tickets",
                        "webhook_configs": [
                            {
                                "url": f"{webhook_base}/api/v1/alerts",
                                "send_resolved": True,
                                "http_config": {
                                    "authorization": {"credentials_file": str(token_file)}
                                },
                            }
                        ],
                    },
                    {
                        "name": "heartbeat",
                        "webhook_configs": [
                            {
                                "url": f"{webhook_base}/api/v1/heartbeat",
                                "http_config": {
                                    "basic_auth": {
                                        "username": "am",
                                        "password_file": str(token_file),
                                    }
                                },
                            }
                        ],
                    },
                ],
            }
        )
    )
    base = f"http://127.0.0.1:{port}"
    cmd = [
        binary,
        f"--config.file={cfg}",
        f"--storage.path={tmp_path / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    with running(cmd, ready_url=f"{base}/-/ready"):
        yield base


def alert(name: str, instance: str, severity: str = "critical", **extra) -> dict:
    return {
        "labels": {"alertname": name, "instance": instance, "severity": severity},
        "annotations": {"summary": f"{instance} {name}", "description": "值班 13812345678"},
        "startsAt": dt.datetime.now(dt.UTC).isoformat(),
        **extra,
    }


def wait_for(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


@pytest.fixture
def webhook_server(tmp_path, am_token_file):
    """``sscp-ops webhook`` on a free port (2 gunicorn workers + the notice worker)."""
    port = free_port()
    config = tmp_path / "sscp.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "webhook": {
                    "database": f"sqlite:///{tmp_path / 'var/tickets.db'}",
                    "alertmanager_token_file": str(am_token_file),
                    "public_url": f"http://127.0.0.1:{port}",
                    "roster": {"shifts": [{"primary": {"name": "张三", "phone": PHONES[0]}}]},
                }
            },
            allow_unicode=True,
        )
    )
    out = subprocess.run(
        sscp_ops_cmd(
            "webhook",
            "token",
            "create",
            "--config.file",
            str(config),
            "--role",
            "viewer",
            "--name",
            "report",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = out.stdout.strip()
    assert token.startswith("sscp_") and token not in out.stderr
    base = f"http://127.0.0.1:{port}"
    cmd = sscp_ops_cmd(
        "webhook", "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}"
    )
    with running(cmd, ready_url=f"{base}/healthz", timeout=30) as proc:
        yield base, token, proc


def test_alertmanager_to_tickets_end_to_end(tmp_path, am_token_file, webhook_server):
    base, token, proc = webhook_server
    with alertmanager(tmp_path, base, am_token_file) as am:
        watchdog = alert("Watchdog", "prometheus", "none")
        hostdown = alert("HostDown", "web1:9100")
        requests.post(f"{am}/api/v2/alerts", json=[watchdog, hostdown], timeout=5)

        def tickets():
            r = requests.get(f"{base}/api/v1/tickets", headers=auth(token), timeout=5)
            return r.json()["tickets"]

        [t] = wait_for(tickets)
        assert t["alertname"] == "HostDown" and t["status"] == "open"
        assert "13812345678" not in str(t)
        # the worker delivers the SMS through the log backend
        wait_for(
            lambda: requests.get(
                f"{base}/api/v1/tickets/{t['id']}", headers=auth(token), timeout=5
            ).json()["notified_at"]
        )
        resolved = {**hostdown, "endsAt": dt.datetime.now(dt.UTC).isoformat()}
        requests.post(f"{am}/api/v2/alerts", json=[resolved], timeout=5)
        wait_for(lambda: tickets()[0]["status"] == "resolved")
        assert tickets()[0]["resolution_source"] == "alert"
        assert len(tickets()) == 1
    metrics = requests.get(f"{base}/metrics", timeout=5).text
    assert "sscp_webhook_heartbeat_last_timestamp_seconds" in metrics
    assert 'sscp_tickets_resolved_total{kind="incident",source="alert"} 1.0' in metrics
    promtool = require_binary("promtool")
    check = subprocess.run(
        [promtool, "check", "metrics"], input=metrics, capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # secrets and phone numbers never reach the service's log
    proc.terminate()
    err = proc.stderr.read()
    assert AM_TOKEN not in err and token not in err and PHONES[0] not in err
    assert "138****5678" in err


def test_reconcile_resolves_what_alertmanager_forgot(
    tmp_path, am_token_file, webhook_config, make_services, clock
):
    with alertmanager(tmp_path, "http://127.0.0.1:9", am_token_file) as am:
        requests.post(f"{am}/api/v2/alerts", json=[alert("DiskFull", "db1:9100")], timeout=5)
        [live] = wait_for(lambda: requests.get(f"{am}/api/v2/alerts", timeout=5).json())
        svc = make_services(webhook_config(alertmanager_url=am))
        from webhook.events import AlertEvent

        def occurrence(fp: str) -> AlertEvent:
            return AlertEvent("firing", fp, clock.now, None, "DiskFull", "critical", fp, "s", "")

        kept = svc.store.ingest(occurrence(live["fingerprint"])).ticket_id
        gone = svc.store.ingest(occurrence("0123456789abcdef")).ticket_id
        worker = Worker(svc.store, svc.config, senders={})
        assert worker.reconcile() == []  # too young: within the grace period
        clock.advance(svc.config.reconcile_interval + 1)
        assert worker.reconcile() == [gone]
    assert svc.store.get_ticket(kept)["status"] == "open"
    t = svc.store.get_ticket(gone)
    assert t["status"] == "resolved" and t["resolution_source"] == "reconcile"


def test_ticket_rules_with_promtool():
    promtool = require_binary("promtool")
    for args in (
        ["check", "rules", "rules/tickets.rules.yml"],
        ["test", "rules", "rules/tests/tickets.test.yml"],
    ):
        r = subprocess.run([promtool, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr


def test_bad_config_names_file_and_key(tmp_path):
    config = tmp_path / "bad.yml"
    config.write_text("webhook:\n  sms:\n    backend: carrier-pigeon\n")
    r = subprocess.run(
        sscp_ops_cmd("webhook", "--config.file", str(config)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert f"{config}:3: webhook.sms.backend" in r.stderr


@pytest.mark.parametrize("threads", [1, 4])
def test_served_concurrent_deliveries_file_each_occurrence_once(tmp_path, am_token_file, threads):
    """The real server in both worker models (1 thread: sync workers that close each
    connection, so the next request goes to a free worker; 4: gthread with keep-alive):
    8 clients post 15 notifications each, a third of them repeats, two clients share their
    alerts (an HA pair): every occurrence is filed once, and every post is answered 200."""
    import json
    import random
    import threading

    port = free_port()
    db = tmp_path / "tickets.db"
    config = tmp_path / "sscp.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "webhook": {
                    "database": f"sqlite:///{db}",
                    "alertmanager_token_file": str(am_token_file),
                    "workers": 2,
                    "threads": threads,
                    "roster": {"shifts": [{"primary": {"name": "张三", "phone": PHONES[0]}}]},
                }
            },
            allow_unicode=True,
        )
    )

    def body(client: int, seq: int) -> bytes:
        alerts = [
            {
                "status": "firing",
                "labels": {"alertname": "DiskFull", "instance": f"h{client}-{seq}", "n": str(i)},
                "annotations": {"summary": "磁盘将满"},
                "startsAt": "2026-11-28T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"{client:04x}{seq:04x}{i:04x}",
            }
            for i in range(3)
        ]
        return json.dumps({"version": "4", "status": "firing", "alerts": alerts}).encode()

    answers: list[int] = []
    connection_headers: set[str] = set()
    lock = threading.Lock()

    def client(cid: int) -> None:
        rng = random.Random(cid)
        own = cid % 4  # clients 0 and 4, 1 and 5 ... post the same alerts
        session = requests.Session()
        for seq in range(15):
            s = rng.randrange(seq) if seq and rng.random() < 0.33 else seq
            r = session.post(
                f"http://127.0.0.1:{port}/api/v1/alerts",
                data=body(own, s),
                headers={"Authorization": f"Bearer {AM_TOKEN}"},
                timeout=30,
            )
            with lock:
                answers.append(r.status_code)
                connection_headers.add(r.headers.get("Connection", "").lower())

    cmd = sscp_ops_cmd(
        "webhook", "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}"
    )
    with running(cmd, ready_url=f"http://127.0.0.1:{port}/healthz", timeout=30):
        clients = [threading.Thread(target=client, args=(c,)) for c in range(8)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(120)
    assert answers == [200] * 120
    # sync workers close every connection; gthread workers keep it alive
    if threads == 1:
        assert connection_headers == {"close"}
    else:
        assert "close" not in connection_headers
    expected = set()
    for cid in range(8):  # the same draws as the clients made
        rng = random.Random(cid)
        for seq in range(15):
            s = rng.randrange(seq) if seq and rng.random() < 0.33 else seq
            expected |= {f"{cid % 4:04x}{s:04x}{i:04x}" for i in range(3)}
    import sqlite3

    with sqlite3.connect(db) as conn:
        fps = [r[0] for r in conn.execute("SELECT fingerprint FROM tickets")]
    assert sorted(fps) == sorted(expected)
