"""The report's patch and account-review sections, from the series Prometheus holds.

Patches: the patches collector (``exporters/patches.py``, ``--collector.patches``) per host:
security updates pending at the period's end and at most during it, all updates pending, the
last update installed (and whether it falls in the period: the contract wants monthly
patching) and whether a reboot is required. Account review: ``sscp-ops review accounts
--metrics-file`` through the exporter's textfile collector: the last review by the period's
end and its findings by kind. Each value is the last sample within the period (a host that
stopped reporting keeps its last state); a host with no sample in the period is left out.
"""

from __future__ import annotations

from typing import Any

from sscp_ops.report.period import Period
from sscp_ops.report.sources import PrometheusSource

PATCH_METRICS = {
    "security_pending": "sscp_os_security_updates_pending",
    "pending": "sscp_os_updates_pending",
    "last_update": "sscp_os_last_update_timestamp_seconds",
    "reboot_required": "sscp_os_reboot_required",
}


def _at(period: Period) -> float:
    """Just before the period's end: a range selector includes a sample at its right edge,
    which belongs to the next period."""
    return period.end.timestamp() - 0.001


def _last(prom: PrometheusSource, metric: str, period: Period, by: str = "instance") -> dict:
    window = f"{int(period.seconds)}s"
    query = f"max by ({by}) (last_over_time({metric}[{window}]))"
    return {
        tuple(labels.get(k, "") for k in by.split(", ")): value
        for labels, value in prom.query(query, _at(period))
    }


def patches_section(period: Period, prom: PrometheusSource) -> dict:
    found: dict[str, dict[str, Any]] = {}
    for key, metric in PATCH_METRICS.items():
        for (inst,), value in _last(prom, metric, period).items():
            found.setdefault(inst, {})[key] = value
    window = f"{int(period.seconds)}s"
    peak = {
        labels.get("instance", ""): value
        for labels, value in prom.query(
            f"max by (instance) (max_over_time({PATCH_METRICS['security_pending']}[{window}]))",
            _at(period),
        )
    }
    start, end = period.start.timestamp(), period.end.timestamp()
    hosts = []
    for inst in sorted(found):
        v = found[inst]
        last = v.get("last_update")
        hosts.append(
            {
                "instance": inst,
                "security_pending": v.get("security_pending"),
                "pending": v.get("pending"),
                "security_pending_max": peak.get(inst),
                "last_update": last,
                "updated_in_period": last is not None and start <= last < end,
                "reboot_required": bool(v.get("reboot_required")),
            }
        )
    return {"hosts": hosts}


def account_review_section(period: Period, prom: PrometheusSource) -> dict:
    runs = _last(prom, "sscp_account_review_last_run_timestamp_seconds", period)
    findings = _last(prom, "sscp_account_review_findings", period, by="instance, kind")
    start, end = period.start.timestamp(), period.end.timestamp()
    hosts = []
    for (inst,), last in sorted(runs.items()):
        kinds = {k: int(n) for (i, k), n in sorted(findings.items()) if i == inst and n > 0}
        hosts.append(
            {
                "instance": inst,
                "last_run": last,
                "reviewed_in_period": start <= last < end,
                "findings": kinds,
                "total": sum(kinds.values()),
            }
        )
    return {"hosts": hosts}
