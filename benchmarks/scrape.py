#!/usr/bin/env python3
"""Scrape cost of ``sscp-ops exporter`` against the reference exporters, in one run.

Ours runs the host collector plus one target of each remote system (Nginx, Tomcat, Redis,
MySQL); the references are node_exporter + nginx-prometheus-exporter + redis_exporter +
mysqld_exporter (Tomcat has none), all from Debian, all watching the same servers. Scrapes
alternate (ours, then each reference) for ``--scrapes`` rounds, with Prometheus' request headers
(OpenMetrics preferred, gzip). Printed per exporter: median and p95 latency, server CPU per
scrape (utime + stime from /proc/<pid>/stat over the measured rounds, divided by the rounds),
RSS at the end and the number of series; then ours / sum of the references.

Targets (issue 3): CPU per scrape <= 0.5 x the references' sum, p95 <= 50 ms.

    .venv/bin/python benchmarks/scrape.py [--scrapes 200] [--host-only]

``--host-only`` compares the host collector alone with node_exporter (no servers needed).

Needs what the tests need: nginx, tomcat10 + tomcat10-admin, redis-server, MariaDB on
127.0.0.1:3306 (root without password, to create a throw-away exporter user) and the Debian
exporters. Servers run in a temp dir on free loopback ports and are stopped at the end.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fx_servers import nginx_server, redis_server, tomcat_server  # noqa: E402
from fx_targets import (  # noqa: E402
    mysql_exporter_user,
    mysqld_reference,
    nginx_reference,
    redis_reference,
    start_exporter,
)
from helpers import free_port, require_binary, running  # noqa: E402

HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process ``pid`` (its threads included), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def listener_pid(port: int) -> int:
    """The pid owning the listening socket on ``port`` (the exporter, not a wrapper shell)."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inode = parts[9]
    if inode is None:
        raise RuntimeError(f"nothing listens on {port}")
    target = f"socket:[{inode}]"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return int(pid)
        except OSError:
            continue
    raise RuntimeError(f"no process holds {target}")


def series_count(body: bytes, encoding: str) -> int:
    text = gzip.decompress(body).decode() if encoding == "gzip" else body.decode()
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


class Subject:
    def __init__(self, name: str, url: str, durations: bool = False) -> None:
        self.name = name
        self.url = url
        self.pid = listener_pid(int(url.split(":")[2].split("/")[0]))
        self.session = requests.Session()
        self.latencies: list[float] = []
        self.cpu_start = 0.0
        self.cpu_end = 0.0
        self.series = 0
        self.rss = 0
        self.durations: dict[str, list[float]] | None = {} if durations else None

    def scrape(self, record: bool) -> None:
        start = time.perf_counter()
        response = self.session.get(self.url, headers=HEADERS, timeout=30, stream=True)
        body = response.raw.read()
        took = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(f"{self.name}: HTTP {response.status_code}")
        if record:
            self.latencies.append(took)
            if self.durations is not None:
                text = gzip.decompress(body) if response.headers.get("Content-Encoding") else body
                for line in text.decode().splitlines():
                    if line.startswith("sscp_exporter_collector_duration_seconds{"):
                        labels, value = line.rsplit(" ", 1)
                        self.durations.setdefault(labels[41:-1], []).append(float(value))
        else:
            self.series = series_count(body, response.headers.get("Content-Encoding", ""))

    def cpu_per_scrape(self) -> float:
        return (self.cpu_end - self.cpu_start) / max(1, len(self.latencies))

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(rounds: int, warmup: int, host_only: bool) -> list[Subject]:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sscp-bench-")))
        node_port = free_port()
        node_url = f"http://127.0.0.1:{node_port}/metrics"
        # node_exporter logs an error line per failing collector on every scrape: its stderr
        # goes to a file, not to a pipe that nobody reads (a full pipe would stall it).
        node_log = stack.enter_context(open(tmp / "node_exporter.log", "w"))  # noqa: SIM115
        stack.enter_context(
            running(
                [
                    require_binary("prometheus-node-exporter", "node_exporter"),
                    f"--web.listen-address=127.0.0.1:{node_port}",
                ],
                ready_url=node_url,
                stderr=node_log,
            )
        )
        if host_only:
            config = "exporter: {collectors: {host: true}}\n"
            ours = stack.enter_context(start_exporter(tmp, config)) + "/metrics"
            subjects = [
                Subject("sscp-ops (host)", ours, durations=True),
                Subject("node_exporter", node_url),
            ]
            return measure(subjects, rounds, warmup)
        nginx = stack.enter_context(nginx_server(tmp / "nginx"))
        tomcat = stack.enter_context(tomcat_server(tmp / "tomcat"))
        cache = stack.enter_context(redis_server(tmp / "redis"))
        (tmp / "mysql").mkdir()
        db = stack.enter_context(mysql_exporter_user(tmp / "mysql"))
        config = f"""
exporter: {{collectors: {{host: true}}}}
targets:
  nginx: [{{name: web1, url: "{nginx.stub_status_url}"}}]
  tomcat: [{{name: app1, url: "{tomcat.status_url}", user: {tomcat.user},
            password_file: {tomcat.password_file}}}]
  redis: [{{name: cache1, address: "{cache.address}"}}]
  mysql: [{{name: db1, address: "{db.address}", user: {db.user},
           password_file: {db.password_file}}}]
"""
        ours = stack.enter_context(start_exporter(tmp, config)) + "/metrics"
        subjects = [
            Subject("sscp-ops (host+4 targets)", ours, durations=True),
            Subject("node_exporter", node_url),
            Subject("nginx-exporter", stack.enter_context(nginx_reference(nginx.stub_status_url))),
            Subject("redis_exporter", stack.enter_context(redis_reference(cache.address))),
            Subject("mysqld_exporter", stack.enter_context(mysqld_reference(db, tmp / "mysql"))),
        ]
        return measure(subjects, rounds, warmup)


