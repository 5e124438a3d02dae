"""Host collector: CPU, load, memory, file systems, disks and network, under node_exporter's
metric names and labels, so node_exporter's community rules and dashboards work unchanged.

It follows Debian's node_exporter 1.5 defaults for what is left out: pseudo file systems and
mount points under /dev, /proc, /run, /sys, /mnt, /media; partitions, loop and ram disks; the
``lo`` network device. Besides node_exporter's default ``cpu``, ``loadavg``, ``meminfo``,
``filesystem``, ``diskstats``, ``netdev``, ``vmstat``, ``timex``, ``filefd`` and ``conntrack``
series it reports ``node_reboot_required`` (1 while ``/var/run/reboot-required`` exists, as the
apt textfile scripts do). Sample output::

    node_cpu_seconds_total{cpu="0",mode="idle"} 189.29
    node_load1 0.42
    node_memory_MemAvailable_bytes 2.3183261696e+10
    node_filesystem_avail_bytes{device="/dev/vda",fstype="ext4",mountpoint="/"} 8.4815220736e+10
    node_disk_read_bytes_total{device="vda"} 1.10088704e+09
    node_disk_read_time_seconds_total{device="vda"} 27.118
    node_network_receive_drop_total{device="eth0"} 0
    node_vmstat_oom_kill 0
    node_timex_offset_seconds -0.000153
    node_timex_sync_status 1
    node_filefd_allocated 1305
    node_nf_conntrack_entries 12
    node_reboot_required 0
    node_network_receive_bytes_total{device="eth0"} 8.6764359e+07
    node_network_speed_bytes{device="eth0"} 1.25e+08
    node_boot_time_seconds 1.795899277e+09
    node_uname_info{domainname="(none)",machine="x86_64",nodename="vm",...} 1
    node_os_info{id="debian",pretty_name="Debian GNU/Linux 12 (bookworm)",version_id="12",...} 1
    node_os_version{id="debian",id_like="",name="Debian GNU/Linux"} 12
    sscp_os_release_info{id="debian",version="12.11"} 1

The ``node_os_*`` and ``sscp_os_release_info`` series come from exporters/os_release.py.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import psutil
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    UnknownMetricFamily,
)

from exporters.core import Collector, ParseError
from exporters.os_release import os_release_metrics
from sscp_ops.config import Config

# Debian's node_exporter 1.5 defaults.
FS_TYPES_EXCLUDE = re.compile(
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs"
    r"|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs"
    r"|squashfs|sysfs|tracefs)$"
)
MOUNT_POINTS_EXCLUDE = re.compile(
    r"^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
)
DISK_DEVICES_EXCLUDE = re.compile(r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")
NET_DEVICES_EXCLUDE = re.compile(r"^lo$")

MEMINFO_FIELDS = (
    "MemTotal",
    "MemFree",
    "MemAvailable",
    "Buffers",
    "Cached",
    "SwapTotal",
    "SwapFree",
)
CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
# node_exporter's default --collector.vmstat.fields: ^(oom_kill|pgpg|pswp|pg.*fault).*
VMSTAT_FIELDS = re.compile(r"^(oom_kill|pgpg|pswp|pg.*fault)")
# Sectors in /proc/diskstats are always 512 bytes, whatever the device's sector size.
SECTOR_BYTES = 512


@dataclass(frozen=True)
class Mount:
    device: str
    mountpoint: str
    fstype: str
    readonly: bool


def parse_meminfo(text: str) -> dict[str, float]:
    """``/proc/meminfo`` -> bytes per field (``kB`` values scaled by 1024)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        parts = rest.split()
        if not parts:
            raise ParseError(f"meminfo: no value for {key!r}")
        try:
            value = float(parts[0])
        except ValueError:
            raise ParseError(f"meminfo: bad value for {key!r}: {parts[0]!r}") from None
        if len(parts) > 1 and parts[1] == "kB":
            value *= 1024
        out[key.replace("(", "_").replace(")", "")] = value
    if "MemTotal" not in out:
        raise ParseError("meminfo: no MemTotal")
    return out


def _unescape(field: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as octal.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text: str) -> list[Mount]:
    """``/proc/1/mounts`` -> mounts, in order, each (device, mountpoint, fstype) once."""
    mounts: list[Mount] = []
    seen: set[tuple[str, str, str]] = set()
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 4:
            raise ParseError(f"mounts: short line {line!r}")
        device, mountpoint, fstype = _unescape(parts[0]), _unescape(parts[1]), parts[2]
        key = (device, mountpoint, fstype)
        if key in seen:
            continue
        seen.add(key)
        mounts.append(Mount(device, mountpoint, fstype, "ro" in parts[3].split(",")))
    return mounts


