"""Host collector: parsers on captured /proc files, and agreement with node_exporter 1.5."""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests
from helpers import (
    FIXTURES,
    free_port,
    parse_exposition,
    promtool_check_metrics,
    running,
    sscp_ops_cmd,
)

from exporters.core import ParseError
from exporters.host import Mount, parse_meminfo, parse_mounts, wanted_mount


def test_parse_meminfo_captured() -> None:
    info = parse_meminfo((FIXTURES / "host" / "meminfo").read_text())
    assert info["MemTotal"] > info["MemAvailable"] > 0
    assert info["MemTotal"] % 1024 == 0
    assert "SwapTotal" in info and "Cached" in info


@pytest.mark.parametrize("text", ["", "MemTotal:\n", "MemTotal: lots kB\n", "MemFree: 1 kB\n"])
def test_parse_meminfo_rejects_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse_meminfo(text)


def test_parse_mounts_captured_dedupes_and_filters() -> None:
    mounts = parse_mounts((FIXTURES / "host" / "mounts").read_text())
    keys = [(m.device, m.mountpoint, m.fstype) for m in mounts]
    assert len(keys) == len(set(keys))
    kept = [m.mountpoint for m in mounts if wanted_mount(m)]
    assert "/" in kept
    assert not any(p.startswith(("/proc", "/sys", "/dev", "/mnt")) for p in kept)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/dev/sda1 / ext4 rw,relatime 0 0", Mount("/dev/sda1", "/", "ext4", False)),
        (
            "/dev/sdb1 /data\\040disk xfs ro,noatime 0 0",
            Mount("/dev/sdb1", "/data disk", "xfs", True),
        ),
    ],
)
def test_parse_mounts_lines(line: str, expected: Mount) -> None:
    assert parse_mounts(line) == [expected]


@pytest.mark.parametrize(
    ("mount", "wanted"),
    [
        (Mount("proc", "/proc", "proc", False), False),
        (Mount("tmpfs", "/run", "tmpfs", False), False),
        (Mount("cgroup2", "/opt/cg", "cgroup2", False), False),
        (Mount("/dev/sdb1", "/data", "xfs", False), True),
        (Mount("/dev/sdc1", "/media/usb", "vfat", False), False),
    ],
)
def test_wanted_mount_follows_node_exporter_defaults(mount: Mount, wanted: bool) -> None:
    assert wanted_mount(mount) is wanted


def test_parse_mounts_short_line() -> None:
    with pytest.raises(ParseError):
        parse_mounts("garbage line\n")


# The series the issue lists; each must agree with node_exporter scraped at the same moment.
GAUGES = (
    "node_load1",
    "node_load5",
    "node_load15",
    "node_memory_MemTotal_bytes",
    "node_memory_MemAvailable_bytes",
    "node_memory_MemFree_bytes",
    "node_memory_Buffers_bytes",
    "node_memory_Cached_bytes",
    "node_memory_SwapTotal_bytes",
    "node_memory_SwapFree_bytes",
    "node_filesystem_size_bytes",
    "node_filesystem_avail_bytes",
    "node_filesystem_free_bytes",
    "node_filesystem_files",
    "node_filesystem_files_free",
    "node_filesystem_readonly",
    "node_network_speed_bytes",
    "node_boot_time_seconds",
    "node_uname_info",
)
COUNTERS = (
    "node_cpu_seconds_total",
    "node_disk_read_bytes_total",
    "node_disk_written_bytes_total",
    "node_disk_io_time_seconds_total",
    "node_network_receive_bytes_total",
    "node_network_transmit_bytes_total",
    "node_network_receive_errs_total",
    "node_network_transmit_errs_total",
)
ALWAYS_PRESENT = (
    "node_cpu_seconds_total",
    "node_load1",
    "node_memory_MemTotal_bytes",
    "node_filesystem_size_bytes",
    "node_disk_read_bytes_total",
    "node_network_receive_bytes_total",
    "node_boot_time_seconds",
    "node_uname_info",
)


def by_name(samples: dict, name: str) -> dict:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def test_agrees_with_node_exporter(exporter, node_exporter) -> None:
    ours_url = exporter() + "/metrics"
    before = parse_exposition(requests.get(node_exporter, timeout=10).text)
    ours = parse_exposition(requests.get(ours_url, timeout=10).text)
    after = parse_exposition(requests.get(node_exporter, timeout=10).text)

    for name in ALWAYS_PRESENT:
        assert by_name(ours, name), f"{name} missing from our output"
    for name in GAUGES + COUNTERS:
        theirs_b, mine, theirs_a = by_name(before, name), by_name(ours, name), by_name(after, name)
        assert set(mine) == set(theirs_a), (
            f"{name}: label sets differ: ours={sorted(map(sorted, mine))} "
            f"theirs={sorted(map(sorted, theirs_a))}"
        )
        for labels, value in mine.items():
            lo = min(theirs_b.get(labels, theirs_a[labels]), theirs_a[labels])
            hi = max(theirs_b.get(labels, theirs_a[labels]), theirs_a[labels])
            if name in COUNTERS:
                # counters: ours was read between their two reads (CPU ticks are 10 ms)
                assert lo - 0.05 <= value <= hi + 0.05, (name, dict(labels), lo, value, hi)
            elif name.startswith("node_load"):
                assert abs(value - hi) <= max(0.05, 0.01 * hi) or lo <= value <= hi
            else:
                tolerance = 0.01 * max(abs(lo), abs(hi))
                assert lo - tolerance <= value <= hi + tolerance, (
                    name,
                    dict(labels),
                    lo,
                    value,
                    hi,
                )


def test_full_output_passes_promtool_check_metrics(exporter) -> None:
    text = requests.get(exporter() + "/metrics", timeout=10).text
    result = promtool_check_metrics(text)
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and not (line.startswith("node_memory_") and "camelCase" in line)
    ]
    assert problems == []


def test_sigterm_stops_cleanly_with_structured_logs(write_config) -> None:
    port = free_port()
    cfg = write_config("{}\n")
    cmd = sscp_ops_cmd(
        "exporter", "--config.file", str(cfg), "--web.listen-address", f"127.0.0.1:{port}"
    )
    with running(cmd, ready_url=f"http://127.0.0.1:{port}/healthz") as proc:
        requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        os.kill(proc.pid, signal.SIGTERM)
        start = time.monotonic()
        assert proc.wait(5) == 0
        assert time.monotonic() - start < 3
        err = proc.stderr.read()
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("ts=") and " level=" in line for line in lines), err
    assert "msg=listening" in lines[0] and "collectors=host" in lines[0]
    assert "msg=stopped" in lines[-1]


def test_make_run_defaults_listen_on_9810_config() -> None:
    from sscp_ops.commands import default_config

    cfg = default_config()
    assert cfg.exporter.listen_address == "127.0.0.1:9810"
    assert cfg.exporter.collectors == {"host": True}


def test_no_collector_flag_disables_host(exporter) -> None:
    base = exporter("{}\n", "--no-collector.host")
    text = requests.get(base + "/metrics", timeout=10).text
    assert "node_cpu_seconds_total" not in text
    assert "sscp_exporter_build_info" in text
