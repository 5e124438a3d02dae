"""A real Prometheus holding a known month of SLA probe and host series (for the report tests).

October 2026 (local time, Asia/Shanghai) of ``sla_probe_success`` for targets ``home`` and
``login`` every 30 s (both ``sla_probe_platform 1``), the shipped rule
``platform:sla_availability:up`` evaluated over them every minute, and node_exporter series
for two hosts every 120 s, with known events:

- 3 Oct 02:00–03:30  ``login`` fails (90 min, 国庆 holiday)
- 5 Oct 10:00–11:00  ``home`` and ``login`` fail (60 min once, holiday)
- 15 Oct 14:00–14:50 ``home`` fails (50 min, working day)
- 20 Oct 00:00–02:00 ``home`` has no samples (the first 5 min are bridged by Prometheus'
  look-back; 115 min missing)
- 30 Sep 23:00–23:30 and 1 Nov 03:00–03:30 ``home`` fails: outside the local month (the second is
  inside the UTC month: catches a report that ignores the time zone)

The series are written as OpenMetrics, backfilled with ``promtool tsdb create-blocks-from
openmetrics`` and served by Debian's ``prometheus`` on a free loopback port.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from fx_prometheus import run_prometheus
from helpers import ROOT, require_binary

from sscp_ops.holiday_calendar import CHINA_TZ
from sscp_ops.report.sources import HttpPrometheus

START = datetime(2026, 9, 30, 22, tzinfo=CHINA_TZ)
END = datetime(2026, 11, 1, 4, tzinfo=CHINA_TZ)
PROBE_EVERY = 30
NODE_EVERY = 120


def t(day: int, hour: int, minute: int = 0, month: int = 10) -> float:
    return datetime(2026, month, day, hour, minute, tzinfo=CHINA_TZ).timestamp()


FAILURES = {  # target -> [(start, end)) unix seconds
    "home": [
        (t(30, 23, 0, 9), t(30, 23, 30, 9)),
        (t(5, 10), t(5, 11)),
        (t(15, 14), t(15, 14, 50)),
        (t(1, 3, 0, 11), t(1, 3, 30, 11)),
    ],
    "login": [(t(3, 2), t(3, 3, 30)), (t(5, 10), t(5, 11))],
}
GAPS = {"home": [(t(20, 0), t(20, 2))]}
# The platform's host (node exporter "web1:9100", job "platform") was down for the second hour
# of that gap: 20 Oct 01:00-02:00 (issue 16 item 12). Not a platform host unless configured.
WEB_HOST = "web1:9100"
WEB_HOST_DOWN = [(t(20, 1), t(20, 2))]


def web_host_up_lines(start: float, end: float, every: int = 60) -> Iterator[str]:
    ts = start
    while ts < end:
        value = 0 if _inside(ts, WEB_HOST_DOWN) else 1
        yield f'up{{instance="{WEB_HOST}",job="platform"}} {value} {ts:.0f}\n'
        ts += every


# Hand-computed expectations for October 2026 at a 60 s step.
MONTH_MINUTES = 31 * 24 * 60  # 44,640
DOWN_MINUTES = 90 + 60 + 50
MISSING_MINUTES = 120 - 5
HOLIDAY_MINUTES = 7 * 24 * 60  # 国庆 1–7 Oct: 10,080
HOLIDAY_DOWN_MINUTES = 90 + 60


@dataclass(frozen=True)
class Host:
    name: str
    cpus: int
    busy: float  # CPU busy fraction
    mem_total: float
    mem_used: float  # fraction
    disk_size: float
    disk_used_start: float  # fraction, grows linearly to disk_used_end
    disk_used_end: float
    net_in: float  # bytes/s
    net_out: float


HOSTS = [
    Host("app1:9100", 4, 0.25, 16e9, 0.5, 100e9, 0.70, 0.85, 2e6, 5e6),
    Host("db1:9100", 8, 0.10, 32e9, 0.9, 500e9, 0.30, 0.31, 1e6, 1e6),
]


# Statement digests on db1 (mysqld_exporter perf_schema), per day: calls, seconds, rows examined,
# rows sent, no-index-used, tmp disk tables, sort merge passes.
DIGESTS = {
    ("d1", "SELECT * FROM `case_record` WHERE `status` = ?"): (1000, 2000, 5e6, 1e3, 1000, 0, 0),
    ("d2", "SELECT `id` FROM `user` WHERE `phone` = ?"): (1e5, 100, 1e5, 1e5, 0, 0, 0),
    ("d3", "UPDATE `task` SET `state` = ? ORDER BY `due`"): (500, 250, 5e3, 0, 0, 0, 10),
}
SLOW_QUERIES_PER_DAY = 1000
STATEMENT_FIELDS = (
    "total",
    "seconds_total",
    "rows_examined_total",
    "rows_sent_total",
    "no_index_used_total",
    "tmp_disk_tables_total",
    "sort_merge_passes_total",
)


def statement_lines(instance: str, start: float, end: float, every: int) -> Iterator[str]:
    inst = f'instance="{instance}",job="mysql"'
    for n, field in enumerate(STATEMENT_FIELDS):
        name = f"mysql_perf_schema_events_statements_{field}"
        yield f"# TYPE {name.removesuffix('_total')} counter\n"
        for (digest, text), per_day in DIGESTS.items():
            labels = f'schema="sscp",digest="{digest}",digest_text="{text}",{inst}'
            ts = start
            while ts < end:
                yield f"{name}{{{labels}}} {per_day[n] * (ts - start) / 86400:.3f} {ts:.0f}\n"
                ts += every
    # mysqld_exporter names this counter without _total: OpenMetrics type "unknown"
    yield "# TYPE mysql_global_status_slow_queries unknown\n"
    ts = start
    while ts < end:
        value = SLOW_QUERIES_PER_DAY * (ts - start) / 86400
        yield f"mysql_global_status_slow_queries{{{inst}}} {value:.3f} {ts:.0f}\n"
        ts += every


# Nginx (logs collector) on web1: 100 requests a minute, 10 of them exactly 2.000 s, the rest
# under 2 s. Issue 16 item 10: under 2 s = le="1.999": 90 % (le="2.0" said 100 %).
NGINX_PER_MINUTE = {"1.999": 90, "2.0": 100, "+Inf": 100}
NGINX_EVERY = 60


def nginx_lines(start: float, end: float, every: int = NGINX_EVERY) -> Iterator[str]:
    name = "nginx_http_request_duration_seconds"
    labels = 'instance="web1:9810",job="sscp-ops",target="web1"'
    yield f"# TYPE {name}_bucket unknown\n"
    for le, per_minute in NGINX_PER_MINUTE.items():
        ts = start
        while ts < end:
            value = per_minute * (ts - start) / 60
            yield f'{name}_bucket{{{labels},le="{le}"}} {value:.0f} {ts:.0f}\n'
            ts += every
    yield f"# TYPE {name}_count unknown\n"
    ts = start
    while ts < end:
        yield f"{name}_count{{{labels}}} {100 * (ts - start) / 60:.0f} {ts:.0f}\n"
        ts += every


def _inside(ts: float, intervals) -> bool:
    return any(lo <= ts < hi for lo, hi in intervals)


def probe_lines(
    target: str, failures, gaps, start: float, end: float, every: int, name="sla_probe_success"
) -> Iterator[str]:
    """The probe's result (or, for ``sla_probe_platform``, its platform flag 1: scraped
    together, so with the same gaps)."""
    ts = start
    while ts < end:
        if not _inside(ts, gaps):
            value = 1 if name != "sla_probe_success" or not _inside(ts, failures) else 0
            yield f'{name}{{target="{target}"}} {value} {ts:.0f}\n'
        ts += every


def node_lines(host: Host, start: float, end: float, every: int) -> Iterator[str]:
    inst = f'instance="{host.name}",job="node"'
    span = end - start
    families = {
        "node_cpu_seconds_total": "counter",
        "node_memory_MemAvailable_bytes": "gauge",
        "node_memory_MemTotal_bytes": "gauge",
        "node_filesystem_avail_bytes": "gauge",
        "node_filesystem_size_bytes": "gauge",
        "node_network_receive_bytes_total": "counter",
        "node_network_transmit_bytes_total": "counter",
        "up": "gauge",
    }
    for name, kind in families.items():
        family = name.removesuffix("_total") if kind == "counter" else name
        yield f"# TYPE {family} {kind}\n"
        ts = start
        while ts < end:
            el = ts - start
            if name == "node_cpu_seconds_total":
                for cpu in range(host.cpus):
                    idle = el * (1 - host.busy)
                    yield f'{name}{{cpu="{cpu}",mode="idle",{inst}}} {idle:.1f} {ts:.0f}\n'
            elif name == "node_memory_MemAvailable_bytes":
                yield f"{name}{{{inst}}} {host.mem_total * (1 - host.mem_used):.0f} {ts:.0f}\n"
            elif name == "node_memory_MemTotal_bytes":
                yield f"{name}{{{inst}}} {host.mem_total:.0f} {ts:.0f}\n"
            elif name == "node_filesystem_avail_bytes":
                used = (
                    host.disk_used_start + (host.disk_used_end - host.disk_used_start) * el / span
                )
                fs = f'device="/dev/vda1",fstype="ext4",mountpoint="/",{inst}'
                yield f"{name}{{{fs}}} {host.disk_size * (1 - used):.0f} {ts:.0f}\n"
            elif name == "node_filesystem_size_bytes":
                fs = f'device="/dev/vda1",fstype="ext4",mountpoint="/",{inst}'
                yield f"{name}{{{fs}}} {host.disk_size:.0f} {ts:.0f}\n"
            elif name == "node_network_receive_bytes_total":
                yield f'{name}{{device="eth0",{inst}}} {host.net_in * el:.0f} {ts:.0f}\n'
            elif name == "node_network_transmit_bytes_total":
                yield f'{name}{{device="eth0",{inst}}} {host.net_out * el:.0f} {ts:.0f}\n'
            elif name == "up":
                yield f"{name}{{{inst}}} 1 {ts:.0f}\n"
            ts += every


def write_openmetrics(
    path: Path,
    failures: dict,
    gaps: dict,
    hosts: list[Host],
    start: float,
    end: float,
    probe_every: int = PROBE_EVERY,
    node_every: int = NODE_EVERY,
) -> Path:
    """Write probe and host series as one OpenMetrics file (families contiguous, ``# EOF``)."""
    with path.open("w") as out:
        for name in ("sla_probe_success", "sla_probe_platform"):
            out.write(f"# TYPE {name} gauge\n")
            for target in sorted(set(failures) | set(gaps)):
                fails, holes = failures.get(target, []), gaps.get(target, [])
                out.writelines(probe_lines(target, fails, holes, start, end, probe_every, name))
        per_host = [list(node_lines(h, start, end, node_every)) for h in hosts]
        if per_host:
            # OpenMetrics wants each family once: regroup all hosts' lines under it
            blocks: dict[str, list[str]] = {}
            for lines in per_host:
                family = None
                for line in lines:
                    if line.startswith("# TYPE"):
                        family = line
                        blocks.setdefault(family, [])
                    else:
                        blocks[family].append(line)  # type: ignore[index]
            blocks["# TYPE up gauge\n"].extend(web_host_up_lines(start, end))
            for family, lines in blocks.items():
                out.write(family)
                out.writelines(lines)
            out.writelines(statement_lines(hosts[-1].name, start, end, node_every))
            out.writelines(nginx_lines(start, end))
        out.write("# EOF\n")
    return path


def backfill(openmetrics: Path, tsdb: Path) -> None:
    promtool = require_binary("promtool")
    base = [promtool, "tsdb", "create-blocks-from"]
    args = ["openmetrics", "--quiet", str(openmetrics), str(tsdb)]
    # --max-block-duration arrived after Debian's 2.42; there 2 h blocks are written instead.
    done = subprocess.run(
        [*base, "--max-block-duration=768h", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0 and "max-block-duration" in done.stderr:
        done = subprocess.run([*base, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"promtool backfill failed: {done.stderr[-2000:]}")


PLATFORM_RULE = "platform:sla_availability:up"
RULES_FILE = ROOT / "rules" / "availability.rules.yml"
EMPTY_CONFIG = "global: {scrape_interval: 1h}\nscrape_configs: []\n"


def platform_rule() -> dict:
    """The shipped ``platform:sla_availability:up`` rule (rules/availability.rules.yml)."""
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return next(r for g in groups for r in g["rules"] if r.get("record") == PLATFORM_RULE)


def backfill_platform_rule(tsdb: Path, workdir: Path, start: float, end: float) -> None:
    """Evaluate the shipped platform rule over the backfilled raw series once a minute, as the
    running Prometheus does at its 1 m evaluation interval, and backfill the results into
    ``tsdb``. This is what ``promtool tsdb create-blocks-from rules`` does (a range query of the
    rule's expression at the evaluation interval), written as one block instead of its
    hundreds of 2 h blocks (which Debian's 2.42 takes minutes to compact at start)."""
    expr = platform_rule()["expr"]
    every = 60
    first = start - start % every
    lines = [f"# TYPE {PLATFORM_RULE.replace(':', '_')} gauge\n"]
    with run_prometheus(EMPTY_CONFIG, workdir / "raw", tsdb=tsdb, retention="100y") as prom:
        # Past the last sample the probes' look-back (5 min) still holds, and so does the rule.
        series = HttpPrometheus(prom.url).query_range(expr, first, end + 300, every)
    name = PLATFORM_RULE
    for s in series:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        lines += [f"{name}{{{labels}}} {v:g} {ts:.0f}\n" for ts, v in s.points]
    lines[0] = f"# TYPE {name} gauge\n"
    om = workdir / "platform.om"
    om.write_text("".join(lines) + "# EOF\n")
    backfill(om, tsdb)
    om.unlink()


@pytest.fixture(scope="session")
def report_prometheus(tmp_path_factory) -> Iterator[str]:
    """URL of a Prometheus holding the known October 2026 (see the module docstring), with the
    shipped platform rule evaluated over it."""
    tmp = tmp_path_factory.mktemp("report-prom")
    om = write_openmetrics(
        tmp / "series.om", FAILURES, GAPS, HOSTS, START.timestamp(), END.timestamp()
    )
    tsdb = tmp / "tsdb"
    backfill(om, tsdb)
    om.unlink()
    backfill_platform_rule(tsdb, tmp, START.timestamp(), END.timestamp())
    with run_prometheus(EMPTY_CONFIG, tmp, timeout=60, tsdb=tsdb, retention="100y") as prom:
        yield prom.url
