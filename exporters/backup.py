"""Backup collector: the state of every configured backup set, read from the backup catalogue.

Reads the SQLite catalogue written by ``sscp-ops backup`` (read-only, at scrape time). A set
that never ran shows zero counters and a last-success time of 0, so ``BackupMissing`` fires.
Sample output::

    backup_last_success_timestamp_seconds{set="platform"} 1.7957e+09
    backup_last_duration_seconds{set="platform"} 412.5
    backup_last_run_success{set="platform"} 1
    backup_size_bytes{set="platform"} 2.1e+08
    backup_runs_total{set="platform"} 31
    backup_failures_total{set="platform"} 0
    backup_copies{location_kind="local",set="platform"} 2
    backup_copies{location_kind="offline",set="platform"} 1
    backup_copy_verified{location="/backup/a",set="platform"} 1
    backup_copy_encrypted{location="/mnt/offsite",set="platform"} 1
    backup_321_compliant{set="platform"} 1
    restore_drill_last_timestamp_seconds{set="platform"} 1.7951e+09
    restore_drill_last_success{set="platform"} 1
    restore_drill_duration_seconds{set="platform"} 950.2
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporters.core import Collector
from sscp_ops.backup.catalogue import KINDS, SetSummary, connect_readonly, summarise
from sscp_ops.config import Config


def metrics_for(summaries: Iterable[SetSummary]) -> list[Metric]:
    """Map catalogue summaries to metric families (pure)."""
    g = GaugeMetricFamily
    last_success = g(
        "backup_last_success_timestamp_seconds",
        "When the last successful backup run of the set finished (0: never).",
        labels=["set"],
    )
    duration = g(
        "backup_last_duration_seconds", "Duration of the last finished backup run.", labels=["set"]
    )
    last_ok = g(
        "backup_last_run_success", "Whether the last finished backup run succeeded.", labels=["set"]
    )
    size = g(
        "backup_size_bytes", "Size of the last successful backup (compressed).", labels=["set"]
    )
    runs = CounterMetricFamily("backup_runs", "Finished backup runs.", labels=["set"])
    failures = CounterMetricFamily("backup_failures", "Failed backup runs.", labels=["set"])
    copies = g(
        "backup_copies",
        "Good copies of the newest backup per location kind (offline: confirmed detached).",
        labels=["set", "location_kind"],
    )
    verified = g(
        "backup_copy_verified",
        "Whether every copy at the location matched its manifest when last checked.",
        labels=["set", "location"],
    )
    encrypted = g(
        "backup_copy_encrypted",
        "Whether the newest good copy at the location is encrypted (age).",
        labels=["set", "location"],
    )
    compliant = g(
        "backup_321_compliant",
        "Whether the set has 2 local, 1 off-site and 1 confirmed offline good copy.",
        labels=["set"],
    )
    drill_ts = g(
        "restore_drill_last_timestamp_seconds",
        "When the last restore drill of the set finished (0: never).",
        labels=["set"],
    )
    drill_ok = g(
        "restore_drill_last_success", "Whether the last restore drill succeeded.", labels=["set"]
    )
    drill_duration = g(
        "restore_drill_duration_seconds",
        "Recovery time measured by the last restore drill.",
        labels=["set"],
    )
    for s in summaries:
        last_success.add_metric([s.set], s.last_success or 0.0)
        if s.last_duration is not None:
            duration.add_metric([s.set], s.last_duration)
        if s.last_run_success is not None:
            last_ok.add_metric([s.set], 1.0 if s.last_run_success else 0.0)
        if s.size is not None:
            size.add_metric([s.set], s.size)
        runs.add_metric([s.set], s.runs_total)
        failures.add_metric([s.set], s.failures_total)
        for kind in KINDS:
            copies.add_metric([s.set, kind], s.copies[kind])
        for location, ok in sorted(s.copy_verified.items()):
            verified.add_metric([s.set, location], ok)
        for location, enc in sorted(s.copy_encrypted.items()):
            encrypted.add_metric([s.set, location], enc)
        compliant.add_metric([s.set], 1.0 if s.compliant_321 else 0.0)
        drill_ts.add_metric([s.set], s.drill_last or 0.0)
        if s.drill_success is not None:
            drill_ok.add_metric([s.set], 1.0 if s.drill_success else 0.0)
        if s.drill_duration is not None:
            drill_duration.add_metric([s.set], s.drill_duration)
    return [
        last_success,
        duration,
        last_ok,
        size,
        runs,
        failures,
        copies,
        verified,
        encrypted,
        compliant,
        drill_ts,
        drill_ok,
        drill_duration,
    ]


class BackupCollector(Collector):
    name = "backup"

    def __init__(self, catalog: Path, sets: list[str]) -> None:
        self.catalog = catalog
        self.sets = sets

    def collect(self, timeout: float) -> Iterable[Metric]:
        if not self.catalog.exists():
            return metrics_for(SetSummary(name) for name in self.sets)
        db = connect_readonly(self.catalog)
        try:
            return metrics_for(summarise(db, self.sets))
        finally:
            db.close()


def build(config: Config) -> list[Collector]:
    if config.backup is None:
        return []
    return [BackupCollector(config.backup.catalog, [s.name for s in config.backup.sets])]
