"""Fault injection on the notice worker, with real processes: the ticket store full
(SQLite on a small tmpfs) or read-only (a private mariadbd), two workers and a slow
provider, a hung provider.

Each test ends by counting what matters: alerts sent = tickets made, every notice sent once,
the page reached the fake SMS gateway, and the worker process that met the fault is the one
that delivered afterwards (its loops survived the error; nothing had to restart it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import requests
import sqlalchemy as sa
from fx_webhook import AM_TOKEN, PHONES, private_mariadb, served_webhook, write_webhook_config
from helpers import sscp_ops_cmd, wait_for

pytestmark = pytest.mark.slow

AM = {"Authorization": f"Bearer {AM_TOKEN}"}


def notification(name: str, n: int, description: str = "") -> dict:
    """An Alertmanager notification with ``n`` critical alerts that started just now."""
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)).isoformat()
    return {
        "version": "4",
        "status": "firing",
        "receiver": "sscp-ops\\.tickets",
        "groupKey": f"{{}}:{{alertname={name!r}}}",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": name, "instance": f"host{i}", "severity": "critical"},
                "annotations": {"summary": f"主机 host{i} 故障", "description": description},
                "startsAt": start,
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"{name[:8]}{i:08x}",
            }
            for i in range(n)
        ],
    }


def write_config(path: Path, database: str, gateway, am_token_file: Path, **webhook) -> Path:
    """One worker process, SMS through the fake gateway, a one-shift roster."""
    return write_webhook_config(
        path,
        **{
            "database": database,
            "alertmanager_token_file": str(am_token_file),
            "workers": 1,
            "sms": {
                "backend": "http",
                "limits": [],
                "http": {"url": f"{gateway.url}/sms", "timeout": 1.0},
            },
            "roster": {
                "shifts": [
                    {
                        "primary": {"name": "张三", "phone": PHONES[0]},
                        "backup": {"name": "李四", "phone": PHONES[1]},
                    }
                ],
                "escalation": [{"name": "王五", "phone": PHONES[2]}],
            },
            **webhook,
        },
    )


def post_until_accepted(url: str, body: dict, timeout: float) -> list[int]:
    """Post like Alertmanager does (retry on 5xx and connection errors, stop on 2xx or 4xx);
    returns every status seen (0: no answer)."""
    statuses: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            code = requests.post(f"{url}/api/v1/alerts", json=body, headers=AM, timeout=10)
            statuses.append(code.status_code)
        except requests.RequestException:
            statuses.append(0)
        if 200 <= statuses[-1] < 500:
            break
        time.sleep(0.2)
    return statuses


def worker_pids(server: subprocess.Popen) -> set[int]:
    """The notice worker processes started by the webhook server ``server``."""
    pids = set()
    for child in psutil.Process(server.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "worker" in child.cmdline():
                pids.add(child.pid)
    return pids


def count(database: str, sql: str) -> int:
    engine = sa.create_engine(database)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def health(url: str) -> int:
    try:
        return requests.get(f"{url}/healthz", timeout=5).status_code
    except requests.RequestException:
        return 0


def worker_recorded(url: str) -> bool:
    """The notice worker has completed a pass (not only the start-up grace of /healthz)."""
    try:
        return requests.get(f"{url}/healthz", timeout=5).json().get("worker") == "ok"
    except (requests.RequestException, ValueError):
        return False


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs (root only, like CI): fill it, free it, make it read-only."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write zeros into ``directory`` until the file system is full."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    # the last few bytes too
    with open(filler, "ab", buffering=0) as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * 512)
    return filler


def webhook_server(tmp_path: Path, config: Path, *extra: str):
    return served_webhook(config, *extra, log=tmp_path / "webhook.log")


def test_store_full_then_freed_intake_retries_and_the_worker_pages(
    tmp_path, small_disk, gateway, am_token_file
):
    database = f"sqlite:///{small_disk / 'tickets.db'}"
    config = write_config(tmp_path / "sscp.yml", database, gateway, am_token_file, worker_timeout=3)
    with webhook_server(tmp_path, config) as (url, server):
        wait_for(lambda: worker_pids(server), 20, "the notice worker")
        [worker] = worker_pids(server)
        wait_for(lambda: worker_recorded(url), 20, "the worker's first pass")
        filler = fill(small_disk)
        # an alert large enough that the WAL must grow: the write fails with "database or
        # disk is full", which Alertmanager must see as 503 (retry), never 500 (dropped)
        body = notification("DiskFullFault", 3, description="磁盘写满测试" * 5000)
        full = post_until_accepted(url, body, timeout=3)
        assert full and set(full) == {503}, full
        filler.unlink()
        statuses = post_until_accepted(url, body, timeout=30)
        assert statuses[-1] == 200, statuses
        # 3 critical incidents: 6 SMS (primary and backup), delivered by the same worker
        wait_for(lambda: len(gateway.sms()) >= 6, 30, "6 SMS at the gateway")
        wait_for(lambda: health(url) == 200, 15, "/healthz 200")
        assert worker_pids(server) == {worker}
    assert count(database, "SELECT count(*) FROM tickets") == 3
    assert len(gateway.sms()) == 6 and gateway.duplicates == []
    assert 500 not in full + statuses


def test_store_read_only_worker_goes_stale_then_recovers(tmp_path, gateway, am_token_file):
    """A private mariadbd switched to read_only (a replica promoted the wrong way, a DBA's
    maintenance): every write fails with 1290. Intake answers 503, the worker's loops count
    the errors and go on, its liveness goes stale in /healthz and the metrics; after
    read_only is lifted the same worker delivers the page."""
    import pymysql

    with private_mariadb(tmp_path) as db:
        admin = pymysql.connect(host="127.0.0.1", port=db.port, user="root", autocommit=True)
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE sscp_ro CHARACTER SET utf8mb4")
            cur.execute("CREATE USER 'webhook'@'127.0.0.1' IDENTIFIED BY 'pw'")
            cur.execute("GRANT ALL ON sscp_ro.* TO 'webhook'@'127.0.0.1'")
        database = f"mysql+pymysql://webhook:pw@127.0.0.1:{db.port}/sscp_ro"
        config = write_config(
            tmp_path / "sscp.yml", database, gateway, am_token_file, worker_timeout=2
        )
        with webhook_server(tmp_path, config) as (url, server):
            wait_for(lambda: worker_pids(server), 20, "the notice worker")
            [worker] = worker_pids(server)
            wait_for(lambda: worker_recorded(url), 20, "the worker's first pass")
            with admin.cursor() as cur:
                cur.execute("SET GLOBAL read_only = 1")
            try:
                body = notification("ReadOnlyFault", 2)
                refused = post_until_accepted(url, body, timeout=2)
                assert refused and set(refused) == {503}, refused
                # no write succeeds: the worker's liveness goes stale, /healthz says so
                wait_for(lambda: health(url) == 503, 15, "/healthz 503 (worker stale)")
                assert requests.get(f"{url}/healthz", timeout=5).json()["worker"] == "stale"
                metrics = requests.get(f"{url}/metrics", timeout=5).text
                assert "sscp_webhook_worker_up 0.0" in metrics
            finally:
                with admin.cursor() as cur:
                    cur.execute("SET GLOBAL read_only = 0")
            statuses = post_until_accepted(url, body, timeout=30)
            assert statuses[-1] == 200, statuses
            wait_for(lambda: len(gateway.sms()) >= 4, 30, "4 SMS at the gateway")
            wait_for(lambda: health(url) == 200, 15, "/healthz 200")
            metrics = requests.get(f"{url}/metrics", timeout=5).text
            assert "sscp_webhook_worker_up 1.0" in metrics
            errors = [
                float(line.split()[-1])
                for line in metrics.splitlines()
                if line.startswith("sscp_webhook_worker_errors_total ")
            ]
            assert errors and errors[0] >= 1  # the failures were counted, not fatal
            assert worker_pids(server) == {worker}
        admin.close()
        assert count(database, "SELECT count(*) FROM tickets") == 2
    assert len(gateway.sms()) == 4 and gateway.duplicates == []
    assert 500 not in refused + statuses


@contextlib.contextmanager
def workers_running(config: Path, logs: list[Path]):
    """One ``sscp-ops webhook worker`` process per log file; stopped (SIGTERM) at the end."""
    with contextlib.ExitStack() as stack:
        procs = []
        for log in logs:
            fh = stack.enter_context(open(log, "w"))
            procs.append(
                subprocess.Popen(
                    sscp_ops_cmd("webhook", "worker", "--config.file", str(config)),
                    stdout=subprocess.DEVNULL,
                    stderr=fh,
                    start_new_session=True,
                )
            )
        try:
            yield procs
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(15)


@pytest.mark.parametrize("store", ["sqlite", "mariadb"])
def test_two_workers_and_a_slow_provider_send_each_notice_once(
    request, tmp_path, gateway, am_token_file, store
):
    """The provider takes longer than the lease: before, the second worker took the claimed
    notices over and both sent them; and two SMS reached one number within its limit."""
    database = (
        f"sqlite:///{tmp_path / 'tickets.db'}"
        if store == "sqlite"
        else request.getfixturevalue("mariadb_url")
    )
    config = write_config(
        tmp_path / "sscp.yml",
        database,
        gateway,
        am_token_file,
        delivery_lease=1,
        sms={
            "backend": "http",
            "limits": [{"count": 1, "seconds": 2}],
            "http": {"url": f"{gateway.url}/sms", "timeout": 2.0},
        },
        robots=[{"name": "duty-group", "kind": "wecom", "url": f"{gateway.url}/robot"}],
    )
    gateway.delay = 1.3  # each send outlasts the 1 s lease
    with webhook_server(tmp_path, config, "--no-worker") as (url, _server):
        assert post_until_accepted(url, notification("SlowProvider", 2), 10)[-1] == 200
        logs = [tmp_path / f"worker{i}.log" for i in range(2)]
        with workers_running(config, logs):

            def settled():
                rows = count(
                    database,
                    "SELECT count(*) FROM outbox WHERE status NOT IN ('sent', 'merged')",
                )
                return rows == 0 and count(database, "SELECT count(*) FROM outbox") > 0

            wait_for(settled, 60, "every notice delivered", interval=0.3)
    robot_posts = [r for r in gateway.requests if r["path"] == "/robot"]
    sms_posts = [r for r in gateway.requests if r["path"] == "/sms"]
    robot_notices = count(database, "SELECT count(*) FROM outbox WHERE channel = 'wecom'")
    sent_sms = count(
        database, "SELECT count(*) FROM outbox WHERE channel = 'sms' AND status = 'sent'"
    )
    assert robot_notices == 2 and len(robot_posts) == 2  # one message per incident, once
    assert gateway.duplicates == [] and len(sms_posts) == sent_sms == len(gateway.sms())
    # per number: no two SMS within the 2 s limit (arrival times at the gateway)
    by_number: dict[str, list[float]] = {}
    for r in sms_posts:
        by_number.setdefault(json.loads(r["body"])["phone"], []).append(r["at"])
    for times in by_number.values():
        times.sort()
        assert all(b - a >= 1.9 for a, b in zip(times, times[1:], strict=False)), times


def test_hung_provider_delays_neither_escalation_nor_robots_nor_the_heartbeat_check(
    tmp_path, gateway, am_token_file
):
    """The SMS gateway hangs (every send runs into its timeout): before, escalation due at
    2 s came after the whole SMS batch, and so did robot messages and the heartbeat check."""
    database = f"sqlite:///{tmp_path / 'tickets.db'}"
    config = write_config(
        tmp_path / "sscp.yml",
        database,
        gateway,
        am_token_file,
        escalate_after=2,
        heartbeat_timeout=3,
        sms={
            "backend": "http",
            "limits": [],
            "http": {"url": f"{gateway.url}/hang/sms", "timeout": 3.0},
        },
        robots=[{"name": "duty-group", "kind": "wecom", "url": f"{gateway.url}/robot"}],
    )
    gateway.hang_paths = {"/hang/sms"}
    with webhook_server(tmp_path, config) as (url, server):
        started = time.monotonic()
        assert post_until_accepted(url, notification("HungProvider", 5), 10)[-1] == 200
        # 10 SMS, each 3 s in the hung gateway: 30 s in one loop. The robot messages, the
        # escalation (2 s after filing) and the pipeline-down check (3 s without heartbeat)
        # must not wait for them.
        wait_for(
            lambda: len([r for r in gateway.requests if r["path"] == "/robot"]) >= 5, 8, "robots"
        )
        robots_at = time.monotonic() - started
        wait_for(
            lambda: (
                count(database, "SELECT count(*) FROM tickets WHERE escalated_at IS NOT NULL") == 5
            ),
            8,
            "5 escalations",
        )
        escalated_at = time.monotonic() - started
        wait_for(
            lambda: count(database, "SELECT count(*) FROM outbox WHERE reason = 'pipeline_down'"),
            8,
            "the pipeline-down notice",
        )
        pipeline_at = time.monotonic() - started
    assert robots_at < 4 and escalated_at < 6 and pipeline_at < 8, (
        robots_at,
        escalated_at,
        pipeline_at,
    )