@dataclass(frozen=True)
class DiskStats:
    """One line of ``/proc/diskstats`` (times in milliseconds, as the kernel counts them)."""

    reads: int
    read_sectors: int
    read_ms: int
    writes: int
    written_sectors: int
    write_ms: int
    io_ms: int
    weighted_io_ms: int


def parse_diskstats(text: str) -> dict[str, DiskStats]:
    """``/proc/diskstats`` -> counters per device name (kernel 2.6 layout and later)."""
    out: dict[str, DiskStats] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 14:
            raise ParseError(f"diskstats: short line {line!r}")
        try:
            v = [int(x) for x in parts[3:14]]
        except ValueError:
            raise ParseError(f"diskstats: bad number in {line!r}") from None
        # reads, merged, sectors, ms, writes, merged, sectors, ms, in flight, io ms, weighted
        out[parts[2]] = DiskStats(v[0], v[2], v[3], v[4], v[6], v[7], v[9], v[10])
    return out


def parse_vmstat(text: str) -> dict[str, int]:
    """``/proc/vmstat`` -> the fields node_exporter exports by default."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        if not line.startswith(("pg", "ps", "oo")):  # cheap first cut of ~190 lines
            continue
        key, _, value = line.partition(" ")
        if not VMSTAT_FIELDS.match(key):
            continue
        try:
            out[key] = int(value)
        except ValueError:
            raise ParseError(f"vmstat: bad value for {key!r}: {value!r}") from None
    if "pgfault" not in out:
        raise ParseError("vmstat: no pgfault")
    return out


def parse_file_nr(text: str) -> tuple[int, int]:
    """``/proc/sys/fs/file-nr`` (allocated, unused, maximum) -> (allocated, maximum)."""
    parts = text.split()
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ParseError(f"file-nr: expected three numbers, got {text.strip()!r}")
    return int(parts[0]), int(parts[2])


@dataclass(frozen=True)
class Timex:
    """The kernel clock's state from ``adjtimex(2)`` (read only, ``modes`` = 0)."""

    offset_seconds: float
    frequency_adjustment_ratio: float
    maxerror_seconds: float
    estimated_error_seconds: float
    status: int
    sync_status: int


# struct timex up to `status`: int modes; long offset, freq, maxerror, esterror; int status.
_TIMEX_HEAD = struct.Struct("@illllil")
TIMEX_SIZE = 256  # >= sizeof(struct timex) on every architecture (208 on x86_64)
STA_UNSYNC = 0x0040
STA_CLOCKERR = 0x1000
STA_NANO = 0x2000


def parse_timex(raw: bytes) -> Timex:
    """The bytes ``adjtimex(2)`` filled in -> :class:`Timex`, with node_exporter's units: offset
    in seconds (the kernel counts it in ns with STA_NANO, else us), ``freq`` in 2^-16 ppm, the
    errors in us. ``sync_status`` is 0 when the kernel reports the clock unsynchronised
    (STA_UNSYNC or STA_CLOCKERR: adjtimex then returns TIME_ERROR)."""
    if len(raw) < _TIMEX_HEAD.size:
        raise ParseError(f"timex: {len(raw)} bytes, expected at least {_TIMEX_HEAD.size}")
    _, offset, freq, maxerror, esterror, status, _ = _TIMEX_HEAD.unpack_from(raw)
    unit = 1e-9 if status & STA_NANO else 1e-6
    return Timex(
        offset_seconds=offset * unit,
        frequency_adjustment_ratio=1 + freq / 65536 / 1e6,
        maxerror_seconds=maxerror * 1e-6,
        estimated_error_seconds=esterror * 1e-6,
        status=status,
        sync_status=0 if status & (STA_UNSYNC | STA_CLOCKERR) else 1,
    )


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def read_timex() -> bytes:
    """Call ``adjtimex(2)`` with ``modes`` 0 (reads only; needs no privilege)."""
    libc = _libc()
    buf = ctypes.create_string_buffer(TIMEX_SIZE)
    if libc.adjtimex(buf) < 0:
        raise OSError(ctypes.get_errno(), "adjtimex failed")
    return buf.raw


def wanted_mount(mount: Mount) -> bool:
    return not (
        FS_TYPES_EXCLUDE.match(mount.fstype) or MOUNT_POINTS_EXCLUDE.match(mount.mountpoint)
    )


