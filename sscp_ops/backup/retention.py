"""Which runs a location keeps: the newest run of each of the last N days, weeks and months."""

from __future__ import annotations

from collections.abc import Iterable

from sscp_ops.backup.manifest import run_time
from sscp_ops.config.backup import Retention


def runs_to_keep(run_ids: Iterable[str], policy: Retention) -> set[str]:
    """Grandfather-father-son: the newest run in each of the newest ``daily`` days, ``weekly``
    ISO weeks and ``monthly`` months that hold a run. The newest run is always kept."""
    ordered = sorted(set(run_ids), reverse=True)
    keep: set[str] = set(ordered[:1])
    for count, bucket in (
        (policy.daily, lambda t: t.date()),
        (policy.weekly, lambda t: t.isocalendar()[:2]),
        (policy.monthly, lambda t: (t.year, t.month)),
    ):
        seen: list = []
        for run_id in ordered:
            key = bucket(run_time(run_id))
            if key in seen:
                continue
            if len(seen) >= count:
                break
            seen.append(key)
            keep.add(run_id)
    return keep
