"""Host collector: CPU, load, memory, file systems, disks and network, under node_exporter's
metric names and labels, so node_exporter's community rules and dashboards work unchanged.

It follows Debian's node_exporter 1.5 defaults for what is left out: pseudo file systems and
mount points under /dev, /proc, /run, /sys, /mnt, /media; partitions, loop and ram disks; the
``lo`` network device. Sample output::

    node_cpu_seconds_total{cpu="0",mode="idle"} 189.29
    node_load1 0.42
    node_memory_MemAvailable_bytes 2.3183261696e+10
    node_filesystem_avail_bytes{device="/dev/vda",fstype="ext4",mountpoint="/"} 8.4815220736e+10
    node_disk_read_bytes_total{device="vda"} 1.10088704e+09
    node_network_receive_bytes_total{device="eth0"} 8.6764359e+07
    node_network_speed_bytes{device="eth0"} 1.25e+08
    node_boot_time_seconds 1.795899277e+09
    node_uname_info{domainname="(none)",machine="x86_64",nodename="vm",...} 1
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporters.core import Collector, ParseError
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
    ) -> None:
        self._ps = ps
        self._proc = proc
        self._sys = sys
        self._statvfs = statvfs
        self._uname = uname

    def collect(self, timeout: float) -> Iterable[Metric]:
        yield from self._cpu()
        yield from self._load()
        yield from self._memory()
        yield from self._filesystems()
        yield from self._disks()
        yield from self._network()
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
        read = CounterMetricFamily(
            "node_disk_read_bytes_total",
            "The total number of bytes read successfully.",
            labels=["device"],
        )
        written = CounterMetricFamily(
            "node_disk_written_bytes_total",
            "The total number of bytes written successfully.",
            labels=["device"],
        )
        busy = CounterMetricFamily(
            "node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", labels=["device"]
        )
        for device, c in sorted(self._ps.disk_io_counters(perdisk=True, nowrap=False).items()):
            if DISK_DEVICES_EXCLUDE.match(device):
                continue
            read.add_metric([device], c.read_bytes)
            written.add_metric([device], c.write_bytes)
            busy.add_metric([device], c.busy_time / 1000.0)
        return [read, written, busy]

    def _network(self) -> Iterable[Metric]:
        lab = ["device"]
        rx = CounterMetricFamily(
            "node_network_receive_bytes_total",
            "Network device statistic receive_bytes.",
            labels=lab,
        )
        tx = CounterMetricFamily(
            "node_network_transmit_bytes_total",
            "Network device statistic transmit_bytes.",
            labels=lab,
        )
        rxe = CounterMetricFamily(
            "node_network_receive_errs_total", "Network device statistic receive_errs.", labels=lab
        )
        txe = CounterMetricFamily(
            "node_network_transmit_errs_total",
            "Network device statistic transmit_errs.",
            labels=lab,
        )
        for device, c in sorted(self._ps.net_io_counters(pernic=True, nowrap=False).items()):
            if NET_DEVICES_EXCLUDE.match(device):
                continue
            rx.add_metric([device], c.bytes_recv)
            tx.add_metric([device], c.bytes_sent)
            rxe.add_metric([device], c.errin)
            txe.add_metric([device], c.errout)
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
        return [rx, tx, rxe, txe, speed]

    def _system(self) -> Iterable[Metric]:
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


def build(config: Config) -> list[Collector]:
    return [HostCollector()]
