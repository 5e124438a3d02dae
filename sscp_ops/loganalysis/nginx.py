"""Nginx access-log lines, parsed with a parser compiled once from Nginx's own ``log_format``.

    parser = compile_log_format('$remote_addr - $remote_user [$time_local] "$request" ...')
    record = parser.parse(line)   # AccessRecord, or None for a line of another format

Each ``$variable`` becomes a regex group that runs up to the literal text that follows it in the
format (Nginx escapes ``"`` and ``\\`` inside variables as ``\\x22`` and ``\\x5C``, so a quoted
variable never contains its closing quote). Variables the analyses use are captured; others are
matched and skipped.
"""

from __future__ import annotations

import re
from calendar import timegm
from typing import NamedTuple

from exporters.core import ParseError

_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    )
}

#: Variables the parser captures; all others are matched and skipped.
CAPTURED = (
    "remote_addr",
    "remote_user",
    "time_local",
    "time_iso8601",
    "msec",
    "request",
    "request_method",
    "request_uri",
    "status",
    "body_bytes_sent",
    "bytes_sent",
    "request_time",
    "http_user_agent",
    "http_referer",
    "http_x_forwarded_for",
)

#: Tighter patterns where Nginx guarantees the shape of a value.
_SHAPES = {
    "status": r"\d{3}",
    "body_bytes_sent": r"\d+|-",
    "bytes_sent": r"\d+|-",
    "request_time": r"[\d.]+|-",
    "msec": r"[\d.]+",
}


class AccessRecord(NamedTuple):
    """One parsed request (a named tuple: cheap to build a million times)."""

    remote_addr: str
    remote_user: str
    time: float | None
    method: str
    target: str
    status: int
    bytes_sent: int
    request_time: float | None
    user_agent: str
    request: str


class AccessLogParser:
    """A parser for one ``log_format``; build it with :func:`compile_log_format`."""

    def __init__(self, log_format: str, regex: re.Pattern[str], names: frozenset[str]) -> None:
        self.log_format = log_format
        self.regex = regex
        self.names = names
        self._match = regex.match
        self._time_cache: tuple[str, float | None] = ("", None)
        index = {name: i - 1 for name, i in regex.groupindex.items()}
        # Position of each captured variable in m.groups(); -1 when the format lacks it.
        self._i = i = {name: index.get(name, -1) for name in CAPTURED}
        self._request, self._method, self._uri = i["request"], i["request_method"], i["request_uri"]
        self._sent = i["body_bytes_sent"] if i["body_bytes_sent"] >= 0 else i["bytes_sent"]
        self._rt, self._addr, self._user = i["request_time"], i["remote_addr"], i["remote_user"]
        self._status, self._ua, self._tl = i["status"], i["http_user_agent"], i["time_local"]

    def parse(self, line: str) -> AccessRecord | None:
        m = self._match(line)
        if m is None:
            return None
        g = m.groups()
        request = g[self._request] if self._request >= 0 else ""
        method = g[self._method] if self._method >= 0 else ""
        target = g[self._uri] if self._uri >= 0 else ""
        if request and not target:
            first = request.find(" ")
            last = request.rfind(" ")
            if first < 0:
                target = request
            else:
                method = method or request[:first]
                target = request[first + 1 : last] if last > first else request[first + 1 :]
        sent = g[self._sent] if self._sent >= 0 else "-"
        rt = g[self._rt] if self._rt >= 0 else None
        return AccessRecord(
            g[self._addr] if self._addr >= 0 else "-",
            g[self._user] if self._user >= 0 else "-",
            self._time(g),
            method,
            target,
            int(g[self._status]),
            int(sent) if sent != "-" else 0,
            float(rt) if rt and rt != "-" else None,
            g[self._ua] if self._ua >= 0 else "",
            request or f"{method} {target}",
        )

    def _time(self, g: tuple) -> float | None:
        if self._tl >= 0:
            text = g[self._tl]
            cached, value = self._time_cache
            if text != cached:
                value = parse_time_local(text)
                self._time_cache = (text, value)
            return value
        i = self._i
        if i["msec"] >= 0:
            return float(g[i["msec"]])
        iso = g[i["time_iso8601"]] if i["time_iso8601"] >= 0 else None
        if iso:
            from datetime import datetime

            try:
                return datetime.fromisoformat(iso).timestamp()
            except ValueError:
                return None
        return None


def parse_time_local(text: str) -> float | None:
    """``28/Nov/2026:21:02:46 +0800`` -> Unix time; None when malformed."""
    try:
        day, mon, rest = text.split("/", 2)
        year, hh, mm, ss_zone = rest.split(":", 3)
        ss, zone = ss_zone.split(" ")
        sign = -1 if zone[0] == "-" else 1
        offset = sign * (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60)
        return float(
            timegm((int(year), _MONTHS[mon], int(day), int(hh), int(mm), int(ss), 0, 0, 0)) - offset
        )
    except (ValueError, KeyError, IndexError):
        return None


def compile_log_format(log_format: str) -> AccessLogParser:
    """Compile an Nginx ``log_format`` string; raise ParseError when it has no ``$status``."""
    parts: list[str] = []
    names: set[str] = set()
    pos = 0
    matches = list(_VAR.finditer(log_format))
    for i, m in enumerate(matches):
        parts.append(re.escape(log_format[pos : m.start()]))
        name = m.group(1) or m.group(2)
        nxt_start = m.end()
        nxt_end = matches[i + 1].start() if i + 1 < len(matches) else len(log_format)
        follow = log_format[nxt_start:nxt_end]
        if name in _SHAPES:
            body = _SHAPES[name]
        elif follow:
            body = f"[^{re.escape(follow[0])}]*"
        else:
            body = ".*"
        if name in CAPTURED and name not in names:
            parts.append(f"(?P<{name}>{body})")
            names.add(name)
        else:
            parts.append(f"(?:{body})")
        pos = m.end()
    parts.append(re.escape(log_format[pos:]))
    if "status" not in names:
        raise ParseError(f"log_format has no $status: {log_format!r}")
    return AccessLogParser(log_format, re.compile("".join(parts) + r"\Z"), frozenset(names))
