"""Patches collector: parsers on captured output, the cache, and a real apt-get run."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from pathlib import Path

import pytest
from helpers import FIXTURES, in_ci, parse_exposition, promtool_check_metrics

from exporters.core import ParseError
from exporters.patches import (
    PatchesCollector,
    component_of,
    parse_apt_simulation,
    parse_dnf_check_update,
    parse_dnf_updateinfo,
    parse_dpkg_log,
)

FX = FIXTURES / "patches"
APT = (FX / "apt-get-s-upgrade.txt").read_text()
CST = dt.timezone(dt.timedelta(hours=8))


def test_parse_apt_simulation_captured() -> None:
    pending = parse_apt_simulation(APT)
    assert pending.total == 126
    assert pending.security == 75
    by_name = {u.package: u for u in pending.updates}
    # in both the point release and the security suite: a security update
    assert (
        by_name["libgcrypt20"].security and by_name["libgcrypt20"].candidate == "1.10.1-3+deb12u1"
    )
    assert not by_name["base-files"].security  # point release only


def test_parse_apt_simulation_nothing_pending() -> None:
    text = (
        "Reading package lists...\nBuilding dependency tree...\nReading state information...\n"
        "0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n"
    )
    assert parse_apt_simulation(text).total == 0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "E: Could not get lock /var/lib/dpkg/lock-frontend\n",
        APT.replace("126 upgraded", "127 upgraded"),
        "Inst broken line\n1 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n",
    ],
)
def test_parse_apt_simulation_rejects(text: str) -> None:
    with pytest.raises(ParseError):
        parse_apt_simulation(text)


def test_parse_dpkg_log_newest_upgrade_in_local_time() -> None:
    lines = (FX / "dpkg.log").read_text().splitlines()
    utc = dt.datetime(2026, 11, 28, 20, 55, 50, tzinfo=dt.UTC).timestamp()
    assert parse_dpkg_log(lines, dt.UTC) == utc
    assert parse_dpkg_log(lines, CST) == utc - 8 * 3600
    assert parse_dpkg_log([l for l in lines if " upgrade " not in l], dt.UTC) is None  # noqa: E741


def test_parse_dnf_outputs() -> None:
    security = parse_dnf_updateinfo((FX / "dnf-updateinfo-security.txt").read_text())
    assert security == {
        "curl-7.79.1-2.h6.hce2.x86_64",
        "gnupg2-2.2.32-1.h6.hce2.x86_64",
        "kernel-5.10.0-60.18.0.50.h425_2.hce2.x86_64",
    }
    assert parse_dnf_check_update((FX / "dnf-check-update.txt").read_text()) == 4
    with pytest.raises(ParseError):
        parse_dnf_updateinfo("Error: Failed to download metadata for repo 'base'\n")


def fake_apt(calls: list):
    def run(cmd, timeout):
        calls.append(list(cmd))
        return 0, APT

    return run


def collect(c: PatchesCollector) -> dict:
    from prometheus_client import CollectorRegistry, generate_latest

    class Adapter:
        def collect(self):
            return c.collect(5)

    reg = CollectorRegistry()
    reg.register(Adapter())
    return parse_exposition(generate_latest(reg).decode())


def test_collector_metrics_and_cache(tmp_path: Path) -> None:
    logs = tmp_path / "log"
    logs.mkdir()
    # The current log has no upgrade (a new month); the rotated, compressed one has.
    (logs / "dpkg.log").write_text("2026-12-01 08:00:00 startup archives unpack\n")
    with gzip.open(logs / "dpkg.log.2.gz", "wt") as fh:
        fh.write((FX / "dpkg.log").read_text())
    (logs / "dpkg.log.1").write_text("2026-11-30 08:00:00 install foo:amd64 <none> 1.0\n")
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "deb.debian.org_debian_dists_bookworm_InRelease").write_text("x")
    reboot = tmp_path / "reboot-required"
    now = [1_800_000_000.0]
    calls: list = []
    c = PatchesCollector(
        manager="apt",
        run=fake_apt(calls),
        log_dir=logs,
        reboot_file=reboot,
        apt_lists=lists,
        ttl=3600,
        clock=lambda: now[0],
    )
    m = collect(c)
    assert m[("sscp_os_updates_pending", frozenset())] == 126
    assert m[("sscp_os_security_updates_pending", frozenset())] == 75
    assert m[("sscp_os_reboot_required", frozenset())] == 0
    # The captured run: OpenJDK 17 (Tomcat's JVM) has security updates, the others none.
    tomcat = ("sscp_os_component_security_updates_pending", frozenset({("component", "tomcat")}))
    assert m[tomcat] == 2
    for component in ("os", "nginx", "redis", "mariadb"):
        key = frozenset({("component", component)})
        assert m[("sscp_os_component_security_updates_pending", key)] == 0
    assert m[("sscp_os_updates_check_timestamp_seconds", frozenset())] == now[0]
    last = m[("sscp_os_last_update_timestamp_seconds", frozenset())]
    assert abs(last - dt.datetime(2026, 11, 28, 20, 55, 50, tzinfo=dt.UTC).timestamp()) <= 14 * 3600
    assert ("sscp_os_package_lists_timestamp_seconds", frozenset()) in m
    assert calls == [["apt-get", "-s", "-q", "upgrade"]]
    reboot.write_text("*** System restart required ***\n")
    now[0] += 1800  # within the TTL: cached
    m = collect(c)
    assert len(calls) == 1 and m[("sscp_os_reboot_required", frozenset())] == 1
    now[0] += 1801  # past the TTL: run again
    collect(c)
    assert len(calls) == 2


def test_collector_failure_is_an_error() -> None:
    c = PatchesCollector(manager="apt", run=lambda cmd, t: (100, ""))
    with pytest.raises(ParseError, match="exited with 100"):
        list(c.collect(5))


@pytest.mark.slow
def test_real_apt_get_through_the_exporter(exporter) -> None:
    import requests

    if shutil.which("apt-get") is None:
        if in_ci():
            pytest.fail("apt-get is required in CI")
        pytest.skip("not a Debian host")
    base = exporter("exporter: {collectors: {host: false, patches: true}, deadline: 60}\n")
    text = requests.get(f"{base}/metrics", timeout=90).text
    m = parse_exposition(text)
    assert m[("sscp_exporter_collector_success", frozenset({("collector", "patches")}))] == 1
    total = m[("sscp_os_updates_pending", frozenset())]
    assert 0 <= m[("sscp_os_security_updates_pending", frozenset())] <= total
    checked = m[("sscp_os_updates_check_timestamp_seconds", frozenset())]
    lint = promtool_check_metrics(text)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # a second scrape is served from the cache
    again = parse_exposition(requests.get(f"{base}/metrics", timeout=30).text)
    assert again[("sscp_os_updates_check_timestamp_seconds", frozenset())] == checked


def test_dnf_collector_with_captured_outputs(tmp_path: Path) -> None:
    outputs = {
        "updateinfo": (0, (FX / "dnf-updateinfo-security.txt").read_text()),
        "check-update": (100, (FX / "dnf-check-update.txt").read_text()),  # 100: updates exist
    }
    calls: list = []

    def run(cmd, timeout):
        calls.append(cmd)
        return outputs[cmd[2]]

    rpm = tmp_path / "rpm"
    rpm.mkdir()
    db = rpm / "rpmdb.sqlite"
    db.write_text("x")
    import os

    os.utime(db, (1_790_000_000, 1_790_000_000))
    c = PatchesCollector(manager="dnf", run=run, rpm_db=rpm, reboot_file=tmp_path / "none")
    m = collect(c)
    assert m[("sscp_os_security_updates_pending", frozenset())] == 3
    assert m[("sscp_os_updates_pending", frozenset())] == 4
    assert m[("sscp_os_last_update_timestamp_seconds", frozenset())] == 1_790_000_000
    assert ("sscp_os_package_lists_timestamp_seconds", frozenset()) not in m
    assert [cmd[2] for cmd in calls] == ["updateinfo", "check-update"]
    # kernel-5.10.0-60.18.0.50.h425_2.hce2.x86_64 has an advisory: the os component.
    os_key = frozenset({("component", "os")})
    assert m[("sscp_os_component_security_updates_pending", os_key)] == 1


@pytest.mark.parametrize(
    ("package", "component"),
    [
        ("nginx", "nginx"),
        ("nginx-common", "nginx"),
        ("libnginx-mod-http-geoip", "nginx"),
        ("tomcat10", "tomcat"),
        ("libtomcat10-java", "tomcat"),
        ("openjdk-17-jre-headless", "tomcat"),
        ("redis-server", "redis"),
        ("redis-tools", "redis"),
        ("mariadb-server", "mariadb"),
        ("mariadb-server-core", "mariadb"),
        ("libmariadb3", "mariadb"),
        ("galera-4", "mariadb"),
        ("base-files", "os"),
        ("linux-image-6.1.0-28-amd64", "os"),
        ("kernel", "os"),
        ("openssl", None),
        ("libssl3", None),
        ("python3-redis", None),
    ],
)
def test_component_of_package(package: str, component: str | None) -> None:
    assert component_of(package) == component
