"""Benchmark: the monthly report for 10 hosts and 20 SLA targets (target: < 30 s).

Generates October 2026 (probes every 30 s, host series every 120 s, a few outages per target),
backfills it with promtool into a temp TSDB, starts Debian's Prometheus on it, then times

- ours: ``sscp-ops report monthly`` end to end (queries, computation, HTML, PDF, JSON);
- reference: ``promtool query instant`` of ``avg_over_time(sla_probe_success[31d])`` and the
  five host queries' ``avg_over_time`` — Prometheus reading the same month, nothing else.

Run by hand: ``.venv/bin/python benchmarks/report.py``. Prints seconds and the ratio.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import fx_report as fx  # noqa: E402
from helpers import sscp_ops_cmd  # noqa: E402

from sscp_ops.report.build import RESOURCE_QUERIES  # noqa: E402

TARGETS, HOSTS = 20, 10


def main() -> None:
    start, end = fx.t(1, 0) - 3600, fx.t(1, 0, 0, 11) + 3600
    failures = {
        f"t{i:02d}": [(fx.t(1 + i, 9), fx.t(1 + i, 9) + 60 * (10 + i))] for i in range(TARGETS)
    }
    hosts = [
        fx.Host(
            f"host{i:02d}:9100",
            4,
            0.1 + 0.05 * i,
            16e9,
            0.4 + 0.04 * i,
            200e9,
            0.3,
            0.3 + 0.05 * i,
            1e6 * (i + 1),
            2e6 * (i + 1),
        )
        for i in range(HOSTS)
    ]
    with tempfile.TemporaryDirectory(prefix="sscp-report-bench-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.monotonic()
        om = fx.write_openmetrics(tmp / "series.om", failures, {}, hosts, start, end)
        t1 = time.monotonic()
        fx.backfill(om, tmp / "tsdb")
        t2 = time.monotonic()
        size = om.stat().st_size
        om.unlink()
        print(
            f"generated {size / 1e6:.0f} MB OpenMetrics in {t1 - t0:.1f} s, "
            f"backfilled in {t2 - t1:.1f} s"
        )
        with fx.prometheus_on(tmp / "tsdb", tmp) as url:
            ref0 = time.monotonic()
            queries = ["avg_over_time(sla_probe_success[31d])"] + [
                f"avg_over_time(({q})[31d:5m])" for q in RESOURCE_QUERIES.values()
            ]
            for q in queries:
                subprocess.run(
                    ["promtool", "query", "instant", "--time", str(int(fx.t(1, 0, 0, 11))), url, q],
                    check=True,
                    capture_output=True,
                )
            reference = time.monotonic() - ref0
            ours0 = time.monotonic()
            done = subprocess.run(
                sscp_ops_cmd(
                    "report",
                    "monthly",
                    "--month",
                    "2026-10",
                    "--prometheus-url",
                    url,
                    "--out",
                    str(tmp / "out"),
                ),
                check=True,
                capture_output=True,
                text=True,
            )
            ours = time.monotonic() - ours0
            split = re.search(r"build_seconds=(\S+) render_seconds=(\S+)", done.stderr)
            pdf = (tmp / "out" / "report.pdf").stat().st_size
    print(
        f"report monthly ({HOSTS} hosts, {TARGETS} targets): {ours:.1f} s "
        f"(PDF {pdf / 1e3:.0f} kB); reference promtool queries: {reference:.1f} s; "
        f"ratio {ours / reference:.1f}x; target < 30 s: {'met' if ours < 30 else 'MISSED'}"
    )
    if split:
        print(f"  of which gathering and computing {split[1]} s, HTML/PDF/JSON {split[2]} s")


if __name__ == "__main__":
    main()
