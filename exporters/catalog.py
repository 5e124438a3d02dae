"""Every collector the exporter knows, and how to build it from the config.

A builder returns the collectors for one data source: one for a local source, one per
configured target for a remote system (none when no target is configured).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from exporters import host
from exporters.core import Collector
from sscp_ops.config import Config


def _lazy(module: str, wanted: Callable[[Config], bool]) -> Callable[[Config], list[Collector]]:
    """The builder of ``exporters.<module>``, imported only when the config asks for it:
    client libraries (redis, PyMySQL, requests, RE2, zstandard...) cost RSS when unused."""

    def build(config: Config) -> list[Collector]:
        if not wanted(config):
            return []
        return importlib.import_module(f"exporters.{module}").build(config)

    return build


def _per_target(system: str) -> Callable[[Config], list[Collector]]:
    return _lazy(system, lambda config: bool(getattr(config.targets, system)))


@dataclass(frozen=True)
class CollectorSpec:
    build: Callable[[Config], list[Collector]]
    default_enabled: bool = True
    help: str = ""


CATALOG: dict[str, CollectorSpec] = {
    "host": CollectorSpec(
        host.build, help="host CPU, memory, disks, network (node_exporter names)"
    ),
    "nginx": CollectorSpec(
        _per_target("nginx"), help="Nginx stub_status of each targets.nginx entry"
    ),
    "tomcat": CollectorSpec(
        _per_target("tomcat"), help="Tomcat manager status of each targets.tomcat entry"
    ),
    "redis": CollectorSpec(_per_target("redis"), help="Redis INFO of each targets.redis entry"),
    "mysql": CollectorSpec(
        _per_target("mysql"), help="MySQL/MariaDB status of each targets.mysql entry"
    ),
    "probe": CollectorSpec(_per_target("probe"), help="SLA probes of the platform's key URLs"),
    "journeys": CollectorSpec(
        _lazy("journeys", lambda config: bool(config.journeys)),
        help="scripted user journeys of the journeys section, each run every interval "
        "seconds in its own thread; scrapes read the last results",
    ),
    "patches": CollectorSpec(
        _lazy("patches", lambda config: True),
        default_enabled=False,
        help="pending security updates, last update, reboot required (apt/dnf, cached 1 h)",
    ),
    "calendar": CollectorSpec(
        _lazy("calendar", lambda config: True),
        help="the last year the holiday calendar knows (HolidayCalendarYearUnknown)",
    ),
    "textfile": CollectorSpec(
        _lazy("textfile", lambda config: True),
        help="*.prom files of exporter.textfile_directory (sscp-ops review accounts writes there)",
    ),
    "tls": CollectorSpec(
        _lazy("tls", lambda c: bool(c.tls_checks.endpoints or c.targets.probe)),
        help="TLS of the HTTPS endpoints: chain, expiry, protocols, HTTP redirect",
    ),
    "logs": CollectorSpec(
        _lazy("logs", lambda config: config.logs is not None),
        help="log files of the logs section: attacks, logins, slow queries",
    ),
    "backup": CollectorSpec(
        _lazy("backup", lambda config: config.backup is not None),
        help="backup runs, copies, drills",
    ),
}


def enabled_names(config: Config, overrides: dict[str, bool] | None = None) -> list[str]:
    """Collector names enabled by defaults, then the config, then command-line flags."""
    flags = {**config.exporter.collectors, **(overrides or {})}
    return [name for name, spec in CATALOG.items() if flags.get(name, spec.default_enabled)]


def build_collectors(config: Config, names: list[str]) -> list[Collector]:
    collectors: list[Collector] = []
    for name in names:
        collectors.extend(CATALOG[name].build(config))
    return collectors
