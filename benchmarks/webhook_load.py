#!/usr/bin/env python3
"""Load test of ``sscp-ops webhook``: N concurrent clients post Alertmanager notifications.

Each notification holds 5 alerts (shaped like the captured real bodies in
tests/fixtures/webhook/); 30 % of the posts repeat an earlier notification (Alertmanager's
retries and HA twins). Measured: sustained notifications/s, p50/p99 latency, tickets created
vs expected (zero duplicate or missing tickets). The reference in the same run is a null
receiver on the same gunicorn settings (parses the JSON, stores nothing): the ratio shows what
the ticket store costs on top of the HTTP stack.

    .venv/bin/python benchmarks/webhook_load.py [--clients 16] [--notifications 200]

Targets on the 2-core development machine with SQLite: >= 500 notifications/s, p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token-0123456789"


def null_app(environ, start_response):
    """Reference receiver: read and parse the body, answer 200, store nothing."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    json.loads(environ["wsgi.input"].read(length) or b"{}")
    body = b'{"received": 5}'
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"port {port} not listening")


def notification(client: int, seq: int) -> bytes:
    """One realistic Alertmanager body (version 4) with 5 alerts, unique per (client, seq)."""
    starts = f"2026-11-28T{(seq // 3600) % 24:02d}:{(seq // 60) % 60:02d}:{seq % 60:02d}Z"
    alerts = [
        {
            "status": "firing",
            "labels": {
                "alertname": "DiskFull",
                "instance": f"host{client}-{seq}:9100",
                "mountpoint": f"/data{i}",
                "severity": "warning",
            },
            "annotations": {
                "summary": f"host{client}-{seq} 磁盘 /data{i} 将满",
                "description": "剩余空间低于 10%",
            },
            "startsAt": starts,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.local/graph",
            "fingerprint": f"{client:04x}{seq:08x}{i:04x}",
        }
        for i in range(5)
    ]
    return json.dumps(
        {
            "receiver": "sscp-ops\\.tickets",
            "status": "firing",
            "alerts": alerts,
            "groupLabels": {"alertname": "DiskFull", "instance": f"host{client}-{seq}:9100"},
            "commonLabels": {"alertname": "DiskFull", "severity": "warning"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.local",
            "version": "4",
            "groupKey": f'{{}}:{{alertname="DiskFull", c="{client}-{seq}"}}',
            "truncatedAlerts": 0,
        },
        ensure_ascii=False,
    ).encode()


class Client:
    """A minimal HTTP/1.1 client for prebuilt POST requests: keep-alive while the server keeps
    the connection, a new one after ``Connection: close`` (sync workers). http.client parses
    every response's headers with the e-mail parser; on this 2-core machine its CPU (about
    0.2 ms a request) would be taken from the server under test."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None

    @staticmethod
    def request(port: int, body: bytes) -> bytes:
        """The bytes of one POST of ``body`` to /api/v1/alerts."""
        return (
            f"POST /api/v1/alerts HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    def send(self, request: bytes, retry: bool = True) -> int:
        """Send one request; returns the status code."""
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(request)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(65536)
            if not chunk:  # an idle keep-alive connection the server closed: once more
                self.close()
                if retry and not buf:
                    return self.send(request, retry=False)
                raise ConnectionError("connection closed mid-response")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lower = head.lower()
        length = int(lower.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed mid-body")
            rest += chunk
        if b"connection: close" in lower:
            self.close()
        return int(head[9:12])

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def run_clients(port: int, clients: int, per_client: int, dup_ratio: float):
    latencies: list[float] = []
    unique = [0]
    errors = [0]
    lock = threading.Lock()
    start_gate = threading.Barrier(clients + 1)

    def client(cid: int) -> None:
        rng = random.Random(cid)
        conn = Client(port)
        sent: list[int] = []
        mine, local, errs = 0, [], 0
        # Requests are built before the run: encoding JSON is the load generator's work, which
        # would otherwise take CPU from the server on this 2-core machine (Alertmanager runs
        # elsewhere and is written in Go).
        bodies = []
        for _ in range(per_client):
            if sent and rng.random() < dup_ratio:
                seq = rng.choice(sent)
            else:
                seq = len(sent)
                sent.append(seq)
                mine += 1
            bodies.append(Client.request(port, notification(cid, seq)))
        start_gate.wait()
        for request in bodies:
            t0 = time.perf_counter()
            status = conn.send(request)
            local.append(time.perf_counter() - t0)
            if status != 200:
                errs += 1
        conn.close()
        with lock:
            latencies.extend(local)
            unique[0] += mine
            errors[0] += errs

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    start_gate.wait()
    t0, c0 = time.perf_counter(), time.process_time()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    print(
        f"    load generator CPU {(time.process_time() - c0) / (clients * per_client) * 1000:.2f}"
        " ms per notification"
    )
    return latencies, elapsed, unique[0], errors[0]


def cpu_seconds(proc: subprocess.Popen) -> dict[str, float]:
    """CPU seconds (user + system) of the server process and of each of its children."""
    import psutil

    out = {}
    root = psutil.Process(proc.pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            role = "notice worker" if " worker " in " ".join(p.cmdline()) else "gunicorn"
            if p.pid == proc.pid:
                role += " arbiter"
            out[f"{role} (pid {p.pid}) user"] = t.user
            out[f"{role} (pid {p.pid}) system"] = t.system
        except psutil.Error:
            pass
    return out


def cpu_report(before: dict[str, float], after: dict[str, float], n: int) -> None:
    """Server CPU per notification, and how the gunicorn workers shared it (the balance)."""
    used = {k: after[k] - before.get(k, 0.0) for k in after}
    total = sum(used.values())
    print(f"    server CPU {total:.2f} s = {total / n * 1000:.2f} ms per notification:")
    for k, v in sorted(used.items(), key=lambda kv: -kv[1]):
        print(f"      {v:6.2f} s  {k}")


def summarize(name: str, latencies: list[float], elapsed: float) -> dict:
    lat = sorted(latencies)
    out = {
        "name": name,
        "notifications": len(lat),
        "seconds": round(elapsed, 2),
        "per_second": round(len(lat) / elapsed, 1),
        "p50_ms": round(statistics.median(lat) * 1000, 1),
        "p99_ms": round(lat[int(len(lat) * 0.99) - 1] * 1000, 1),
    }
    print(
        f"{name:>14}: {out['notifications']} notifications in {out['seconds']} s = "
        f"{out['per_second']}/s, p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms"
    )
    return out


def start(cmd: list[str], port: int, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_port(port)
    return proc


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--notifications", type=int, default=200, help="per client")
    ap.add_argument("--duplicates", type=float, default=0.30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="1: sync workers, more: gthread")
    ap.add_argument(
        "--no-worker",
        action="store_true",
        help="measure the receiver alone (notices stay queued in the outbox)",
    )
    args = ap.parse_args()
    py = sys.executable
    tmp = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    (tmp / "am.token").write_text(TOKEN)
    db = tmp / "tickets.db"
    (tmp / "config.yml").write_text(
        "webhook:\n"
        f"  database: sqlite:///{db}\n"
        f"  alertmanager_token_file: {tmp / 'am.token'}\n"
        f"  workers: {args.workers}\n  threads: {args.threads}\n"
        "  roster: {shifts: [{primary: {name: 值班, phone: '13800000001'}}]}\n"
        "  sms: {backend: log}\n"
    )
    print(
        f"{args.clients} clients x {args.notifications} notifications x 5 alerts, "
        f"{args.duplicates:.0%} duplicates; gunicorn {args.workers} workers x "
        f"{args.threads} threads; notice worker {'off' if args.no_worker else 'on'}; "
        f"SQLite WAL at {db}"
    )

    port = free_port()
    ref = start(
        [
            py,
            "-m",
            "gunicorn",
            "--chdir",
            str(ROOT / "benchmarks"),
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(args.workers),
            "-k",
            "sync" if args.threads == 1 else "gthread",
            "--threads",
            str(args.threads),
            "--no-control-socket",
            "webhook_load:null_app",
        ],
        port,
    )
    try:
        lat, elapsed, _, errs = run_clients(port, args.clients, args.notifications, args.duplicates)
    finally:
        stop(ref)
    reference = summarize("null receiver", lat, elapsed)

    port = free_port()
    proc = start(
        [
            py,
            "-m",
            "sscp_ops",
            "webhook",
            "--config.file",
            str(tmp / "config.yml"),
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--log.level",
            "warning",
            *(["--no-worker"] if args.no_worker else []),
        ],
        port,
    )
    try:
        time.sleep(2)  # the notice worker's start-up (imports) is not part of the run
        cpu_before = cpu_seconds(proc)
        lat, elapsed, unique, errs = run_clients(
            port, args.clients, args.notifications, args.duplicates
        )
        cpu_after = cpu_seconds(proc)
    finally:
        stop(proc)
    ours = summarize("sscp-ops", lat, elapsed)
    cpu_report(cpu_before, cpu_after, len(lat))

    import sqlite3

    with sqlite3.connect(db) as conn:
        tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
        distinct = conn.execute(
            "SELECT count(DISTINCT fingerprint || starts_at) FROM tickets"
        ).fetchone()[0]
        notices = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    expected = unique * 5
    print(
        f"tickets: {tickets} created, {expected} expected, {tickets - distinct} duplicates, "
        f"{notices} notices queued, {errs} non-200 answers"
    )
    print(
        f"ratio sscp-ops / null receiver: {ours['per_second'] / reference['per_second']:.2f} "
        f"throughput, {ours['p99_ms'] / reference['p99_ms']:.1f}x p99"
    )
    ok = (
        tickets == expected == distinct
        and errs == 0
        and ours["per_second"] >= 500
        and ours["p99_ms"] < 100
    )
    print("targets (>= 500/s, p99 < 100 ms, exact tickets):", "met" if ok else "NOT met")
    return 0 if tickets == expected == distinct and errs == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
