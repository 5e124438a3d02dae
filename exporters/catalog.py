"""Every collector the exporter knows, and how to build it from the config.

A builder returns the collectors for one data source: one for a local source, one per
configured target for a remote system (none when no target is configured).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import exporters.backup
from exporters import host, patches, probe, tls
from exporters import logs as logs_collector
from exporters.core import Collector
from sscp_ops.config import Config


@dataclass(frozen=True)
class CollectorSpec:
    build: Callable[[Config], list[Collector]]
    default_enabled: bool = True
    help: str = ""


CATALOG: dict[str, CollectorSpec] = {
    "host": CollectorSpec(
        host.build, help="host CPU, memory, disks, network (node_exporter names)"
    ),
    "probe": CollectorSpec(probe.build, help="SLA probes of the platform's key URLs"),
    "patches": CollectorSpec(
        patches.build,
        default_enabled=False,
        help="pending security updates, last update, reboot required (apt/dnf, cached 1 h)",
    ),
    "tls": CollectorSpec(
        tls.build, help="TLS of the HTTPS endpoints: chain, expiry, protocols, HTTP redirect"
    ),
    "logs": CollectorSpec(
        logs_collector.build, help="log files of the logs section: attacks, logins, slow queries"
    ),
    "backup": CollectorSpec(exporters.backup.build, help="backup runs, copies, drills"),
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
