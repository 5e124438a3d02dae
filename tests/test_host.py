"""Host collector: parsers on captured /proc files, and agreement with node_exporter 1.5."""

from __future__ import annotations

import os
import signal
import struct
import time
from pathlib import Path

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
from exporters.host import (
    STA_NANO,
    STA_UNSYNC,
    TIMEX_SIZE,
    HostCollector,
    Mount,
    parse_diskstats,
    parse_file_nr,
    parse_meminfo,
    parse_mounts,
    parse_timex,
    parse_vmstat,
    read_timex,
    wanted_mount,
)
from exporters.os_release import parse_os_release

PROC = Path("/proc")


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


@pytest.mark.parametrize("source", ["fixture", "proc"])
def test_parse_diskstats(source: str) -> None:
    path = FIXTURES / "host" / "diskstats" if source == "fixture" else PROC / "diskstats"
    stats = parse_diskstats(path.read_text())
    assert stats
    for d in stats.values():
        assert min(d.reads, d.read_sectors, d.read_ms, d.writes, d.io_ms, d.weighted_io_ms) >= 0
    if source == "fixture":
        # "254 0 vda 487226 69488 19670154 684831 907789 ..." (captured on the test VM)
        vda = stats["vda"]
        assert (vda.reads, vda.read_sectors, vda.read_ms, vda.writes) == (
            487226,
            19670154,
            684831,
            907789,
        )
        assert (vda.io_ms, vda.weighted_io_ms) == (108000, 1071601)
        assert stats["loop0"].reads == 0


def test_parse_diskstats_old_kernel_layout_and_garbage() -> None:
    line = "   8       0 sda 10 1 80 5 20 2 160 9 0 12 14\n"  # 14 fields: kernels before 4.18
    assert parse_diskstats(line)["sda"].weighted_io_ms == 14
    with pytest.raises(ParseError):
        parse_diskstats("8 0 sda 1 2 3\n")
    with pytest.raises(ParseError):
        parse_diskstats("8 0 sda " + " ".join(["x"] * 11) + "\n")


@pytest.mark.parametrize("source", ["fixture", "proc"])
def test_parse_vmstat(source: str) -> None:
    path = FIXTURES / "host" / "vmstat" if source == "fixture" else PROC / "vmstat"
    fields = parse_vmstat(path.read_text())
    assert {"oom_kill", "pgfault", "pgmajfault", "pgpgin", "pgpgout", "pswpin", "pswpout"} <= set(
        fields
    )
    assert fields["pgfault"] >= fields["pgmajfault"] >= 0
    assert "nr_free_pages" not in fields  # only node_exporter's default fields


def test_parse_vmstat_rejects_garbage() -> None:
    with pytest.raises(ParseError):
        parse_vmstat("nr_free_pages 12\n")
    with pytest.raises(ParseError):
        parse_vmstat("pgfault lots\n")


@pytest.mark.parametrize("source", ["fixture", "proc"])
def test_parse_file_nr(source: str) -> None:
    path = FIXTURES / "host" / "file-nr" if source == "fixture" else PROC / "sys/fs/file-nr"
    allocated, maximum = parse_file_nr(path.read_text())
    assert 0 < allocated < maximum


@pytest.mark.parametrize("text", ["", "1 2\n", "1 x 3\n"])
def test_parse_file_nr_rejects_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse_file_nr(text)


@pytest.mark.parametrize("source", ["fixture", "syscall"])
def test_parse_timex(source: str) -> None:
    raw = (FIXTURES / "host" / "timex.bin").read_bytes() if source == "fixture" else read_timex()
    t = parse_timex(raw)
    assert t.sync_status in (0, 1)
    assert t.sync_status == (0 if t.status & STA_UNSYNC else 1)
    assert 0 <= t.maxerror_seconds <= 16.0 and 0 <= t.estimated_error_seconds <= 16.0
    assert 0.99 < t.frequency_adjustment_ratio < 1.01
    if source == "fixture":  # captured in a VM without NTP: unsynchronised, errors at 16 s
        assert (t.sync_status, t.maxerror_seconds) == (0, 16.0)


def _timex(offset: int, status: int, freq: int = 0, maxerror: int = 0) -> bytes:
    head = struct.pack("@illllil", 0, offset, freq, maxerror, 250, status, 2)
    return head + bytes(TIMEX_SIZE - len(head))


