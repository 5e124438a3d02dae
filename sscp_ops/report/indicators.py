"""The contract indicators (服务指标) over plain records: pure functions, one per indicator.

Each returns an :class:`Indicator`: target, measured value (ratios as fractions 0–1, times in
seconds), pass/fail (``None`` when there is no data to judge), the evidence it came from, and
the deduction with its arithmetic. Scoping rules (which tickets count) are in docs/sla.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction

from sscp_ops.report.availability import Availability
from sscp_ops.report.penalty import (
    NONE,
    Deduction,
    Rounding,
    count_deduction,
    flat_deduction,
    late_days_deduction,
    num,
    pct,
    shortfall_deduction,
)
from sscp_ops.report.records import BackupRun, Ticket

NO_DATA = "数据缺失"


@dataclass(frozen=True)
class Indicator:
    key: str
    name: str
    target: str
    measured: float | None
    measured_text: str
    passed: bool | None
    evidence: str
    deduction: Deduction = NONE
    details: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "name": self.name,
            "target": self.target,
            "measured": self.measured,
            "measured_text": self.measured_text,
            "passed": self.passed,
            "evidence": self.evidence,
            "deduction_percent": float(self.deduction.percent),
            "deduction_arithmetic": self.deduction.arithmetic,
            "details": self.details,
        }


def _hours(seconds: float) -> str:
    """Hours, or minutes / seconds when shorter (a drill of a small database takes seconds)."""
    if seconds < 60:
        return f"{seconds:.1f} 秒"
    if seconds < 3600:
        return _minutes(seconds)
    return f"{seconds / 3600:.2f} 小时"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} 分钟"


def availability(
    key: str,
    name: str,
    avail: Availability,
    target: Fraction,
    step: Fraction,
    percent_per_step: Fraction,
    rounding: Rounding,
    evidence: str,
) -> Indicator:
    """Availability against its target; shortfall deduction (see :mod:`.penalty`)."""
    ratio = avail.ratio
    if ratio is None:
        return Indicator(key, name, f"≥ {pct(target)}", None, NO_DATA, None, evidence)
    deduction = shortfall_deduction(ratio, target, step, percent_per_step, rounding)
    text = f"{pct(ratio, 4)}（中断 {_minutes(avail.down_seconds)}"
    if avail.missing_seconds:
        text += f"，数据缺失 {_minutes(avail.missing_seconds)}"
    text += "）"
    return Indicator(
        key, name, f"≥ {pct(target)}", float(ratio), text, ratio >= target, evidence, deduction
    )


def _share(
    key: str,
    name: str,
    hits: int,
    total: int,
    target: Fraction,
    penalty: Fraction | None,
    evidence: str,
    empty_text: str,
    details: list[dict] | None = None,
    target_text: str | None = None,
) -> Indicator:
    """``hits / total`` against a minimum share ``target`` (``empty_text`` when ``total`` is 0);
    failing costs the contract's flat ``penalty``. ``target_text`` overrides the "≥ target"
    shown when there is data."""
    if not total:
        return Indicator(key, name, f"≥ {pct(target)}", None, empty_text, None, evidence)
    rate = Fraction(hits, total)
    passed = rate >= target
    return Indicator(
        key,
        name,
        target_text or f"≥ {pct(target)}",
        float(rate),
        f"{pct(rate, 2)}（{hits}/{total}）",
        passed,
        evidence,
        flat_deduction(not passed, penalty),
        details if details is not None else [],
    )


def _in(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment < end


def incidents_in(tickets: Sequence[Ticket], start: datetime, end: datetime) -> list[Ticket]:
    """Incident tickets whose fault began in the period."""
    return [t for t in tickets if t.kind == "incident" and _in(t.start, start, end)]


def response_time(t: Ticket) -> timedelta | None:
    """From the start of the ticket's response clock (creation, or the last reopen) to the
    response: the acknowledgement after that start, or for one never acknowledged its
    resolution (as the webhook's ``sla.response_breached`` counts it); None: no response."""
    start = t.response_start
    ack = t.acknowledged if t.acknowledged and t.acknowledged >= start else None
    answered = ack or t.done
    return (answered - start) if answered else None


def is_late(t: Ticket, limit: timedelta) -> bool:
    """A fault responded to later than ``limit`` after its response clock started, or never.
    Incidents that are not faults (reminders, compliance notices: the webhook's ``faults``
    rule, the API's ``fault``) are never late."""
    if not t.fault:
        return False
    took = response_time(t)
    return took is None or took > limit


def response(
    incidents: Sequence[Ticket],
    limit: timedelta,
    tolerated: int,
    percent_each: Fraction | None,
    evidence: str,
    before: int = 0,
    window_text: str = "",
) -> Indicator:
    """Faults responded to late (:func:`is_late`; non-faults never count). ``before``: late
    responses earlier in the tolerance window (``window_text``, e.g. 合同年度), which used the
    tolerance first."""
    late, details = 0, []
    incidents = [t for t in incidents if t.fault]
    for t in incidents:
        if is_late(t, limit):
            late += 1
            took = response_time(t)
            details.append(
                {"ticket": t.id, "response_seconds": None if took is None else took.total_seconds()}
            )
    minutes = int(limit.total_seconds() // 60)
    deduction = count_deduction(late, tolerated, percent_each, before)
    measured = f"超时 {late} 次 / 共 {len(incidents)} 起"
    if window_text:
        measured += f"（{window_text}此前超时 {before} 次）"
    return Indicator(
        "response",
        "故障响应时间",
        f"≤ {minutes} 分钟（超时容许 {tolerated} 次/{window_text or '期'}）",
        float(late),
        measured,
        before + late <= tolerated,
        evidence,
        deduction,
        details,
    )


def mean_resolution(
    incidents: Sequence[Ticket], limit: timedelta, penalty: Fraction | None, evidence: str
) -> Indicator:
    """Mean time from fault start to resolution over the period's resolved incidents."""
    times = [(t.done - t.start).total_seconds() for t in incidents if t.done]
    target = f"≤ {num(limit.total_seconds() / 3600)} 小时"
    if not times:
        return Indicator(
            "resolution_time", "平均修复时间", target, None, "无已解决故障", None, evidence
        )
    mean = sum(times) / len(times)
    passed = mean <= limit.total_seconds()
    return Indicator(
        "resolution_time",
        "平均修复时间",
        target,
        mean,
        f"{_hours(mean)}（{len(times)} 起已解决）",
        passed,
        evidence,
        flat_deduction(not passed, penalty),
    )


def resolution_rate(
    incidents: Sequence[Ticket],
    end: datetime,
    target: Fraction,
    penalty: Fraction | None,
    evidence: str,
) -> Indicator:
    """Share of the period's incidents resolved by the period's end."""
    done = sum(1 for t in incidents if t.done and t.done < end)
    return _share(
        "resolution_rate",
        "工单解决率",
        done,
        len(incidents),
        target,
        penalty,
        evidence,
        "本期无故障工单",
    )


RECURRENCE_COUNTING_CN = {"occurrences": "按发生次数计", "recurrences": "按首次之后的复发次数计"}


def recurrence(
    tickets: Sequence[Ticket],
    window_start: datetime,
    end: datetime,
    limit: int,
    penalty: Fraction | None,
    evidence: str,
    counting: str = "occurrences",
) -> Indicator:
    """The most a fault (alertname + target, the grouping the webhook opens its problem records
    by) happened in the window, read per ``counting`` (a setting: the contract's
    已解决故障在半年内连续发生≤3次 does not say which): ``occurrences`` counts every incident of
    the fault in the window (4 occurrences fail a limit of 3); ``recurrences`` counts those
    after the first (incidents with ``recurrence_of`` set: 4 occurrences are 3 recurrences)."""
    counts: Counter[tuple[str, str]] = Counter()
    problems: dict[tuple[str, str], str] = {}
    for t in tickets:
        if t.kind != "incident" or not t.fault or not _in(t.start, window_start, end):
            continue  # reminders and compliance notices are no faults (webhook.faults)
        if counting == "recurrences" and not t.recurrence_of:
            continue
        key = (t.alertname, t.target)
        counts[key] += 1
        if t.problem_id:
            problems[key] = t.problem_id
    if counting == "occurrences":
        counts = Counter({k: v for k, v in counts.items() if v > 1})  # once is no recurrence
    worst = max(counts.values(), default=0)
    passed = worst <= limit
    details = [
        {"problem": f"{a} @ {g}", "problem_id": problems.get((a, g)), "recurrences": v}
        for (a, g), v in counts.most_common()
    ]
    rule = RECURRENCE_COUNTING_CN.get(counting, counting)
    return Indicator(
        "recurrence",
        "问题重复发生次数",
        f"同一问题半年内 ≤ {limit} 次（{rule}）",
        float(worst),
        f"最多 {worst} 次（{len(counts)} 个问题重复发生；{rule}）",
        passed,
        evidence,
        flat_deduction(not passed, penalty),
        details,
    )


def _is_vuln(t: Ticket, risks: Sequence[str]) -> bool:
    return t.kind == "vulnerability" and (t.risk or "").lower() in risks


def vuln_fix_time(
    tickets: Sequence[Ticket],
    start: datetime,
    end: datetime,
    limit: timedelta,
    percent_per_day: Fraction,
    risks: Sequence[str],
    evidence: str,
) -> Indicator:
    """High-risk vulnerabilities fixed in the period, or still open at its end, past ``limit``.

    Each is late by (fixed or period end) − found − limit; every started day late deducts.
    Lateness already charged in an earlier period (open at its end) is not charged again.
    """
    lates, details = [], []
    for t in tickets:
        if not _is_vuln(t, risks):
            continue
        fixed = t.done
        if fixed is not None and fixed < start:
            continue
        found = t.found_at
        if found >= end:
            continue
        until = fixed if fixed is not None and fixed < end else end
        deadline = found + limit
        charged_from = max(deadline, start)
        late = (until - charged_from).total_seconds()
        took = (until - found).total_seconds()
        details.append(
            {
                "ticket": t.id,
                "fix_seconds": took,
                "late_seconds": max(late, 0),
                "fixed": fixed is not None and fixed < end,
            }
        )
        if late > 0:
            lates.append(late)
    worst = max((d["fix_seconds"] for d in details), default=None)
    target = f"≤ {num(limit.total_seconds() / 3600)} 小时"
    if worst is None:
        return Indicator(
            "vuln_fix_time", "高危漏洞修复时间", target, None, "本期无高危漏洞", None, evidence
        )
    deduction = late_days_deduction(lates, percent_per_day)
    return Indicator(
        "vuln_fix_time",
        "高危漏洞修复时间",
        target,
        worst,
        f"最长 {_hours(worst)}，逾期 {len(lates)} 个",
        not lates,
        evidence,
        deduction,
        details,
    )


def vuln_fix_rate(
    tickets: Sequence[Ticket],
    start: datetime,
    end: datetime,
    target: Fraction,
    penalty: Fraction | None,
    evidence: str,
) -> Indicator:
    """Fixed / due: vulnerabilities fixed in the period, over those fixed in it plus those still
    open at its end whose due date (``due_at``, else found + 0) has passed."""
    due = fixed = 0
    for t in tickets:
        if t.kind != "vulnerability" or t.found_at >= end:
            continue
        done = t.done
        if done is not None and done < start:
            continue
        if done is not None and done < end:
            due += 1
            fixed += 1
        elif (t.due_at or t.found_at) < end:
            due += 1
    return _share(
        "vuln_fix_rate", "漏洞修复率", fixed, due, target, penalty, evidence, "本期无到期漏洞"
    )


def _runs(runs: Sequence[BackupRun], kind: str, start: datetime, end: datetime) -> list[BackupRun]:
    return [r for r in runs if r.kind == kind and start <= r.started < end]


def success_rate(
    key: str,
    name: str,
    runs: Sequence[BackupRun],
    kind: str,
    start: datetime,
    end: datetime,
    target: Fraction,
    penalty: Fraction | None,
    evidence: str,
) -> Indicator:
    """Successful / all runs of ``kind`` (backup, or drill: every drill is a restore) started in
    the period."""
    chosen = _runs(runs, kind, start, end)
    ok = sum(1 for r in chosen if r.success)
    failed = [{"job": r.job, "started": r.started.isoformat()} for r in chosen if not r.success]
    # With data, a 100% target reads "100%" rather than "≥ 100%".
    return _share(
        key,
        name,
        ok,
        len(chosen),
        target,
        penalty,
        evidence,
        "本期无记录",
        failed,
        target_text=None if target < 1 else "100%",
    )


def recovery_time(
    runs: Sequence[BackupRun],
    start: datetime,
    end: datetime,
    limit: timedelta,
    penalty: Fraction | None,
    evidence: str,
) -> Indicator:
    """Longest recovery among the period's drills; a failed drill fails the indicator."""
    drills = _runs(runs, "drill", start, end)
    target = f"≤ {num(limit.total_seconds() / 3600)} 小时"
    if not drills:
        return Indicator(
            "recovery_time", "恢复时间（演练）", target, None, "本期无演练", None, evidence
        )
    durations = [r.duration_seconds for r in drills if r.duration_seconds is not None]
    worst = max(durations, default=None)
    passed = all(r.success for r in drills) and worst is not None and worst <= limit.total_seconds()
    text = f"最长 {_hours(worst)}" if worst is not None else NO_DATA
    failed = sum(1 for r in drills if not r.success)
    if failed:
        text += f"，{failed} 次演练失败"
    details = [
        {
            "job": r.job,
            "started": r.started.isoformat(),
            "seconds": r.duration_seconds,
            "success": r.success,
        }
        for r in drills
    ]
    return Indicator(
        "recovery_time",
        "恢复时间（演练）",
        target,
        worst,
        text,
        passed,
        evidence,
        flat_deduction(not passed, penalty),
        details,
    )
