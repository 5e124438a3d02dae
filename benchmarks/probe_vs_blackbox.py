#!/usr/bin/env python3
"""Scrape latency of one SLA probe: `sscp-ops exporter` (/metrics with one probe target, other
collectors off) against Debian's blackbox exporter (/probe) probing the same local page.

Run by hand: .venv/bin/python benchmarks/probe_vs_blackbox.py [N]
Prints the median and p95 per scrape for each and the ratio ours / blackbox.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

PAGE = ("<html><body>" + "智慧监管综合指挥平台 " * 2000 + "</body></html>").encode()


class Page(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as nginx (tcp_nodelay): no 40 ms delayed-ACK stalls

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str) -> None:
    for _ in range(200):
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def measure(url: str, params: dict | None, n: int) -> list[float]:
    session = requests.Session()
    for _ in range(5):
        session.get(url, params=params, timeout=10)  # warm up
    out = []
    for _ in range(n):
        start = time.perf_counter()
        resp = session.get(url, params=params, timeout=10)
        out.append(time.perf_counter() - start)
        assert "probe_success" in resp.text and " 1" in resp.text, resp.text[:200]
    return out


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    blackbox = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    if not blackbox:
        raise SystemExit("prometheus-blackbox-exporter is not installed")
    site = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{site.server_address[1]}/"
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.yml"
        cfg.write_text(
            "exporter: {collectors: {host: false, probe: true}}\n"
            f"targets: {{probe: [{{name: home, url: '{url}', keyword: 智慧监管}}]}}\n"
        )
        bb = Path(tmp) / "blackbox.yml"
        bb.write_text(
            "modules:\n  home:\n    prober: http\n    timeout: 5s\n    http:\n"
            "      valid_status_codes: [200]\n      fail_if_body_not_matches_regexp: [智慧监管]\n"
        )
        ours_port, bb_port = free_port(), free_port()
        exe = [sys.executable, "-m", "sscp_ops", "exporter", f"--config.file={cfg}"]
        procs.append(
            subprocess.Popen(
                [*exe, f"--web.listen-address=127.0.0.1:{ours_port}", "--log.level=error"],
                start_new_session=True,
            )
        )
        procs.append(
            subprocess.Popen(
                [blackbox, f"--config.file={bb}", f"--web.listen-address=127.0.0.1:{bb_port}"],
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        try:
            wait(f"http://127.0.0.1:{ours_port}/healthz")
            wait(f"http://127.0.0.1:{bb_port}/-/healthy")
            ours = measure(f"http://127.0.0.1:{ours_port}/metrics", None, n)
            theirs = measure(
                f"http://127.0.0.1:{bb_port}/probe", {"target": url, "module": "home"}, n
            )
        finally:
            for p in procs:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(10)
            site.shutdown()

    def stats(xs: list[float]) -> tuple[float, float]:
        xs = sorted(xs)
        return statistics.median(xs) * 1000, xs[int(len(xs) * 0.95) - 1] * 1000

    (om, op), (bm, bp) = stats(ours), stats(theirs)
    print(f"page {len(PAGE)} bytes, {n} scrapes each")
    print(f"sscp-ops exporter /metrics: median {om:.2f} ms  p95 {op:.2f} ms")
    print(f"blackbox_exporter /probe:   median {bm:.2f} ms  p95 {bp:.2f} ms")
    print(f"ratio (ours / blackbox): median {om / bm:.2f}  p95 {op / bp:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