class HostCollector(Collector):
    name = "host"

    def __init__(
        self,
        ps: ModuleType = psutil,
        proc: Path = Path("/proc"),
        sys: Path = Path("/sys"),
        statvfs: Callable[[str], os.statvfs_result] = os.statvfs,
        uname: Callable[[], os.uname_result] = os.uname,
        timex: Callable[[], bytes] = read_timex,
        reboot_flag: Path = Path("/var/run/reboot-required"),
        etc: Path = Path("/etc"),
    ) -> None:
        self._ps = ps
        self._proc = proc
        self._sys = sys
        self._statvfs = statvfs
        self._uname = uname
        self._timex = timex
        self._reboot_flag = reboot_flag
        self._etc = etc

    def collect(self, timeout: float) -> Iterable[Metric]:
        yield from self._cpu()
        yield from self._load()
        yield from self._memory()
        yield from self._filesystems()
        yield from self._disks()
        yield from self._network()
        yield from self._vmstat()
        yield from self._time()
        yield from self._limits()
        yield from self._system()

    def _cpu(self) -> Iterable[Metric]:
        fam = CounterMetricFamily(
            "node_cpu_seconds_total",
            "Seconds the CPUs spent in each mode.",
            labels=["cpu", "mode"],
        )
        for index, times in enumerate(self._ps.cpu_times(percpu=True)):
            cpu = str(index)
            for mode in CPU_MODES:
                fam.add_metric([cpu, mode], getattr(times, mode, 0.0))
        yield fam

    def _load(self) -> Iterable[Metric]:
        for suffix, value in zip(("1", "5", "15"), self._ps.getloadavg(), strict=True):
            yield GaugeMetricFamily(f"node_load{suffix}", f"{suffix}m load average.", value=value)

    def _memory(self) -> Iterable[Metric]:
        info = parse_meminfo((self._proc / "meminfo").read_text())
        for field in MEMINFO_FIELDS:
            if field in info:
                yield GaugeMetricFamily(
                    f"node_memory_{field}_bytes",
                    f"Memory information field {field}_bytes.",
                    value=info[field],
                )

    def _filesystems(self) -> Iterable[Metric]:
        labels = ["device", "fstype", "mountpoint"]
        names = {
            "size": ("node_filesystem_size_bytes", "Filesystem size in bytes."),
            "avail": (
                "node_filesystem_avail_bytes",
                "Filesystem space available to non-root users in bytes.",
            ),
            "free": ("node_filesystem_free_bytes", "Filesystem free space in bytes."),
            "files": ("node_filesystem_files", "Filesystem total file nodes."),
            "files_free": ("node_filesystem_files_free", "Filesystem total free file nodes."),
            "readonly": ("node_filesystem_readonly", "Filesystem read-only status."),
            "error": (
                "node_filesystem_device_error",
                "Whether an error occurred while getting statistics for the given device.",
            ),
        }
        fams = {k: GaugeMetricFamily(n, h, labels=labels) for k, (n, h) in names.items()}
        for mount in parse_mounts((self._proc / "1" / "mounts").read_text()):
            if not wanted_mount(mount):
                continue
            key = [mount.device, mount.fstype, mount.mountpoint]
            try:
                st = self._statvfs(mount.mountpoint)
            except OSError:
                fams["error"].add_metric(key, 1)
                continue
            fams["error"].add_metric(key, 0)
            fams["size"].add_metric(key, st.f_blocks * st.f_frsize)
            fams["avail"].add_metric(key, st.f_bavail * st.f_frsize)
            fams["free"].add_metric(key, st.f_bfree * st.f_frsize)
            fams["files"].add_metric(key, st.f_files)
            fams["files_free"].add_metric(key, st.f_ffree)
            fams["readonly"].add_metric(key, 1 if mount.readonly else 0)
        yield from fams.values()

    def _disks(self) -> Iterable[Metric]:
        stats = parse_diskstats((self._proc / "diskstats").read_text())
        lab = ["device"]
        fams = [
            (CounterMetricFamily(n, h, labels=lab), f)
            for n, h, f in (
                (
                    "node_disk_reads_completed_total",
                    "The total number of reads completed successfully.",
                    lambda d: d.reads,
                ),
                (
                    "node_disk_read_bytes_total",
                    "The total number of bytes read successfully.",
                    lambda d: d.read_sectors * SECTOR_BYTES,
                ),
                (
                    "node_disk_read_time_seconds_total",
                    "The total number of seconds spent by all reads.",
                    lambda d: d.read_ms / 1000.0,
                ),
                (
                    "node_disk_writes_completed_total",
                    "The total number of writes completed successfully.",
                    lambda d: d.writes,
                ),
                (
                    "node_disk_written_bytes_total",
                    "The total number of bytes written successfully.",
                    lambda d: d.written_sectors * SECTOR_BYTES,
                ),
                (
                    "node_disk_write_time_seconds_total",
                    "This is the total number of seconds spent by all writes.",
                    lambda d: d.write_ms / 1000.0,
                ),
                (
                    "node_disk_io_time_seconds_total",
                    "Total seconds spent doing I/Os.",
                    lambda d: d.io_ms / 1000.0,
                ),
                (
                    "node_disk_io_time_weighted_seconds_total",
                    "The weighted # of seconds spent doing I/Os.",
                    lambda d: d.weighted_io_ms / 1000.0,
                ),
            )
        ]
        for device, d in sorted(stats.items()):
            if DISK_DEVICES_EXCLUDE.match(device):
                continue
            for fam, field in fams:
                fam.add_metric([device], field(d))
        return [fam for fam, _ in fams]

    def _network(self) -> Iterable[Metric]:
        lab = ["device"]
        # node_exporter's netdev names -> psutil's field of /proc/net/dev
        fields = (
            ("receive_bytes", "bytes_recv"),
            ("transmit_bytes", "bytes_sent"),
            ("receive_packets", "packets_recv"),
            ("transmit_packets", "packets_sent"),
            ("receive_errs", "errin"),
            ("transmit_errs", "errout"),
            ("receive_drop", "dropin"),
            ("transmit_drop", "dropout"),
        )
        fams = [
            (
                CounterMetricFamily(
                    f"node_network_{name}_total", f"Network device statistic {name}.", labels=lab
                ),
                attr,
            )
            for name, attr in fields
        ]
        for device, c in sorted(self._ps.net_io_counters(pernic=True, nowrap=False).items()):
            if NET_DEVICES_EXCLUDE.match(device):
                continue
            for fam, attr in fams:
                fam.add_metric([device], getattr(c, attr))
        speed = GaugeMetricFamily(
            "node_network_speed_bytes",
            "Network device speed in bytes per second (from /sys/class/net/<device>/speed).",
            labels=lab,
        )
        net = self._sys / "class" / "net"
        for entry in sorted(os.listdir(net)) if net.is_dir() else []:
            try:
                mbps = int((net / entry / "speed").read_text().strip())
            except (OSError, ValueError):
                continue  # unreadable for virtual devices (EINVAL), as node_exporter skips them
            speed.add_metric([entry], mbps * 125000)
        return [fam for fam, _ in fams] + [speed]

    def _vmstat(self) -> Iterable[Metric]:
        # untyped, as node_exporter exposes them (their names lack _total)
        for key, value in parse_vmstat((self._proc / "vmstat").read_text()).items():
            yield UnknownMetricFamily(
                f"node_vmstat_{key}", f"/proc/vmstat information field {key}.", value=value
            )

    def _time(self) -> Iterable[Metric]:
        t = parse_timex(self._timex())
        for name, doc, value in (
            (
                "offset_seconds",
                "Time offset in between local system and reference clock.",
                t.offset_seconds,
            ),
            (
                "frequency_adjustment_ratio",
                "Local clock frequency adjustment.",
                t.frequency_adjustment_ratio,
            ),
            ("maxerror_seconds", "Maximum error in seconds.", t.maxerror_seconds),
            ("estimated_error_seconds", "Estimated error in seconds.", t.estimated_error_seconds),
            ("status", "Value of the status array bits.", t.status),
            (
                "sync_status",
                "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
                t.sync_status,
            ),
        ):
            yield GaugeMetricFamily(f"node_timex_{name}", doc, value=value)

    def _limits(self) -> Iterable[Metric]:
        allocated, maximum = parse_file_nr((self._proc / "sys" / "fs" / "file-nr").read_text())
        yield GaugeMetricFamily(
            "node_filefd_allocated", "File descriptor statistics: allocated.", value=allocated
        )
        yield GaugeMetricFamily(
            "node_filefd_maximum", "File descriptor statistics: maximum.", value=maximum
        )
        netfilter = self._proc / "sys" / "net" / "netfilter"
        try:  # no series without the nf_conntrack module, as node_exporter
            entries = int((netfilter / "nf_conntrack_count").read_text())
            limit = int((netfilter / "nf_conntrack_max").read_text())
        except (OSError, ValueError):
            return
        yield GaugeMetricFamily(
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
            value=entries,
        )
        yield GaugeMetricFamily(
            "node_nf_conntrack_entries_limit",
            "Maximum size of connection tracking table.",
            value=limit,
        )

    def _system(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "node_reboot_required",
            "1 while /var/run/reboot-required exists (a package asked for a reboot).",
            value=1 if self._reboot_flag.exists() else 0,
        )
        yield GaugeMetricFamily(
            "node_boot_time_seconds", "Node boot time, in unixtime.", value=self._ps.boot_time()
        )
        u = self._uname()
        try:
            domain = (self._proc / "sys" / "kernel" / "domainname").read_text().strip()
        except OSError:
            domain = "(none)"
        info = GaugeMetricFamily(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
            labels=["sysname", "release", "version", "machine", "nodename", "domainname"],
        )
        info.add_metric([u.sysname, u.release, u.version, u.machine, u.nodename, domain], 1)
        yield info
        yield from os_release_metrics(self._etc)


def build(config: Config) -> list[Collector]:
    return [HostCollector()]
