"""Gather the sources for a period into one report dict (what report.json holds).

Every figure in the HTML/PDF comes from this dict. A source that cannot be read leaves its
section marked missing (``{"error": ...}``) and its indicators without a verdict; the report is
still produced, so the gap is visible rather than hidden.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from sscp_ops.change_checks import parse_checks
from sscp_ops.config.report import ReportConfig
from sscp_ops.holiday_calendar import HolidayCalendar
from sscp_ops.masking import mask_text
from sscp_ops.report import availability as av
from sscp_ops.report import indicators as ind
from sscp_ops.report.compliance import account_review_section, patches_section
from sscp_ops.report.coverage import coverage, data_start
from sscp_ops.report.penalty import cap, frac, money, num, pct
from sscp_ops.report.period import Period, contract_year, months_back
from sscp_ops.report.records import BackupRun, SecurityEvent, Ticket
from sscp_ops.report.sources import (
    BackupSource,
    EventSource,
    PrometheusSource,
    SourceError,
    TicketSource,
    steps_for,
)

log = logging.getLogger("report")


@dataclass(frozen=True)
class Sources:
    prometheus: PrometheusSource
    tickets: TicketSource | None = None
    backups: BackupSource | None = None
    events: EventSource | None = None


#: Resource queries per host (node_exporter names, which exporters/host.py also serves).
RESOURCE_QUERIES = {
    "cpu": '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))',
    "memory": "1 - avg by (instance) (node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)",
    "disk": 'max by (instance) (1 - node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs"}'
    ' / node_filesystem_size_bytes{fstype!~"tmpfs|ramfs"})',
    "net_in": 'sum by (instance) (rate(node_network_receive_bytes_total{device!="lo"}[5m]))',
    "net_out": 'sum by (instance) (rate(node_network_transmit_bytes_total{device!="lo"}[5m]))',
}
RESOURCE_NAMES = {
    "cpu": "CPU 使用率",
    "memory": "内存使用率",
    "disk": "磁盘使用率（最满分区）",
    "net_in": "入流量（字节/秒）",
    "net_out": "出流量（字节/秒）",
}
SERVICE_QUERY = "avg by (job) (up)"

#: Chinese names of sscp_ops.events.EVENT_TYPES.
EVENT_NAMES = {
    "sql_injection": "SQL 注入",
    "xss": "跨站脚本",
    "path_traversal": "目录遍历",
    "command_injection": "命令注入",
    "scanner": "扫描探测",
    "brute_force": "暴力破解",
    "login_after_failures": "多次失败后登录成功",
    "unusual_hour_login": "非工作时间登录",
    "new_ip_login": "新地址登录",
    "disabled_account_login": "停用账号登录",
    "privileged_outside_bastion": "特权账号未经堡垒机登录",
    "abnormal_export": "异常数据导出",
}


def _iso(ts: float | datetime | None, period: Period) -> str | None:
    if ts is None:
        return None
    moment = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, period.start.tzinfo)
    return moment.astimezone(period.start.tzinfo).isoformat()


def _rule_fracs(rule) -> tuple[Fraction, Fraction, Fraction]:
    return frac(rule.target), frac(rule.step), frac(rule.percent_per_step)


def _opt(value) -> Fraction | None:
    return None if value is None else frac(value)


def _platform(
    cfg: ReportConfig, prom: PrometheusSource, grid: av.Grid
) -> tuple[dict[str, list[int]], list[int]]:
    """Per-probe states (the breakdown) and the platform's states on ``grid``: the platform's
    come from the recording rule ``cfg.availability_metric`` (see :mod:`.availability`)."""
    series = prom.query_range(cfg.probe_metric, grid.start, grid.end, grid.step)
    points: dict[str, list[tuple[float, float]]] = {}
    for s in series:
        name = s.labels.get("target") or s.labels.get("instance") or "platform"
        points.setdefault(name, []).extend(s.points)
    per_target = {n: av.target_states(points[n], grid) for n in sorted(points)}
    # Each step reads the rule's own evaluation within the step, never one bridged by the
    # query look-back (5 min): a minute without an evaluation is missing.
    query = f"last_over_time({cfg.availability_metric}[{grid.step - 1}s])"
    recorded = prom.query_range(query, grid.start, grid.end, grid.step)
    columns = {str(i): av.target_states(s.points, grid) for i, s in enumerate(recorded)}
    return per_target, av.recorded_states(columns, grid)


def requests_under_2s_section(period: Period, cfg: ReportConfig, prom: PrometheusSource) -> dict:
    """The share of requests Nginx answered in under 2 s over the period, per target and in all
    (``increase`` over the period at its end: Prometheus extrapolates to the period's edges,
    so the counts are estimates; the share is what is judged)."""
    rule = cfg.requests_under_2s
    span = int(period.seconds)
    at = period.end.timestamp()
    under_q = f'increase({rule.metric}_bucket{{le="{rule.bucket_le}"}}[{span}s])'
    total_q = f"increase({rule.metric}_count[{span}s])"

    def by_target(expr: str) -> dict[str, float]:
        return {
            labels.get("target", ""): value
            for labels, value in prom.query(f"sum by (target) ({expr})", at)
        }

    under, total = by_target(under_q), by_target(total_q)
    targets = {
        name: {
            "requests": total[name],
            "under_2s": under.get(name, 0.0),
            "ratio": (under.get(name, 0.0) / total[name]) if total[name] > 0 else None,
        }
        for name in sorted(total)
    }
    all_total = sum(total.values())
    ratio = sum(under.values()) / all_total if all_total > 0 else None
    return {
        "metric": rule.metric,
        "bucket_le": rule.bucket_le,
        "target": rule.target,
        "requests": all_total,
        "under_2s": sum(under.values()),
        "ratio": ratio,
        "passed": None if ratio is None else ratio >= rule.target,
        "targets": targets,
        "rule": (
            f"“< 2 秒”按 Nginx request_time（毫秒精度）≤ {rule.bucket_le} 秒计，"
            "恰好 2.000 秒不计入 2 秒以内"
        ),
    }


def _host_states(hosts: list[str], prom: PrometheusSource, grid: av.Grid) -> list[int] | None:
    """The platform's host(s) per step: down when any one's ``up`` is 0; None when no host is
    configured (the host's state is unknown)."""
    if not hosts:
        return None
    names = "|".join(re.escape(h) for h in hosts)
    series = prom.query_range(f'min(up{{instance=~"{names}"}})', grid.start, grid.end, grid.step)
    columns = {str(i): av.target_states(s.points, grid) for i, s in enumerate(series)}
    return av.recorded_states(columns, grid)


def _missing_rule(md) -> str:
    if not md.platform_hosts:
        return (
            "未配置平台主机（report.missing_data.platform_hosts）："
            "数据缺失时段均不计入可用率，单独列示"
        )
    if md.when_host_down == "unavailable":
        return (
            "拨测数据缺失且平台主机同时宕机（up = 0）的时段计为不可用；"
            "其余缺失时段不计入可用率，单独列示"
        )
    return "数据缺失时段均不计入可用率，单独列示"


def _insufficient_warning(share: Fraction, max_share: float) -> str:
    return (
        f"证据不足：本期拨测数据缺失 {pct(share, 3)}，超过设定上限 {pct(frac(max_share))}"
        "（report.missing_data.max_share），可用性结论仅供参考"
    )


def calendar_warning(unknown: list[int]) -> str:
    years = "、".join(f"{y}年" for y in unknown)
    return (
        f"节假日日历未收录{years}的法定节假日安排（国务院通知发布后请升级 chinese-calendar "
        f"或在配置 calendar.years 中补充）：本期节假日可用性无法判定，全部时段按非节假日标准计算。"
    )


def availability_section(
    period: Period, cfg: ReportConfig, calendar: HolidayCalendar, prom: PrometheusSource
) -> tuple[dict, list[ind.Indicator]]:
    grid = av.grid_for(period.start, period.end, cfg.step_seconds)
    evidence = (
        f"Prometheus {cfg.availability_metric}（平台拨测全部成功为可用；query_range，"
        f"步长 {cfg.step_seconds} 秒，"
        f"{period.start:%Y-%m-%d %H:%M} 至 {period.end:%Y-%m-%d %H:%M}）"
    )
    per_target, measured = _platform(cfg, prom, grid)
    md = cfg.missing_data
    host = _host_states(md.platform_hosts, prom, grid)
    platform = av.count_missing(measured, host, md.when_host_down)
    host_down_missing = sum(
        1 for a, b in zip(measured, platform, strict=True) if a == av.MISSING and b == av.DOWN
    )
    whole = av.summarise(platform, grid)
    missing_share = Fraction(int(whole.missing_seconds), int(period.seconds))
    insufficient = missing_share > frac(md.max_share)
    unknown = calendar.unknown_years(period.start, period.end)
    holiday_intervals = calendar.holiday_intervals(period.start, period.end, skip_unknown=True)
    mask = av.interval_mask(grid, holiday_intervals)
    holiday = av.summarise(platform, grid, mask)
    # Holiday time is judged on the holiday scale only (节假日每低1%扣款1%), the normal scale
    # (每低0.1%扣款1%) on the rest, unless report.holiday_downtime is both_scales.
    separate = cfg.holiday_downtime == "holiday_scale"
    normal = av.summarise(platform, grid, [not m for m in mask]) if separate else whole
    a = cfg.availability
    h = cfg.holiday_availability
    normal_name = "系统可用性（非节假日）" if separate else "系统可用性（全时段）"
    if insufficient:
        evidence += (
            f"；证据不足：数据缺失 {pct(missing_share, 3)}，超过 {pct(frac(md.max_share))}"
            "（report.missing_data.max_share）"
        )
    normal_evidence = evidence + (
        "；法定节假日时段只按节假日标准考核" if separate and holiday_intervals else ""
    )
    indicators = [
        ind.availability(
            "availability", normal_name, normal, *_rule_fracs(a), a.rounding, normal_evidence
        ),
    ]
    if holiday_intervals:
        indicators.append(
            ind.availability(
                "holiday_availability",
                "系统可用性（法定节假日）",
                holiday,
                *_rule_fracs(h),
                h.rounding,
                evidence + "；节假日按国务院安排",
            )
        )
    else:
        indicators.append(
            ind.Indicator(
                "holiday_availability",
                "系统可用性（法定节假日）",
                f"≥ {pct(frac(h.target))}",
                None,
                "节假日安排未知" if unknown else "本期无法定节假日",
                None,
                calendar_warning(unknown) if unknown else evidence,
            )
        )

    def block(x: av.Availability) -> dict:
        return {
            "ratio": None if x.ratio is None else float(x.ratio),
            "up_seconds": x.up_seconds,
            "down_seconds": x.down_seconds,
            "missing_seconds": x.missing_seconds,
            "coverage": float(x.coverage),
        }

    section = {
        "metric": cfg.availability_metric,
        "probe_metric": cfg.probe_metric,
        "step_seconds": cfg.step_seconds,
        "targets": {n: block(av.summarise(st, grid)) for n, st in per_target.items()},
        "whole": block(whole),
        "normal": block(normal),
        "holiday": block(holiday),
        "holiday_downtime": cfg.holiday_downtime,
        "calendar_unknown_years": unknown,
        "warnings": ([calendar_warning(unknown)] if unknown else [])
        + ([_insufficient_warning(missing_share, md.max_share)] if insufficient else []),
        "missing_data": {
            "seconds": whole.missing_seconds,
            "share": float(missing_share),
            "max_share": md.max_share,
            "insufficient_evidence": insufficient,
            "when_host_down": md.when_host_down,
            "platform_hosts": list(md.platform_hosts),
            "host_down_counted_unavailable_seconds": host_down_missing * grid.step,
            "rule": _missing_rule(md),
        },
        "holidays": [
            {
                "start": _iso(lo, period),
                "end": _iso(hi, period),
                "name": calendar.holiday_name(lo.astimezone(calendar.tz).date()),
            }
            for lo, hi in holiday_intervals
        ],
        "daily": [
            {
                "date": d.isoformat(),
                **block(x),
                "holiday": calendar.knows(d.year) and calendar.is_holiday(d),
            }
            for d, x in av.daily(platform, grid, calendar.tz)
        ],
        "missing_intervals": [
            {"start": _iso(lo, period), "end": _iso(hi, period), "seconds": hi - lo}
            for lo, hi in av.runs(platform, grid, av.MISSING)
        ],
        "outages": [
            {
                "start": _iso(o.start, period),
                "end": _iso(o.end, period),
                "seconds": o.seconds,
                "targets": list(o.targets),
            }
            for o in av.outages(per_target, platform, grid)
        ],
    }
    return section, indicators


def year_to_date_section(
    period: Period, cfg: ReportConfig, prom: PrometheusSource, this_period: av.Availability
) -> tuple[dict, list[ind.Indicator]]:
    """The contract year to date against the yearly budget (年宕机≤8.76h): downtime used since
    the contract year's start up to the period's end, what is left, and this period's share.
    The annual report (a whole contract year) also judges the budget as an indicator."""
    tz = period.start.tzinfo
    cy = contract_year(period.end - timedelta(microseconds=1), cfg.contract_start, tz)  # type: ignore[arg-type]
    budget = float(cfg.annual_downtime_hours) * 3600
    earlier = av.Availability(0, 0, 0)
    if cy.start < period.start:
        grid = av.grid_for(cy.start, period.start, cfg.step_seconds)
        earlier = av.summarise(_platform(cfg, prom, grid)[1], grid)
    # This period's part inside the contract year (a quarter may begin in the previous one).
    share = this_period.down_seconds
    if period.start < cy.start:
        grid = av.grid_for(cy.start, period.end, cfg.step_seconds)
        share = av.summarise(_platform(cfg, prom, grid)[1], grid).down_seconds
    used = earlier.down_seconds + share
    left = budget - used
    hours = num(frac(cfg.annual_downtime_hours))
    text = (
        f"合同年度（{cy.start:%Y-%m-%d} 起）累计宕机 {used / 3600:.2f} 小时"
        f" / 年度上限 {hours} 小时，"
        f"{'剩余' if left >= 0 else '超出'} {abs(left) / 3600:.2f} 小时；"
        f"其中本期 {share / 3600:.2f} 小时（占年度上限 {share / budget * 100:.1f}%）"
    )
    section = {
        "contract_year": cy.label,
        "contract_year_title": cy.title,
        "start": cy.start.isoformat(),
        "end": cy.end.isoformat(),
        "contract_start_configured": cfg.contract_start is not None,
        "budget_seconds": budget,
        "used_seconds": used,
        "left_seconds": left,
        "period_seconds": share,
        "period_share": share / budget,
        "missing_seconds": earlier.missing_seconds + this_period.missing_seconds,
        "text": text,
        "note": ""
        if cfg.contract_start is not None
        else "未配置合同起始日（report.contract_start），合同年度按自然年（1月1日起）计。",
    }
    indicators = []
    if period.kind == "annual":
        indicators.append(
            ind.Indicator(
                "annual_downtime",
                "年度宕机时长",
                f"≤ {hours} 小时",
                used,
                f"{used / 3600:.2f} 小时",
                used <= budget,
                text,
            )
        )
    return section, indicators


def ticket_indicators(
    period: Period, cfg: ReportConfig, tickets: list[Ticket], evidence: str
) -> list[ind.Indicator]:
    incidents = ind.incidents_in(tickets, period.start, period.end)
    r = cfg.response
    window = months_back(period.end, cfg.recurrence.window_months)
    v = cfg.vuln_fix_time
    limit = timedelta(minutes=r.limit_minutes)
    before, window_text = 0, "月"
    if r.tolerance_window == "contract_year":
        cy = contract_year(period.start, cfg.contract_start, period.start.tzinfo)  # type: ignore[arg-type]
        earlier = ind.incidents_in(tickets, cy.start, period.start)
        before = sum(1 for t in earlier if ind.is_late(t, limit))
        window_text = "合同年度"
    return [
        ind.response(
            incidents, limit, r.tolerated, _opt(r.percent_each), evidence, before, window_text
        ),
        ind.mean_resolution(
            incidents,
            timedelta(hours=float(cfg.resolution_time.limit_hours)),
            _opt(cfg.resolution_time.penalty_percent),
            evidence,
        ),
        ind.resolution_rate(
            incidents,
            period.end,
            frac(cfg.resolution_rate.target),
            _opt(cfg.resolution_rate.penalty_percent),
            evidence,
        ),
        ind.recurrence(
            tickets,
            window,
            period.end,
            cfg.recurrence.limit,
            _opt(cfg.recurrence.penalty_percent),
            evidence,
            cfg.recurrence.counting,
        ),
        ind.vuln_fix_time(
            tickets,
            period.start,
            period.end,
            timedelta(hours=float(v.limit_hours)),
            frac(v.percent_per_day),
            [x.lower() for x in v.risks],
            evidence,
        ),
        ind.vuln_fix_rate(
            tickets,
            period.start,
            period.end,
            frac(cfg.vuln_fix_rate.target),
            _opt(cfg.vuln_fix_rate.penalty_percent),
            evidence,
        ),
    ]


def backup_indicators(
    period: Period, cfg: ReportConfig, runs: list[BackupRun], evidence: str
) -> list[ind.Indicator]:
    return [
        ind.success_rate(
            "backup_success",
            "备份成功率",
            runs,
            "backup",
            period.start,
            period.end,
            frac(cfg.backup_success.target),
            _opt(cfg.backup_success.penalty_percent),
            evidence,
        ),
        ind.success_rate(
            "restore_success",
            "恢复成功率",
            runs,
            "drill",
            period.start,
            period.end,
            frac(cfg.restore_success.target),
            _opt(cfg.restore_success.penalty_percent),
            evidence,
        ),
        ind.recovery_time(
            runs,
            period.start,
            period.end,
            timedelta(hours=float(cfg.recovery_time.limit_hours)),
            _opt(cfg.recovery_time.penalty_percent),
            evidence,
        ),
    ]


_TICKET_KEYS = (
    "response",
    "resolution_time",
    "resolution_rate",
    "recurrence",
    "vuln_fix_time",
    "vuln_fix_rate",
)
_TICKET_NAMES = (
    "故障响应时间",
    "平均修复时间",
    "工单解决率",
    "问题重复发生次数",
    "高危漏洞修复时间",
    "漏洞修复率",
)
_BACKUP_KEYS = ("backup_success", "restore_success", "recovery_time")
_BACKUP_NAMES = ("备份成功率", "恢复成功率", "恢复时间（演练）")


def _missing(keys, names, reason: str) -> list[ind.Indicator]:
    return [
        ind.Indicator(k, n, "", None, ind.NO_DATA, None, reason)
        for k, n in zip(keys, names, strict=True)
    ]


def _ticket_row(t: Ticket, period: Period) -> dict:
    return {
        "id": t.id,
        "kind": t.kind,
        "title": mask_text(t.title),
        "alertname": t.alertname,
        "severity": t.severity,
        "target": t.target,
        "status": t.status,
        "start": _iso(t.start, period),
        "acknowledged": _iso(t.acknowledged, period),
        "resolved": _iso(t.done, period),
        "problem_id": t.problem_id,
        "recurrence_of": t.recurrence_of,
        "risk": t.risk,
        "due_at": _iso(t.due_at, period),
        "response_seconds": (
            ((t.acknowledged or t.done) - t.start).total_seconds()  # type: ignore[operator]
            if t.acknowledged or t.done
            else None
        ),
        "resolution_seconds": (t.done - t.start).total_seconds() if t.done else None,
    }


def journey_checks(period: Period, changes: list[Ticket]) -> list[dict]:
    """接口兼容性测试记录: the journey results recorded on the period's changes by
    ``sscp-ops journeys run --change-id`` (lines of the change's verification text)."""
    rows = []
    for change in changes:
        for check in parse_checks(change.verification):
            rows.append(
                {
                    "change": change.id,
                    "title": mask_text(change.title),
                    "at": _iso(check.at, period),
                    "journey": check.journey,
                    "passed": check.passed,
                    "steps": f"{check.steps_passed}/{check.steps_total}",
                    "seconds": check.seconds,
                    "failed_step": check.failed_step,
                }
            )
    return rows


def tickets_section(period: Period, tickets: list[Ticket]) -> dict:
    incidents = ind.incidents_in(tickets, period.start, period.end)
    vulns = [t for t in tickets if t.kind == "vulnerability"]
    found = [t for t in vulns if period.start <= t.found_at < period.end]
    fixed = [t for t in vulns if t.done and period.start <= t.done < period.end]
    overdue = [
        t
        for t in vulns
        if (t.done is None or t.done >= period.end)
        and t.due_at is not None
        and t.due_at < period.end
        and t.found_at < period.end
    ]
    problems = sorted({t.problem_id for t in incidents if t.problem_id})
    changes = [t for t in tickets if t.kind == "change" and period.start <= t.created < period.end]
    return {
        "incidents": [_ticket_row(t, period) for t in incidents],
        "problems": [
            {"problem_id": p, "incidents": [t.id for t in incidents if t.problem_id == p]}
            for p in problems
        ],
        "changes": [_ticket_row(t, period) for t in changes],
        "journey_checks": journey_checks(period, changes),
        "vulnerabilities": {
            "found": len(found),
            "fixed": len(fixed),
            "overdue": len(overdue),
            "overdue_list": [_ticket_row(t, period) for t in overdue],
        },
        "by_severity": dict(Counter(t.severity or "unknown" for t in incidents)),
    }


def events_section(period: Period, events: list[SecurityEvent]) -> dict:
    in_period = [e for e in events if period.start <= e.time < period.end]
    kinds = Counter(e.kind for e in in_period)
    sources = Counter(e.source for e in in_period if e.source)
    trend = Counter(e.time.astimezone(period.start.tzinfo).date().isoformat() for e in in_period)
    return {
        "total": len(in_period),
        "by_kind": [
            {"kind": k, "name": EVENT_NAMES.get(k, k), "count": c} for k, c in kinds.most_common()
        ],
        "top_sources": [{"source": mask_text(s), "count": c} for s, c in sources.most_common(10)],
        "daily": sorted(trend.items()),
    }


def backups_section(period: Period, runs: list[BackupRun]) -> dict:
    chosen = [r for r in runs if period.start <= r.started < period.end]
    return {
        "runs": len([r for r in chosen if r.kind == "backup"]),
        "failed": [
            {
                "job": r.job,
                "kind": r.kind,
                "started": _iso(r.started, period),
                "detail": mask_text(r.detail),
            }
            for r in chosen
            if not r.success
        ],
        "drills": [
            {
                "job": r.job,
                "started": _iso(r.started, period),
                "seconds": r.duration_seconds,
                "success": r.success,
            }
            for r in chosen
            if r.kind == "drill"
        ],
        "restores": len([r for r in chosen if r.kind == "drill"]),
    }


def _stats(points: list[tuple[float, float]]) -> dict:
    values = [v for _, v in points if not math.isnan(v)]
    if not values:
        return {"avg": None, "peak": None, "peak_at": None}
    peak_t, peak = max(((t, v) for t, v in points if not math.isnan(v)), key=lambda p: p[1])
    return {"avg": sum(values) / len(values), "peak": peak, "peak_at": peak_t}


def _slope_per_day(points: list[tuple[float, float]]) -> float | None:
    pts = [(t, v) for t, v in points if not math.isnan(v)]
    if len(pts) < 2:
        return None
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mv = sum(v for _, v in pts) / n
    den = sum((t - mt) ** 2 for t, _ in pts)
    if den == 0:
        return None
    return sum((t - mt) * (v - mv) for t, v in pts) / den * 86400


def resources_section(period: Period, prom: PrometheusSource) -> dict:
    step = steps_for(period.seconds)
    start, end = period.start.timestamp(), period.end.timestamp()
    hosts: dict[str, dict[str, Any]] = {}
    for key, query in RESOURCE_QUERIES.items():
        for s in prom.query_range(query, start, end, step):
            host = s.labels.get("instance", "?")
            entry = {**_stats(s.points), "series": s.points}
            if key == "disk":
                entry["growth_per_day"] = _slope_per_day(s.points)
            hosts.setdefault(host, {})[key] = entry
    services = {
        s.labels.get("job", "?"): _stats(s.points)["avg"]
        for s in prom.query_range(SERVICE_QUERY, start, end, step)
    }
    return {"step_seconds": step, "hosts": dict(sorted(hosts.items())), "services": services}


#: mysqld_exporter --collect.perf_schema.eventsstatements (labels schema, digest, digest_text).
STATEMENT_METRICS = {
    "seconds": "mysql_perf_schema_events_statements_seconds_total",
    "calls": "mysql_perf_schema_events_statements_total",
    "rows_examined": "mysql_perf_schema_events_statements_rows_examined_total",
    "rows_sent": "mysql_perf_schema_events_statements_rows_sent_total",
    "no_index_used": "mysql_perf_schema_events_statements_no_index_used_total",
    "tmp_disk_tables": "mysql_perf_schema_events_statements_tmp_disk_tables_total",
    "sort_merge_passes": "mysql_perf_schema_events_statements_sort_merge_passes_total",
}
_DIGEST = "instance, schema, digest, digest_text"


def statement_advice(row: dict) -> list[str]:
    """Optimisation advice for one statement digest from its period totals (pure)."""
    out = []
    calls = row.get("calls") or 0
    if row.get("no_index_used"):
        out.append("存在未使用索引的全表扫描，建议为 WHERE / JOIN 条件列建立索引")
    sent = row.get("rows_sent") or 0
    examined = row.get("rows_examined") or 0
    if sent and examined >= 1000 and examined > 100 * sent:
        out.append(f"扫描行数是返回行数的 {examined / sent:.0f} 倍，建议收紧过滤条件或优化索引")
    if row.get("tmp_disk_tables"):
        out.append("使用了磁盘临时表，建议优化 GROUP BY / ORDER BY 或适当调大 tmp_table_size")
    if row.get("sort_merge_passes"):
        out.append("排序发生归并，建议利用索引排序或适当调大 sort_buffer_size")
    if calls and row["seconds"] / calls >= 1:
        out.append("平均耗时超过 1 秒，建议用 EXPLAIN 检查执行计划")
    return out or ["耗时主要来自调用次数，建议评估缓存或合并请求"]


def slow_queries_section(period: Period, prom: PrometheusSource, top: int = 10) -> dict:
    """The period's top statement digests by total time, with advice, and slow-query counts."""
    window = f"{int(period.seconds)}s"
    at = period.end.timestamp()
    rows: dict[tuple, dict] = {}
    top_q = f"topk({top}, sum by ({_DIGEST}) (increase({STATEMENT_METRICS['seconds']}[{window}])))"
    for labels, value in prom.query(top_q, at):
        key = tuple(labels.get(k, "") for k in ("instance", "schema", "digest"))
        rows[key] = {
            "instance": labels.get("instance", ""),
            "schema": labels.get("schema", ""),
            "digest": labels.get("digest", ""),
            "statement": mask_text(labels.get("digest_text", "")),
            "seconds": value,
        }
    for field, metric in STATEMENT_METRICS.items():
        if field == "seconds" or not rows:
            continue
        for labels, value in prom.query(f"sum by ({_DIGEST}) (increase({metric}[{window}]))", at):
            key = tuple(labels.get(k, "") for k in ("instance", "schema", "digest"))
            if key in rows:
                rows[key][field] = value
    ordered = sorted(rows.values(), key=lambda r: -r["seconds"])
    for row in ordered:
        calls = row.get("calls") or 0
        row["avg_seconds"] = row["seconds"] / calls if calls else None
        row["advice"] = statement_advice(row)
    slow = {
        labels.get("instance", ""): value
        for labels, value in prom.query(
            f"sum by (instance) (increase(mysql_global_status_slow_queries[{window}]))", at
        )
    }
    return {"statements": ordered, "slow_queries": slow}


def suggestions(report: dict, cfg: ReportConfig) -> list[str]:
    """Plain-language advice derived from the figures (thresholds crossed, trends, capacity)."""
    out: list[str] = []
    no_data: dict[str, list[str]] = {}
    for i in report["indicators"]:
        if i["passed"] is False:
            out.append(f"{i['name']}未达标（{i['measured_text']}），请分析原因并制定整改措施。")
        elif i["passed"] is None and i["measured_text"] == ind.NO_DATA:
            no_data.setdefault(i["evidence"], []).append(i["name"])
    for reason, names in no_data.items():
        out.append(f"{'、'.join(names)}缺少数据（{reason}），请补齐数据源以便考核。")
    avail = report["availability"]
    if isinstance(avail, dict) and avail.get("whole", {}).get("missing_seconds"):
        minutes = avail["whole"]["missing_seconds"] / 60
        out.append(f"拨测数据缺失 {minutes:.0f} 分钟，请检查拨测程序与 Prometheus 采集。")
    res = report.get("resources", {})
    for host, metrics in (res.get("hosts") or {}).items():
        for key, label, limit in (("cpu", "CPU", 0.8), ("memory", "内存", 0.85)):
            peak = (metrics.get(key) or {}).get("peak")
            if peak is not None and peak >= limit:
                out.append(
                    f"主机 {host} {label}峰值 {pct(peak, 1)}，超过 {pct(limit, 0)}，"
                    "建议排查高负载进程或扩容。"
                )
        disk = metrics.get("disk") or {}
        last = disk.get("series", [])[-1][1] if disk.get("series") else None
        growth = disk.get("growth_per_day")
        if last is not None and last >= 0.8:
            out.append(f"主机 {host} 磁盘使用率 {pct(last, 1)}，建议清理或扩容。")
        if last is not None and growth and growth > 0 and last < 0.9:
            days = (0.9 - last) / growth
            if days < 90:
                out.append(
                    f"主机 {host} 磁盘按当前增速（每天 {pct(growth, 2)}）约 {days:.0f} 天后"
                    "达到 90%，建议提前扩容。"
                )
    for row in (res.get("database") or {}).get("statements", [])[:3]:
        out.append(
            f"慢查询（{row['schema']}，本期累计 {row['seconds']:.0f} 秒）：{row['advice'][0]}。"
        )
    vul = (report.get("tickets") or {}).get("vulnerabilities") or {}
    if vul.get("overdue"):
        out.append(f"有 {vul['overdue']} 个漏洞逾期未修复，请优先处理。")
    failed = (report.get("backups") or {}).get("failed") or []
    if failed:
        out.append(f"本期有 {len(failed)} 次备份/恢复失败，请复核备份策略与存储。")
    if not out:
        out.append("本期各项指标均达标，系统运行平稳，建议保持现有运维策略。")
    return out


def deductions(period: Period, cfg: ReportConfig, indicators: list[ind.Indicator]) -> dict:
    """Each indicator's deduction after its cap (``report.caps.indicators``), their sum, and
    the total after the period's cap (``report.caps.total_percent`` of the period's fee)."""
    months = round(period.seconds / (30.4 * 86400)) or 1
    fee = None if cfg.monthly_fee is None else frac(cfg.monthly_fee) * months
    items, by_contract = [], []
    for i in indicators:
        if i.deduction.by_contract:
            by_contract.append(i)
        if not i.deduction.percent and not i.deduction.by_contract:
            continue
        limit = cfg.caps.indicators.get(i.key)
        c = cap(i.deduction, None if limit is None else frac(limit))
        items.append(
            {
                "key": i.key,
                "name": i.name,
                "percent": float(c.applied),
                "uncapped_percent": float(i.deduction.percent),
                "capped": c.cap is not None,
                "by_contract": i.deduction.by_contract,
                "arithmetic": c.text,
                "amount": None if fee is None else float(money(c.applied, fee)),
                "_applied": c.applied,
            }
        )
    subtotal = sum((x.pop("_applied") for x in items), Fraction(0))
    total_cap = frac(cfg.caps.total_percent)
    total = min(subtotal, total_cap)
    amount = money(total, fee)
    summary = f"合计扣减 {num(total, 3)}%"
    if subtotal > total_cap:
        summary = (
            f"各项合计 {num(subtotal, 3)}%，超过本期扣款上限 {num(total_cap)}%，"
            f"合计扣减按上限计 {num(total, 3)}%"
        )
    if amount is not None:
        summary += f"，折合 {float(amount):,.2f} 元（本期服务费 {float(fee):,.2f} 元）"
    for i in by_contract:
        summary += f"；另{i.name}{i.deduction.arithmetic}"
    return {
        "total_percent": float(total),
        "subtotal_percent": float(subtotal),
        "cap_percent": float(total_cap),
        "capped": subtotal > total_cap,
        "items": items,
        "fee": None if fee is None else float(fee),
        "amount": None if amount is None else float(amount),
        "summary": summary,
    }


def build_report(
    period: Period,
    cfg: ReportConfig,
    calendar: HolidayCalendar,
    sources: Sources,
    generated: datetime,
) -> dict:
    report: dict[str, Any] = {
        "period": {
            "kind": period.kind,
            "label": period.label,
            "title": period.title,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
        },
        "generated": generated.isoformat(),
        "project": cfg.project,
        "client": cfg.client,
        "company": cfg.company,
        "engineer": cfg.engineer,
    }
    try:
        report["data_coverage"] = coverage(period, data_start(sources.prometheus))
    except SourceError:
        report["data_coverage"] = coverage(period, None)
    if report["data_coverage"]["sufficient"] is False:
        log.warning("period before the data", extra={"kv": {"period": period.label}})
    indicators: list[ind.Indicator] = []
    try:
        report["availability"], avail = availability_section(
            period, cfg, calendar, sources.prometheus
        )
        indicators += avail
        w = report["availability"]["whole"]
        whole = av.Availability(w["up_seconds"], w["down_seconds"], w["missing_seconds"])
        report["year_to_date"], annual = year_to_date_section(
            period, cfg, sources.prometheus, whole
        )
        indicators += annual
    except SourceError as exc:
        report["availability"] = {"error": str(exc)}
        report["year_to_date"] = {"error": str(exc)}
        indicators += _missing(
            ("availability", "holiday_availability"),
            ("系统可用性（全时段）", "系统可用性（法定节假日）"),
            str(exc),
        )

    window = months_back(period.end, cfg.recurrence.window_months)
    if sources.tickets is None:
        report["tickets"] = {"error": "工单系统未配置（report.tickets.url）"}
        indicators += _missing(_TICKET_KEYS, _TICKET_NAMES, report["tickets"]["error"])
    else:
        try:
            cy = contract_year(period.start, cfg.contract_start, period.start.tzinfo)  # type: ignore[arg-type]
            tickets = sources.tickets.tickets(min(window, period.start, cy.start), period.end)
            evidence = f"工单系统 /api/v1/tickets（{len(tickets)} 张工单）"
            indicators += ticket_indicators(period, cfg, tickets, evidence)
            report["tickets"] = tickets_section(period, tickets)
        except SourceError as exc:
            report["tickets"] = {"error": str(exc)}
            indicators += _missing(_TICKET_KEYS, _TICKET_NAMES, str(exc))

    if sources.backups is None:
        report["backups"] = {"error": "备份目录未配置（report.backups.catalogue）"}
        indicators += _missing(_BACKUP_KEYS, _BACKUP_NAMES, report["backups"]["error"])
    else:
        try:
            runs = sources.backups.runs(period.start, period.end)
            indicators += backup_indicators(period, cfg, runs, f"备份目录（{len(runs)} 条记录）")
            report["backups"] = backups_section(period, runs)
        except SourceError as exc:
            report["backups"] = {"error": str(exc)}
            indicators += _missing(_BACKUP_KEYS, _BACKUP_NAMES, str(exc))

    if sources.events is None:
        report["security"] = {"error": "安全事件来源未配置（logs.events_db 或 report.events）"}
    else:
        try:
            report["security"] = events_section(
                period, sources.events.events(period.start, period.end)
            )
        except SourceError as exc:
            report["security"] = {"error": str(exc)}

    try:
        report["patches"] = patches_section(period, sources.prometheus)
        report["account_review"] = account_review_section(period, sources.prometheus)
    except SourceError as exc:
        report["patches"] = report["account_review"] = {"error": str(exc)}

    try:
        report["requests_under_2s"] = requests_under_2s_section(period, cfg, sources.prometheus)
    except SourceError as exc:
        report["requests_under_2s"] = {"error": str(exc)}

    try:
        report["resources"] = resources_section(period, sources.prometheus)
        report["resources"]["database"] = slow_queries_section(period, sources.prometheus)
    except SourceError as exc:
        report["resources"] = {"error": str(exc)}

    report["indicators"] = [i.as_dict() for i in indicators]
    report["deductions"] = deductions(period, cfg, indicators)
    report["suggestions"] = suggestions(report, cfg)
    return report
