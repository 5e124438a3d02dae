"""How far back Prometheus' data reaches, and whether it covers a report's period.

The earliest sample is ``prometheus_tsdb_lowest_timestamp_seconds`` (the lowest timestamp of
the TSDB's blocks and head), present when Prometheus scrapes itself, as the shipped config does
(job ``prometheus``). A period that starts before it is flagged 证据不足 in the report: its
earlier data was deleted by retention or never collected, and the figures cover only what is
left. Without the series the coverage is unknown and nothing is flagged.
"""

from __future__ import annotations

from datetime import datetime

from sscp_ops.report.period import Period
from sscp_ops.report.sources import PrometheusSource


def data_start(prom: PrometheusSource, at: float | None = None) -> float | None:
    """The earliest sample Prometheus holds (unix seconds), or None when it does not say."""
    at = datetime.now().timestamp() if at is None else at
    found = prom.query("min(prometheus_tsdb_lowest_timestamp_seconds)", at)
    return found[0][1] if found else None


def coverage(period: Period, start: float | None) -> dict:
    if start is None:
        return {"data_start": None, "sufficient": None}
    if start <= period.start.timestamp():
        return {"data_start": start, "sufficient": True}
    tz = period.start.tzinfo
    first = datetime.fromtimestamp(start, tz).strftime("%Y-%m-%d %H:%M")
    return {
        "data_start": start,
        "sufficient": False,
        "warning": f"证据不足：Prometheus 现存最早数据为 {first}，"
        f"晚于本期开始（{period.start:%Y-%m-%d %H:%M}）；此前的监控数据已删除或未采集，"
        "本期可用性等指标仅按现存数据计算。",
    }
