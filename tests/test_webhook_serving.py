"""How ``sscp-ops webhook`` serves and supervises, with real processes (issue 14, items 1, 7, 10):

- idle and slow clients (connections that send nothing, or half a request, and stay open) do
  not stop Alertmanager's notifications from being answered within a second;
- the notice worker, killed with SIGKILL, is started again by the serving process, and notices
  queued afterwards reach the (fake, local) SMS gateway;
- the notice worker exits with the serving process when that one is killed with SIGKILL, so a
  restart never runs two workers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
import requests
import yaml
from fx_webhook import AM_TOKEN, PHONES, served_webhook, write_webhook_config
from helpers import sscp_ops_cmd, wait_for

pytestmark = pytest.mark.slow


def notification(n: int) -> bytes:
    """One Alertmanager notification with one critical alert, unique per ``n``."""
    alert = {
        "status": "firing",
        "labels": {"alertname": "HostDown", "instance": f"web{n}:9100", "severity": "critical"},
        "annotations": {"summary": f"web{n} 宕机"},
        "startsAt": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": f"{n:016x}",
    }
    return json.dumps(
        {"version": "4", "status": "firing", "receiver": "sscp-ops\\.tickets", "alerts": [alert]}
    ).encode()


def post(base: str, n: int, timeout: float) -> requests.Response:
    return requests.post(
        f"{base}/api/v1/alerts",
        data=notification(n),
        headers={"Authorization": f"Bearer {AM_TOKEN}", "Content-Type": "application/json"},
        timeout=timeout,
    )


@contextmanager
def webhook(tmp_path: Path, am_token_file: Path, gateway=None, **settings):
    """``sscp-ops webhook`` (gunicorn + notice worker) on a free port, SMS to ``gateway``;
    yields (base URL, the serving process, the SQLite file)."""
    db = tmp_path / "tickets.db"
    hook = {
        "database": f"sqlite:///{db}",
        "alertmanager_token_file": str(am_token_file),
        "roster": {"shifts": [{"primary": {"name": "张三", "phone": PHONES[0]}}]},
        **settings,
    }
    if gateway is not None:
        hook["sms"] = {
            "backend": "http",
            "limits": [],
            "http": {
                "url": gateway.url + "/sms",
                "body_template": '{{"phone": "{phone}", "text": "{text}", "out_id": "{out_id}"}}',
            },
        }
    config = write_webhook_config(tmp_path / "sscp.yml", **hook)
    with served_webhook(config, log=tmp_path / "webhook.log", timeout=30) as (base, proc):
        yield base, proc, db


def tickets(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM tickets").fetchone()[0]


def notice_workers(server: psutil.Process) -> list[psutil.Process]:
    """The notice worker processes (``sscp-ops webhook worker``) under ``server``."""
    out = []
    for child in server.children(recursive=True):
        try:
            if "worker" in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                out.append(child)
        except psutil.NoSuchProcess:
            pass
    return out


def gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# -- item 7: idle and slow clients ------------------------------------------------------------


def test_idle_and_slow_clients_do_not_stall_intake(tmp_path, am_token_file):
    """2 worker processes (the default) and 16 connections that send nothing, 8 that send half
    a request head, 4 that send the head and half the body and 4 that send a whole
    notification but never read the answer nor close, all held open while 30 notifications
    are posted one after another: each is answered within 1 s, and every alert is a ticket."""
    with webhook(tmp_path, am_token_file) as (base, _proc, db):
        host, port = base.removeprefix("http://").split(":")
        held: list[socket.socket] = []
        try:
            for _ in range(16):  # half-open: connected, never a byte
                held.append(socket.create_connection((host, int(port)), timeout=5))
            for _ in range(8):  # slowloris: a request head that never ends
                s = socket.create_connection((host, int(port)), timeout=5)
                s.sendall(b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                held.append(s)
            for _ in range(4):  # a body that never ends
                s = socket.create_connection((host, int(port)), timeout=5)
                s.sendall(
                    b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\n"
                    b"Authorization: Bearer " + AM_TOKEN.encode() + b"\r\n"
                    b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"alerts"'
                )
                held.append(s)
            for n in range(100, 104):  # a whole notification, then never reads nor closes
                body = notification(n)
                s = socket.create_connection((host, int(port)), timeout=5)
                s.sendall(
                    b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\n"
                    b"Authorization: Bearer " + AM_TOKEN.encode() + b"\r\n"
                    b"Content-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                held.append(s)
            latencies = []
            for n in range(30):
                t0 = time.monotonic()
                r = post(base, n, timeout=1.0)
                latencies.append(time.monotonic() - t0)
                assert r.status_code == 200, r.text
            # the held connections are still open (nobody closed them to make room)
            held[0].setblocking(False)
            with pytest.raises(BlockingIOError):
                held[0].recv(1)
        finally:
            for s in held:
                s.close()
        print(json.dumps({"max_intake_latency_s": round(max(latencies), 3)}))
        assert max(latencies) < 1.0
        assert tickets(db) == 30 + 4


# -- item 1: the notice worker is supervised ---------------------------------------------------


def test_a_killed_notice_worker_is_started_again(tmp_path, am_token_file, gateway):
    with webhook(tmp_path, am_token_file, gateway) as (base, proc, db):
        server = psutil.Process(proc.pid)
        [first] = wait_for(lambda: notice_workers(server), 20, "the notice worker")
        restarts = []
        victim = first
        for _ in range(2):  # twice in a row: the second restart comes after a backoff
            t0 = time.monotonic()
            victim.send_signal(signal.SIGKILL)
            [new] = wait_for(
                lambda v=victim: [w for w in notice_workers(server) if w.pid != v.pid],
                10,
                "a new notice worker",
            )
            restarts.append(round(time.monotonic() - t0, 2))
            assert gone(victim)
            victim = new
        for n in range(3):
            assert post(base, n, timeout=5).status_code == 200
        sms = wait_for(lambda: len(gateway.sms()) >= 3 or None, 20, "3 SMS at the gateway")
        assert sms and len(gateway.sms()) == 3 == tickets(db)
        assert gateway.duplicates == []
        assert len(notice_workers(server)) == 1
    print(json.dumps({"worker_restart_s": restarts}))
    log = (tmp_path / "webhook.log").read_text()
    assert log.count("notice worker exited") == 2, log
    assert log.count("returncode=-9") == 2, log


# -- item 10: the notice worker does not outlive the serving process --------------------------


def test_the_notice_worker_exits_with_a_killed_server(tmp_path, am_token_file):
    with webhook(tmp_path, am_token_file) as (_base, proc, _db):
        server = psutil.Process(proc.pid)
        [worker] = wait_for(lambda: notice_workers(server), 20, "the notice worker")
        everything = server.children(recursive=True)
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        wait_for(lambda: gone(worker), 5, "the notice worker to exit")
        took = time.monotonic() - t0
        wait_for(lambda: all(map(gone, everything)), 10, "every gunicorn worker to exit")
    print(json.dumps({"worker_exit_after_server_kill_s": round(took, 2)}))


def test_the_notice_worker_exits_when_its_parent_pid_is_gone(tmp_path, am_token_file):
    """The portable fallback to PR_SET_PDEATHSIG: a worker told to watch a process that is
    not (or no longer) its parent stops within its check interval and exits cleanly."""
    config = tmp_path / "sscp.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "webhook": {
                    "database": f"sqlite:///{tmp_path / 'tickets.db'}",
                    "alertmanager_token_file": str(am_token_file),
                }
            }
        )
    )
    gone_parent = subprocess.Popen(["true"])
    gone_parent.wait()
    cmd = sscp_ops_cmd(
        "webhook", "worker", "--config.file", str(config), "--parent-pid", str(gone_parent.pid)
    )
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "parent process gone" in out.stderr
    assert time.monotonic() - t0 < 15
