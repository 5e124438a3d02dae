"""Patches collector: pending (security) updates, when updates were last applied, reboot needed.

Debian / Ubuntu (apt): pending updates from ``apt-get -s upgrade`` (a simulation over the local
package lists: it reads, never changes, and needs no network); an update is a security update
when one of its origins is a ``*-security`` suite. The last applied update is the newest
``upgrade`` line of ``/var/log/dpkg.log`` (and its rotated copies, newest first). RHEL-family
(dnf / yum): security updates from ``dnf -q updateinfo list --security``, all updates from
``dnf -q check-update``, the last change from the newest file of the rpm database.

The simulation takes seconds (10 s on a busy 2-core host), so its result is cached for
``ttl`` seconds (default 1 h; package lists are refreshed daily by apt's timer): one scrape per
hour pays for it, the others read the cache. ``sscp_os_updates_check_timestamp_seconds`` says
when it last ran. Sample output::

    sscp_os_updates_pending 126
    sscp_os_security_updates_pending 31
    sscp_os_last_update_timestamp_seconds 1.79589935e+09
    sscp_os_reboot_required 0
    sscp_os_package_lists_timestamp_seconds 1.7958987e+09
    sscp_os_updates_check_timestamp_seconds 1.7959e+09
    sscp_os_component_security_updates_pending{component="nginx"} 0
    sscp_os_component_security_updates_pending{component="tomcat"} 4

The component series count the pending security updates among the packages each platform
component is installed from (:data:`COMPONENT_PACKAGES`; Tomcat includes the JVM it runs on).
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric

from exporters.core import Collector, ParseError
from sscp_ops.config import Config

_INST = re.compile(
    r"^Inst (?P<pkg>\S+) (?:\[(?P<cur>[^\]]*)\] )?"
    r"\((?P<new>\S+) (?P<origins>.*) \[(?P<arch>[^\]]+)\]\)"
)
_SUMMARY = re.compile(r"^(\d+) upgraded, (\d+) newly installed, (\d+) to remove", re.M)
_DPKG_UPGRADE = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) upgrade \S+ ")
_DNF_ADVISORY = re.compile(r"^(\S+)\s+(\S+/Sec\.|security)\s+(\S+)\s*$")
_DNF_UPDATE = re.compile(r"^(\S+\.\S+)\s+(\S+)\s+(\S+)\s*$")


#: The platform's components and the packages (Debian and RPM names) they are installed from.
COMPONENT_PACKAGES: dict[str, re.Pattern[str]] = {
    "os": re.compile(r"^(?:base-files|linux-image-\S+|kernel(?:-core)?|\S+-release)$"),
    "nginx": re.compile(r"^(?:nginx(?:-\S+)?|libnginx-mod-\S+)$"),
    "tomcat": re.compile(
        r"^(?:tomcat\d*(?:-\S+)?|libtomcat\d*-java|openjdk-\d+-jre(?:-headless)?|"
        r"java-\S+-openjdk(?:-headless)?)$"
    ),
    "redis": re.compile(r"^redis(?:-server|-tools)?$"),
    "mariadb": re.compile(
        r"^(?:mariadb-(?:server|client|common)(?:-\S+)?|libmariadb\d*|galera-\d+|mariadb)$"
    ),
}


def component_of(package: str) -> str | None:
    """The platform component a package belongs to, or None."""
    for component, pattern in COMPONENT_PACKAGES.items():
        if pattern.match(package):
            return component
    return None


@dataclass(frozen=True)
class PendingUpdate:
    package: str
    candidate: str
    security: bool


@dataclass(frozen=True)
class Pending:
    updates: tuple[PendingUpdate, ...]

    @property
    def total(self) -> int:
        return len(self.updates)

    @property
    def security(self) -> int:
        return sum(1 for u in self.updates if u.security)

    def security_by_component(self) -> dict[str, int]:
        """Pending security updates per platform component (every component, 0 when none)."""
        out = dict.fromkeys(COMPONENT_PACKAGES, 0)
        for u in self.updates:
            component = component_of(u.package) if u.security else None
            if component is not None:
                out[component] += 1
        return out


def parse_apt_simulation(text: str) -> Pending:
    """``apt-get -s upgrade`` (LC_ALL=C) -> the packages it would install or upgrade."""
    summary = _SUMMARY.search(text)
    if summary is None:
        raise ParseError("apt-get -s: no 'N upgraded, N newly installed' summary line")
    updates = []
    for line in text.splitlines():
        if not line.startswith("Inst "):
            continue
        m = _INST.match(line)
        if m is None:
            raise ParseError(f"apt-get -s: cannot read {line[:120]!r}")
        origins = [o.strip() for o in m.group("origins").split(",")]
        security = any("-security" in o.lower() for o in origins)
        updates.append(PendingUpdate(m.group("pkg"), m.group("new"), security))
    expected = int(summary.group(1)) + int(summary.group(2))
    if len(updates) != expected:
        raise ParseError(f"apt-get -s: {len(updates)} Inst lines, summary says {expected}")
    return Pending(tuple(updates))


def parse_dpkg_log(lines: Iterable[str], tz: dt.tzinfo | None = None) -> float | None:
    """The time (Unix seconds) of the newest ``upgrade`` in a dpkg log; None if there is none.

    dpkg writes local time; ``tz`` is that zone (default: this host's)."""
    newest: str | None = None
    for line in lines:
        m = _DPKG_UPGRADE.match(line)
        if m and (newest is None or m.group(1) > newest):
            newest = m.group(1)
    if newest is None:
        return None
    local = dt.datetime.strptime(newest, "%Y-%m-%d %H:%M:%S")
    if tz is None:
        return time.mktime(local.timetuple())
    return local.replace(tzinfo=tz).timestamp()


def parse_dnf_updateinfo(text: str) -> frozenset[str]:
    """``dnf -q updateinfo list --security`` -> the packages (NEVRA) with a security advisory."""
    packages = set()
    for line in text.splitlines():
        if not line.strip() or line.startswith("Last metadata expiration check"):
            continue
        m = _DNF_ADVISORY.match(line.strip())
        if m is None:
            raise ParseError(f"dnf updateinfo: cannot read {line[:120]!r}")
        packages.add(m.group(3))
    return frozenset(packages)


def parse_dnf_check_update(text: str) -> int:
    """``dnf -q check-update`` -> the number of packages with an update (obsoletes excluded)."""
    count = 0
    for line in text.splitlines():
        if line.startswith(("Obsoleting Packages", "Last metadata expiration check")):
            if line.startswith("Obsoleting"):
                break
            continue
        if _DNF_UPDATE.match(line.strip()):
            count += 1
    return count


Runner = Callable[[Sequence[str], float], tuple[int, str]]


def run_command(cmd: Sequence[str], timeout: float) -> tuple[int, str]:
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    proc = subprocess.run(
        list(cmd), capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    return proc.returncode, proc.stdout


class PatchesCollector(Collector):
    name = "patches"

    def __init__(
        self,
        manager: str | None = None,
        run: Runner = run_command,
        log_dir: Path = Path("/var/log"),
        reboot_file: Path = Path("/var/run/reboot-required"),
        apt_lists: Path = Path("/var/lib/apt/lists"),
        rpm_db: Path = Path("/var/lib/rpm"),
        ttl: float = 3600.0,
        command_timeout: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if manager is None:
            manager = "apt" if shutil.which("apt-get") else "dnf" if shutil.which("dnf") else ""
        self.manager = manager
        self._run = run
        self._log_dir = log_dir
        self._reboot_file = reboot_file
        self._apt_lists = apt_lists
        self._rpm_db = rpm_db
        self._ttl = ttl
        self._command_timeout = command_timeout
        self._clock = clock
        self._lock = threading.Lock()
        #: checked at, total, security, security per component
        self._cached: tuple[float, int, int, dict[str, int]] | None = None

    def _pending(self) -> tuple[float, int, int, dict[str, int]]:
        with self._lock:
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < self._ttl:
                return self._cached
            if self.manager == "apt":
                code, out = self._run(["apt-get", "-s", "-q", "upgrade"], self._command_timeout)
                if code != 0:
                    raise ParseError(f"apt-get -s upgrade exited with {code}")
                pending = parse_apt_simulation(out)
                total, security = pending.total, pending.security
                by_component = pending.security_by_component()
            elif self.manager == "dnf":
                code, out = self._run(
                    ["dnf", "-q", "updateinfo", "list", "--security"], self._command_timeout
                )
                if code != 0:
                    raise ParseError(f"dnf updateinfo exited with {code}")
                advised = parse_dnf_updateinfo(out)
                security = len(advised)
                by_component = dict.fromkeys(COMPONENT_PACKAGES, 0)
                for nevra in advised:  # name-version-release.arch
                    component = component_of(nevra.rsplit("-", 2)[0])
                    if component is not None:
                        by_component[component] += 1
                code, out = self._run(["dnf", "-q", "check-update"], self._command_timeout)
                if code not in (0, 100):  # 100: updates available
                    raise ParseError(f"dnf check-update exited with {code}")
                total = max(parse_dnf_check_update(out), security)
            else:
                raise ParseError("neither apt-get nor dnf found")
            self._cached = (now, total, security, by_component)
            return self._cached

    def _last_update(self) -> float | None:
        if self.manager == "dnf":  # the newest file of the rpm database (rpmdb.sqlite, ...)
            try:
                times = [p.stat().st_mtime for p in self._rpm_db.iterdir() if p.is_file()]
            except OSError:
                return None
            return max(times, default=None)
        logs = sorted(
            self._log_dir.glob("dpkg.log*"),
            key=lambda p: int(re.sub(r"\D", "", p.name.removeprefix("dpkg.log")) or 0),
        )
        for path in logs:  # dpkg.log, dpkg.log.1, dpkg.log.2.gz, ...: newest first
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
                found = parse_dpkg_log(fh)
            if found is not None:
                return found
        return None

    def _lists_time(self) -> float | None:
        if self.manager != "apt":
            return None
        times = [p.stat().st_mtime for p in self._apt_lists.glob("*Release")]
        return max(times) if times else None

    def collect(self, timeout: float) -> Iterable[Metric]:
        checked, total, security, by_component = self._pending()

        def gauge(name: str, doc: str, value: float) -> Metric:
            return GaugeMetricFamily(name, doc, value=value)

        yield gauge("sscp_os_updates_pending", "Packages with a pending update.", total)
        yield gauge(
            "sscp_os_security_updates_pending",
            "Packages with a pending update from a security suite or advisory.",
            security,
        )
        last = self._last_update()
        yield gauge(
            "sscp_os_last_update_timestamp_seconds",
            "When a package update was last applied (0: none in the kept package logs).",
            last or 0.0,
        )
        yield gauge(
            "sscp_os_reboot_required",
            "Whether the system asks for a reboot to finish updates (1) or not (0).",
            1 if self._reboot_file.exists() else 0,
        )
        lists = self._lists_time()
        if lists is not None:
            yield gauge(
                "sscp_os_package_lists_timestamp_seconds",
                "When the apt package lists were last refreshed.",
                lists,
            )
        yield gauge(
            "sscp_os_updates_check_timestamp_seconds",
            "When pending updates were last computed (the result is cached).",
            checked,
        )
        components = GaugeMetricFamily(
            "sscp_os_component_security_updates_pending",
            "Pending security updates among the packages of a platform component.",
            labels=["component"],
        )
        for component, n in by_component.items():
            components.add_metric([component], n)
        yield components


def build(config: Config) -> list[Collector]:
    return [PatchesCollector()]