def test_parse_timex_units() -> None:
    # microseconds without STA_NANO, nanoseconds with it; synchronised when STA_UNSYNC is clear
    micro = parse_timex(_timex(-1500, 0x0001, freq=65536 * 10, maxerror=4000))
    assert micro.offset_seconds == pytest.approx(-0.0015)
    assert micro.sync_status == 1 and micro.maxerror_seconds == pytest.approx(0.004)
    assert micro.frequency_adjustment_ratio == pytest.approx(1.00001)
    nano = parse_timex(_timex(2_000_000, 0x0001 | STA_NANO))
    assert nano.offset_seconds == pytest.approx(0.002)
    assert parse_timex(_timex(0, STA_UNSYNC)).sync_status == 0
    with pytest.raises(ParseError):
        parse_timex(b"\0" * 8)


def test_reboot_required_follows_the_flag_file(tmp_path: Path) -> None:
    flag = tmp_path / "reboot-required"

    def value() -> float:
        fams = HostCollector(reboot_flag=flag).collect(5)
        (fam,) = [f for f in fams if f.name == "node_reboot_required"]
        return fam.samples[0].value

    assert value() == 0
    flag.write_text("*** System restart required ***\n")
    assert value() == 1


def test_os_release_and_point_release(tmp_path: Path) -> None:
    # Captured /etc/os-release and /etc/debian_version of the Debian 12 development machine.
    for name in ("os-release", "debian_version"):
        (tmp_path / name).write_text((FIXTURES / "host" / name).read_text())
    fams = {f.name: f for f in HostCollector(etc=tmp_path).collect(5)}
    (info,) = fams["node_os_info"].samples
    assert info.labels["id"] == "debian" and info.labels["version_id"] == "12"
    assert info.labels["pretty_name"] == "Debian GNU/Linux 12 (bookworm)"
    assert info.labels["version_codename"] == "bookworm" and info.labels["variant"] == ""
    assert fams["node_os_version"].samples[0].value == 12
    (release,) = fams["sscp_os_release_info"].samples
    point = (FIXTURES / "host" / "debian_version").read_text().strip()
    assert release.labels == {"id": "debian", "version": point} and point.startswith("12.")
    # Without debian_version (not Debian): os-release's VERSION_ID.
    (tmp_path / "debian_version").unlink()
    fams = {f.name: f for f in HostCollector(etc=tmp_path).collect(5)}
    assert fams["sscp_os_release_info"].samples[0].labels["version"] == "12"


def test_parse_os_release_quoting() -> None:
    text = 'NAME="Foo \\"Linux\\""\nID=foo\n# comment\nVERSION_ID=\'1.2\'\nBAD LINE\n'
    assert parse_os_release(text) == {"NAME": 'Foo "Linux"', "ID": "foo", "VERSION_ID": "1.2"}


def test_conntrack_left_out_without_the_module(tmp_path: Path) -> None:
    # a /proc without net/netfilter (nf_conntrack not loaded): no series, as node_exporter
    for name in ("meminfo", "vmstat", "diskstats", "mounts"):
        src = FIXTURES / "host" / name
        dst = tmp_path / ("1/mounts" if name == "mounts" else name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(src.read_text())
    (tmp_path / "sys/fs").mkdir(parents=True)
    (tmp_path / "sys/fs/file-nr").write_text((FIXTURES / "host" / "file-nr").read_text())
    names = {f.name for f in HostCollector(proc=tmp_path, statvfs=os.statvfs).collect(5)}
    assert "node_filefd_allocated" in names and "node_vmstat_oom_kill" in names
    assert not any(n.startswith("node_nf_conntrack") for n in names)


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
    "node_filefd_maximum",
    "node_nf_conntrack_entries_limit",
    "node_timex_sync_status",
    "node_timex_status",
    "node_timex_maxerror_seconds",
    "node_boot_time_seconds",
    "node_uname_info",
)
COUNTERS = (
    "node_cpu_seconds_total",
    "node_disk_read_bytes_total",
    "node_disk_written_bytes_total",
    "node_disk_io_time_seconds_total",
    "node_disk_reads_completed_total",
    "node_disk_writes_completed_total",
    "node_disk_read_time_seconds_total",
    "node_disk_write_time_seconds_total",
    "node_disk_io_time_weighted_seconds_total",
    "node_network_receive_bytes_total",
    "node_network_transmit_bytes_total",
    "node_network_receive_packets_total",
    "node_network_transmit_packets_total",
    "node_network_receive_errs_total",
    "node_network_transmit_errs_total",
    "node_network_receive_drop_total",
    "node_network_transmit_drop_total",
    "node_vmstat_oom_kill",
    "node_vmstat_pgmajfault",
    "node_vmstat_pswpin",
    "node_vmstat_pswpout",
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
    "node_vmstat_pgmajfault",
    "node_timex_offset_seconds",
    "node_timex_sync_status",
    "node_filefd_allocated",
    "node_filefd_maximum",
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
