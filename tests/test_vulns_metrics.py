"""The vulnerability metrics the ticket service exposes (docs/metrics-vulns.md)."""

from __future__ import annotations

import datetime as dt

from helpers import parse_exposition, promtool_check_metrics
from prometheus_client import CollectorRegistry, generate_latest

from sscp_ops.vulns import VulnRecord, due_at, vulnerability_metric_families

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def rec(risk: str, status: str, hours_ago: float) -> VulnRecord:
    found = NOW - dt.timedelta(hours=hours_ago)
    return VulnRecord(risk, status, found, due_at(risk, found))


def exposition(records: list[VulnRecord]) -> str:
    class Adapter:
        def collect(self):
            return vulnerability_metric_families(records, NOW)

    reg = CollectorRegistry()
    reg.register(Adapter())
    return generate_latest(reg).decode()


def test_metrics_from_tickets() -> None:
    records = [
        rec("high", "open", 50),  # overdue
        rec("high", "acknowledged", 40),  # due soon
        rec("high", "closed", 60),  # fixed
        rec("medium", "open", 24),  # not yet due: not in the fix ratio
        rec("medium", "resolved", 200),  # fixed
        rec("low", "closed", 24 * 120),  # fixed, but found before the 90-day window
    ]
    text = exposition(records)
    m = parse_exposition(text)

    def v(name: str, **labels: str) -> float:
        return m[(name, frozenset(labels.items()))]

    assert [v("sscp_vulnerabilities_open", risk=r) for r in ("high", "medium", "low")] == [2, 1, 0]
    assert [v("sscp_vulnerabilities_overdue", risk=r) for r in ("high", "medium", "low")] == [
        1,
        0,
        0,
    ]
    oldest = v("sscp_vulnerabilities_oldest_open_timestamp_seconds", risk="high")
    assert oldest == (NOW - dt.timedelta(hours=50)).timestamp()
    assert (
        "sscp_vulnerabilities_oldest_open_timestamp_seconds",
        frozenset({("risk", "low")}),
    ) not in m
    # counted: high open overdue, high closed, medium resolved -> 2 of 3 fixed
    assert v("sscp_vulnerability_fix_ratio") == 2 / 3
    lint = promtool_check_metrics(text)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_no_fix_ratio_without_due_findings() -> None:
    m = parse_exposition(exposition([rec("high", "open", 1)]))
    assert not any(k[0] == "sscp_vulnerability_fix_ratio" for k in m)
    assert m[("sscp_vulnerabilities_open", frozenset({("risk", "high")}))] == 1
