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

from sscp_ops.errors import ParseError

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
    """A parser for one ``log_format``; build it with :func:`compile_log_format`.

    ``parse`` is generated for the format (as :mod:`dataclasses` generates ``__init__``): it
    reads the captured groups by position, with no per-line test of which variables exist.
    """

    def __init__(self, log_format: str, regex: re.Pattern[str], names: frozenset[str]) -> None:
        self.log_format = log_format
        self.regex = regex
        self.names = names
        index = {name: i - 1 for name, i in regex.groupindex.items()}
        # Position of each captured variable in m.groups(); -1 when the format lacks it.
        self._i = {name: index.get(name, -1) for name in CAPTURED}
        #: ``line -> tuple | None``: the fields of :class:`AccessRecord`, as a plain tuple
        #: (what the hot loop of the access-log pipeline unpacks).
        self.parse_fields = self._generate()

    def parse(self, line: str) -> AccessRecord | None:
        fields = self.parse_fields(line)
        return None if fields is None else AccessRecord._make(fields)

    def _generate(self):
        i = self._i

        def get(name: str, default: str | None) -> str:
            return f"g[{i[name]}]" if i[name] >= 0 else repr(default)

        sent = "body_bytes_sent" if i["body_bytes_sent"] >= 0 else "bytes_sent"
        time_code = ""
        if i["time_local"] >= 0:
            # Consecutive lines mostly share their second: remember the last one.
            time_code = (
                f"tl = g[{i['time_local']}]\n"
                "    if tl == seen[0]:\n"
                "        when = seen[1]\n"
                "    else:\n"
                "        when = time_local(tl)\n"
                "        seen[0] = tl\n"
                "        seen[1] = when"
            )
        split = ""
        if "req_target" in self.regex.groupindex:
            k_m = self.regex.groupindex["req_method"] - 1
            k_t = self.regex.groupindex["req_target"] - 1
            split = (
                f"if not target and g[{k_t}] is not None:\n"
                f"        target = g[{k_t}]\n"
                f"        method = method or g[{k_m}]"
            )
        if i["time_local"] >= 0:
            when = "when"
        elif i["msec"] >= 0:
            when = f"float(g[{i['msec']}])"
        elif i["time_iso8601"] >= 0:
            when = f"time_iso(g[{i['time_iso8601']}])"
        else:
            when = "None"
        source = f"""
def parse(line):
    m = match(line)
    if m is None:
        return None
    g = m.groups()
    request = {get("request", "")}
    method = {get("request_method", "")}
    target = {get("request_uri", "")}
    {split}
    if request and not target:
        first = request.find(" ")
        last = request.rfind(" ")
        if first < 0:
            target = request
        else:
            method = method or request[:first]
            target = request[first + 1 : last] if last > first else request[first + 1 :]
    sent = {get(sent, "-")}
    rt = {get("request_time", None)}
    {time_code}
    return (
        {get("remote_addr", "-")},
        {get("remote_user", "-")},
        {when},
        method,
        target,
        int(g[{i["status"]}]),
        int(sent) if sent != "-" else 0,
        float(rt) if rt and rt != "-" else None,
        {get("http_user_agent", "")},
        request or method + " " + target,
    )
"""
        namespace = {
            "match": self.regex.match,
            "time_local": TimeLocalCache(),
            "seen": ["", None],
            "time_iso": parse_time_iso,
        }
        exec(compile(source, f"<log_format parser {self.log_format!r}>", "exec"), namespace)
        return namespace["parse"]


class TimeLocalCache:
    """``$time_local`` to Unix time, computing each minute once (logs repeat them)."""

    def __init__(self) -> None:
        self._minutes: dict[str, float | None] = {}

    def __call__(self, text: str) -> float | None:
        key = text[:17] + text[20:]
        base = self._minutes.get(key, -1.0)
        if base == -1.0:
            base = parse_time_local(text[:17] + ":00" + text[20:])
            if len(self._minutes) > 4096:
                self._minutes.clear()
            self._minutes[key] = base
        if base is None:
            return None
        try:
            return base + int(text[18:20])
        except ValueError:
            return None


def parse_time_iso(text: str) -> float | None:
    from datetime import datetime

    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
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
            stop = re.escape(follow[0])
            body = f"[^{stop}]*"
            if name == "request" and "request" not in names:
                # Method and target split by the regex engine; a garbled request line
                # (binary, no spaces) takes the second branch.
                body = (
                    f"(?P<req_method>[A-Za-z]+) (?P<req_target>[^{stop} ]*)"
                    f"(?: [^{stop} ]*)?(?=[{stop}])|[^{stop}]*"
                )
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