def measure(subjects: list[Subject], rounds: int, warmup: int) -> list[Subject]:
    for _ in range(warmup):
        for s in subjects:
            s.scrape(record=False)
    for s in subjects:
        s.cpu_start = cpu_seconds(s.pid)
    for _ in range(rounds):
        for s in subjects:
            s.scrape(record=True)
    for s in subjects:
        s.cpu_end = cpu_seconds(s.pid)
        s.rss = rss_bytes(s.pid)
    return subjects


def report(subjects: list[Subject]) -> None:
    print(
        f"{'exporter':28} {'p50 ms':>8} {'p95 ms':>8} {'CPU ms/scrape':>14} "
        f"{'RSS MiB':>8} {'series':>7}"
    )
    for s in subjects:
        print(
            f"{s.name:28} {statistics.median(s.latencies) * 1e3:8.2f} {s.p(0.95) * 1e3:8.2f} "
            f"{s.cpu_per_scrape() * 1e3:14.2f} {s.rss / 2**20:8.1f} {s.series:7d}"
        )
    ours, refs = subjects[0], subjects[1:]
    ref_cpu = sum(s.cpu_per_scrape() for s in refs)
    ref_rss = sum(s.rss for s in refs)
    ref_series = sum(s.series for s in refs)
    print(
        f"{'references (sum)':28} {'':8} {'':8} {ref_cpu * 1e3:14.2f} "
        f"{ref_rss / 2**20:8.1f} {ref_series:7d}"
    )
    ratio = ours.cpu_per_scrape() / ref_cpu if ref_cpu else float("inf")
    print(f"\nCPU per scrape, ours / sum of references: {ratio:.2f} (target <= 0.50)")
    print(f"p95 latency ours: {ours.p(0.95) * 1e3:.1f} ms (target <= 50 ms)")
    print(f"RSS ours / sum of references: {ours.rss / ref_rss:.2f}")
    print("\nour collectors' own durations (sscp_exporter_collector_duration_seconds):")
    for labels, values in sorted((ours.durations or {}).items()):
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        print(
            f"  {labels:40} p50 {statistics.median(values) * 1e3:7.2f} ms  p95 {p95 * 1e3:7.2f} ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scrapes", type=int, default=200, help="rounds of scrapes")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--host-only", action="store_true", help="host vs node_exporter only")
    args = parser.parse_args()
    print(f"{args.scrapes} scrapes each, alternating\n")
    report(run(args.scrapes, args.warmup, args.host_only))
    return 0


if __name__ == "__main__":
    sys.exit(main())
