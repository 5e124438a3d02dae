"""Write a report dict as report.json, report.html (Jinja2, Chinese) and report.pdf (WeasyPrint).

WeasyPrint turns the same HTML into the PDF in-process (CSS paged media: A4, page numbers,
running header) with the CJK fonts Debian's fonts-noto-cjk installs; no browser is needed.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from sscp_ops.accounts import KINDS
from sscp_ops.report import charts
from sscp_ops.report.penalty import pct

log = logging.getLogger("report")

KIND_TITLES = {
    "monthly": "月度运维执行报告",
    "quarterly": "季度运维报告",
    "annual": "年度运维总结报告",
}


def _pct(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else pct(value, digits)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} 秒"
    if seconds < 3600:
        return f"{seconds / 60:.0f} 分钟"
    return f"{seconds / 3600:.2f} 小时"


def _bytes(value: float | None) -> str:
    if value is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} PB"


def _when(value: str | float | None, tz: ZoneInfo) -> str:
    if value is None:
        return "—"
    moment = (
        datetime.fromtimestamp(value, tz)
        if isinstance(value, int | float)
        else datetime.fromisoformat(value).astimezone(tz)
    )
    return moment.strftime("%m-%d %H:%M")


def _verdict(passed: bool | None) -> str:
    return {True: "达标", False: "未达标", None: "无数据"}[passed]


def _count_top(counts) -> int:
    """An axis top for counts that gives whole-number ticks (the axis has four intervals)."""
    return max(4, math.ceil(max(counts, default=0) / 4) * 4)


def by_month(daily: list[dict]) -> tuple[list[str], list[float | None]]:
    """Daily availability blocks summed per month: labels ``10月`` and ratios (None = no data)."""
    months: dict[str, list[float]] = {}
    for d in daily:
        up_down = months.setdefault(d["date"][:7], [0.0, 0.0])
        up_down[0] += d["up_seconds"]
        up_down[1] += d["down_seconds"]
    labels = [f"{int(m[5:])}月" for m in months]
    ratios = [up / (up + down) if up + down else None for up, down in months.values()]
    return labels, ratios


def chart_svgs(report: dict, tz: ZoneInfo) -> dict:
    """The report's charts as SVG strings (keyed by what they show)."""
    out: dict = {"hosts": {}}
    avail = report.get("availability") or {}
    daily = avail.get("daily") or []
    if daily:
        if report["period"]["kind"] == "monthly":
            labels = [d["date"][8:] for d in daily]
            ratios = [d["ratio"] for d in daily]
            highlight = [d["holiday"] for d in daily]
        else:
            labels, ratios = by_month(daily)
            highlight = None
        known = [r for r in ratios if r is not None]
        # a whole percent at least half a point below the lowest bar, so every bar shows
        lo = math.floor((min([0.99, *known]) - 0.005) * 100) / 100
        out["availability"] = charts.bar_chart(
            labels, ratios, lo, 1.0, lambda v: pct(v, 2), highlight=highlight, target=0.999
        )
    start = datetime.fromisoformat(report["period"]["start"]).timestamp()
    end = datetime.fromisoformat(report["period"]["end"]).timestamp()
    if "outages" in avail:

        def spans(items: list[dict]) -> list[tuple[float, float]]:
            return [
                (
                    datetime.fromisoformat(o["start"]).timestamp(),
                    datetime.fromisoformat(o["end"]).timestamp(),
                )
                for o in items
            ]

        out["timeline"] = charts.timeline_chart(
            start, end, tz, spans(avail["outages"]), spans(avail["missing_intervals"])
        )
    for host, metrics in ((report.get("resources") or {}).get("hosts") or {}).items():
        usage = {
            name: metrics[key]["series"]
            for key, name in (("cpu", "CPU"), ("memory", "内存"), ("disk", "磁盘"))
            if key in metrics
        }
        net = {
            name: metrics[key]["series"]
            for key, name in (("net_in", "入流量"), ("net_out", "出流量"))
            if key in metrics
        }
        out["hosts"][host] = {
            "usage": charts.line_chart(usage, start, end, tz, lambda v: pct(v, 0), 0.0, 1.0),
            "net": charts.line_chart(net, start, end, tz, lambda v: _bytes(v) + "/s", 0.0),
        }
    security = report.get("security") or {}
    if security.get("daily"):
        days = security["daily"]
        out["security"] = charts.bar_chart(
            [d[5:] for d, _ in days],
            [c for _, c in days],
            0,
            _count_top(c for _, c in days),
            lambda v: f"{v:.0f}",
        )
    incidents = (report.get("tickets") or {}).get("incidents") or []
    if incidents and daily:
        counts = {d["date"]: 0 for d in daily}
        for row in incidents:
            day = datetime.fromisoformat(row["start"]).astimezone(tz).date().isoformat()
            counts[day] = counts.get(day, 0) + 1
        out["incidents"] = charts.bar_chart(
            [d[8:] for d in counts],
            list(counts.values()),
            0,
            _count_top(counts.values()),
            lambda v: f"{v:.0f}",
        )
    return out


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("sscp_ops.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=_pct, duration=_duration, bytes=_bytes, verdict=_verdict)
    return env


def render_html(report: dict, tz: ZoneInfo) -> str:
    env = environment()
    env.filters["when"] = lambda v: _when(v, tz)
    template = env.get_template("report.html.j2")
    return template.render(
        r=report,
        charts=chart_svgs(report, tz),
        kind_title=KIND_TITLES[report["period"]["kind"]],
        account_kinds=KINDS,
    )


def render_pdf(html: str, path: Path) -> None:
    from weasyprint import HTML  # imported late: it loads pango, not needed for JSON/HTML

    for name in ("weasyprint", "weasyprint.progress", "fontTools"):
        logging.getLogger(name).setLevel(logging.WARNING)
    HTML(string=html).write_pdf(path)


def write_all(report: dict, out: Path, tz: ZoneInfo) -> dict[str, Path]:
    """Write report.json, report.html and report.pdf into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / f"report.{k}" for k in ("json", "html", "pdf")}
    paths["json"].write_text(json.dumps(report, ensure_ascii=False, indent=1), "utf-8")
    html = render_html(report, tz)
    paths["html"].write_text(html, "utf-8")
    render_pdf(html, paths["pdf"])
    return paths
