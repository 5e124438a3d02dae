"""Small SVG charts written directly (no plotting library): bars per day and trend lines.

SVG text stays text, so the browser or WeasyPrint draws it with the page's CJK font.
Missing values are drawn as full-height grey bars labelled "缺失", never as 0 or 100 %.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

W, H = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 14, 30
COLOURS = ("#1f6fb2", "#d9822b", "#2e8b57", "#b03a48", "#6a51a3", "#7f7f7f")
FONT = "Noto Sans CJK SC, Noto Sans CJK, WenQuanYi Micro Hei, sans-serif"

_HEAD = (
    f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
    f'font-family="{FONT}" font-size="11">'
)
#: Grey for missing bars (a flat fill: patterns with ids would clash between inline SVGs).
MISSING_FILL = "#e6e6e6"


def _y(value: float, lo: float, hi: float) -> float:
    span = hi - lo or 1.0
    return TOP + (H - TOP - BOTTOM) * (1 - (value - lo) / span)


def _axis(lo: float, hi: float, fmt: Callable[[float], str], ticks: int = 4) -> list[str]:
    out = []
    for i in range(ticks + 1):
        v = lo + (hi - lo) * i / ticks
        y = _y(v, lo, hi)
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" '
            'stroke="#ddd" stroke-width="0.6"/>'
        )
        out.append(
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(v))}</text>'
        )
    return out


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    lo: float,
    hi: float,
    fmt: Callable[[float], str],
    highlight: Sequence[bool] | None = None,
    target: float | None = None,
    title: str = "",
) -> str:
    """One bar per label; ``None`` is a grey "缺失" bar; ``highlight`` bars in orange."""
    parts = [_HEAD, *_axis(lo, hi, fmt)]
    n = max(len(values), 1)
    slot = (W - LEFT - RIGHT) / n
    base = _y(lo, lo, hi)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = LEFT + i * slot + slot * 0.12
        w = slot * 0.76
        if value is None:
            parts.append(
                f'<rect x="{x:.1f}" y="{TOP}" width="{w:.1f}" height="{base - TOP:.1f}" '
                f'fill="{MISSING_FILL}"><title>缺失</title></rect>'
            )
            if n <= 40:
                parts.append(
                    f'<text x="{x + w / 2:.1f}" y="{TOP + 12}" text-anchor="middle" '
                    'font-size="8" fill="#888">缺失</text>'
                )
        else:
            y = _y(min(max(value, lo), hi), lo, hi)
            colour = "#d9822b" if highlight and highlight[i] else COLOURS[0]
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{base - y:.1f}" '
                f'fill="{colour}"><title>{escape(label)} {escape(fmt(value))}</title>'
                "</rect>"
            )
        every = max(1, math.ceil(n / 16))
        if i % every == 0:
            parts.append(
                f'<text x="{x + w / 2:.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    if target is not None and lo <= target <= hi:
        y = _y(target, lo, hi)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" '
            'stroke="#b03a48" stroke-dasharray="4 3"/>'
        )
        parts.append(
            f'<text x="{W - RIGHT}" y="{y - 3:.1f}" text-anchor="end" fill="#b03a48">'
            f"目标 {escape(fmt(target))}</text>"
        )
    if title:
        parts.append(f'<text x="{LEFT}" y="10" font-weight="bold">{escape(title)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def downsample(
    points: Sequence[tuple[float, float]], buckets: int = 360
) -> list[tuple[float, float]]:
    """At most ``buckets`` points, keeping each bucket's maximum (so peaks stay visible)."""
    pts = [(t, v) for t, v in points if not math.isnan(v)]
    if len(pts) <= buckets:
        return pts
    size = math.ceil(len(pts) / buckets)
    return [max(pts[i : i + size], key=lambda p: p[1]) for i in range(0, len(pts), size)]


def line_chart(
    series: dict[str, Sequence[tuple[float, float]]],
    start: float,
    end: float,
    tz: ZoneInfo,
    fmt: Callable[[float], str],
    lo: float | None = None,
    hi: float | None = None,
) -> str:
    """Lines over time with a legend; gaps longer than 3 steps break the line."""
    data = {name: downsample(pts) for name, pts in series.items()}
    values = [v for pts in data.values() for _, v in pts]
    if not values:
        return _HEAD + f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">数据缺失</text></svg>'
    lo = min(values) if lo is None else lo
    hi = max(values) if hi is None else hi
    if hi <= lo:
        hi = lo + 1
    parts = [_HEAD, *_axis(lo, hi, fmt)]
    span = end - start or 1

    def x(t: float) -> float:
        return LEFT + (W - LEFT - RIGHT) * (t - start) / span

    for i in range(5):
        t = start + span * i / 4
        label = datetime.fromtimestamp(t, tz).strftime("%m-%d")
        parts.append(
            f'<text x="{x(t):.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">{label}</text>'
        )
    for n, (name, pts) in enumerate(data.items()):
        colour = COLOURS[n % len(COLOURS)]
        gap = 3 * ((pts[-1][0] - pts[0][0]) / max(len(pts) - 1, 1)) if len(pts) > 1 else 0
        path, prev = [], None
        for t, v in pts:
            cmd = "M" if prev is None or (gap and t - prev > gap) else "L"
            path.append(f"{cmd}{x(t):.1f},{_y(v, lo, hi):.1f}")
            prev = t
        parts.append(
            f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="1.3"/>'
        )
        lx = LEFT + 8 + n * 130
        parts.append(f'<rect x="{lx}" y="3" width="10" height="8" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 14}" y="11">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def timeline_chart(
    start: float,
    end: float,
    tz: ZoneInfo,
    down: Sequence[tuple[float, float]],
    missing: Sequence[tuple[float, float]] = (),
) -> str:
    """The period as one strip: outages in red, missing data in grey (at least 2 px wide)."""
    height = 70
    span = end - start or 1
    left, right = 20, W - 20

    def x(t: float) -> float:
        return left + (right - left) * (t - start) / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="{W}" '
        f'height="{height}" font-family="{FONT}" font-size="11">',
        f'<rect x="{left}" y="18" width="{right - left}" height="22" fill="#4caf50"/>',
    ]
    for lo, hi, colour, what in [(a, b, MISSING_FILL, "缺失") for a, b in missing] + [
        (a, b, "#c62828", "中断") for a, b in down
    ]:
        w = max(x(hi) - x(lo), 2.0)
        label = f"{what} {datetime.fromtimestamp(lo, tz):%m-%d %H:%M}"
        parts.append(
            f'<rect x="{x(lo):.1f}" y="18" width="{w:.1f}" height="22" fill="{colour}">'
            f"<title>{escape(label)}</title></rect>"
        )
    for i in range(5):
        t = start + span * i / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        parts.append(
            f'<text x="{x(t):.1f}" y="56" text-anchor="{anchor}">'
            f"{datetime.fromtimestamp(t, tz):%m-%d}</text>"
        )
    parts.append(f'<text x="{left}" y="12">绿色：可用　红色：中断　灰色：数据缺失</text></svg>')
    return "".join(parts)
