#!/usr/bin/env python3
"""Scrape benchmark: our exporter (host collector) against Debian's node_exporter, same run.

Both are started on free loopback ports and scraped alternately (as Prometheus would, with
``Accept-Encoding: gzip``). Printed for each: median and p95 latency, server CPU per scrape
(utime + stime from /proc/<pid>/stat over the run, divided by the scrapes), RSS, series
count; then the ratio ours / theirs.

    .venv/bin/python benchmarks/scrape.py [--scrapes 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import requests

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class Target:
    name: str
    url: str
    proc: subprocess.Popen
    latencies: list[float]
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    series: int = 0


def wait(url: str, proc: subprocess.Popen) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit(f"{url}: process exited with {proc.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)
    sys.exit(f"{url} did not come up")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scrapes", type=int, default=200)
    args = ap.parse_args()
    node = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if not node:
        sys.exit("node_exporter not installed (apt-get install prometheus-node-exporter)")

    tmp = tempfile.mkdtemp()
    cfg = os.path.join(tmp, "bench.yml")
    with open(cfg, "w") as f:
        f.write("exporter: {collectors: {host: true}}\n")
    ours_port, node_port = free_port(), free_port()
    procs = {
        "sscp-ops": subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sscp_ops",
                "exporter",
                "--config.file",
                cfg,
                "--web.listen-address",
                f"127.0.0.1:{ours_port}",
                "--log.level",
                "warning",
            ]
        ),
        "node_exporter": subprocess.Popen(
            [node, f"--web.listen-address=127.0.0.1:{node_port}"], stderr=subprocess.DEVNULL
        ),
    }
    targets = [
        Target("sscp-ops", f"http://127.0.0.1:{ours_port}/metrics", procs["sscp-ops"], []),
        Target(
            "node_exporter", f"http://127.0.0.1:{node_port}/metrics", procs["node_exporter"], []
        ),
    ]
    try:
        session = requests.Session()
        session.headers["Accept-Encoding"] = "gzip"
        for t in targets:
            wait(t.url, t.proc)
            for _ in range(5):  # warm up
                session.get(t.url, timeout=10)
            t.cpu_start = cpu_seconds(t.proc.pid)
        for _ in range(args.scrapes):
            for t in targets:
                start = time.perf_counter()
                resp = session.get(t.url, timeout=10)
                t.latencies.append(time.perf_counter() - start)
                resp.raise_for_status()
        for t in targets:
            t.cpu_end = cpu_seconds(t.proc.pid)
            text = session.get(t.url, timeout=10).text
            t.series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        rss = {t.name: rss_bytes(t.proc.pid) for t in targets}
    finally:
        for p in procs.values():
            p.terminate()
            p.wait(10)

    print(f"{args.scrapes} scrapes each, alternating\n")
    print(f"{'':15}{'median ms':>11}{'p95 ms':>9}{'CPU ms/scrape':>15}{'RSS MiB':>9}{'series':>8}")
    rows = {}
    for t in targets:
        cpu = (t.cpu_end - t.cpu_start) / args.scrapes * 1000
        rows[t.name] = (
            statistics.median(t.latencies) * 1000,
            pct(t.latencies, 0.95) * 1000,
            cpu,
            rss[t.name] / 2**20,
            t.series,
        )
        m, p95, c, r, s = rows[t.name]
        print(f"{t.name:15}{m:11.2f}{p95:9.2f}{c:15.2f}{r:9.1f}{s:8d}")
    ours, theirs = rows["sscp-ops"], rows["node_exporter"]
    print(
        "\nratio ours/theirs: "
        f"median latency {ours[0] / theirs[0]:.2f}, p95 {ours[1] / theirs[1]:.2f}, "
        f"CPU per scrape {ours[2] / theirs[2]:.2f} (target <= 0.5), "
        f"RSS {ours[3] / theirs[3]:.2f} (ours {ours[3]:.1f} MiB, target <= 60)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
