"""The access-log pipeline: parse each line, count responses, time and bytes, classify attacks,
watch export endpoints. State is plain counters; the exporter's collector turns it into metrics.
"""

from __future__ import annotations

import bisect
import re
from collections import deque
from dataclasses import dataclass, field

from sscp_ops.config.logs import ExportRules
from sscp_ops.events import Event
from sscp_ops.loganalysis.attacks import Detection, classify_target, classify_user_agent
from sscp_ops.loganalysis.nginx import AccessLogParser, AccessRecord
from sscp_ops.tailer import Chunk

#: Request-duration histogram buckets (seconds). A bucket counts ``request_time <= le``, so
#: ``le="2.0"`` holds requests of exactly 2.000 s, which the contract's "< 2 秒" does not. Nginx
#: logs ``$request_time`` in milliseconds, so "under 2 s" is exactly "at most 1.999 s": the
#: ``le="1.999"`` bucket is the contract's indicator (docs/sla.md); 2.0 stays for quantiles.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 1.999, 2.0, 5.0, 10.0)
#: The bucket that holds the requests answered in under 2 s.
UNDER_2S_LE = 1.999
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
_MISSING = object()


@dataclass
class ExportWatch:
    """Requests to export endpoints per user (or IP when anonymous) within a sliding window."""

    rules: ExportRules
    pattern: re.Pattern[str] | None = None
    _seen: dict[str, deque] = field(default_factory=dict)
    _alerted_until: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rules.paths:
            self.pattern = re.compile("|".join(f"(?:{p})" for p in self.rules.paths), re.I)

    def is_export(self, target: str) -> bool:
        return self.pattern is not None and self.pattern.search(target) is not None

    def observe(self, rec: AccessRecord, source: str) -> Event | None:
        if rec.time is None or not 200 <= rec.status < 300:
            return None
        who = rec.remote_user if rec.remote_user not in ("-", "") else rec.remote_addr
        window = self._seen.setdefault(who, deque())
        window.append((rec.time, rec.bytes_sent))
        horizon = rec.time - self.rules.window
        while window and window[0][0] < horizon:
            window.popleft()
        total = sum(b for _, b in window)
        if len(window) <= self.rules.max_requests and total <= self.rules.max_bytes:
            return None
        if self._alerted_until.get(who, 0.0) > rec.time:
            return None
        self._alerted_until[who] = rec.time + self.rules.window
        if len(self._seen) > 50_000:  # bound memory on an address sweep
            self._seen = {k: v for k, v in self._seen.items() if v and v[-1][0] >= horizon}
        return Event(
            key="",
            time=rec.time,
            source=source,
            type="abnormal_export",
            rule="export-volume",
            client_ip=rec.remote_addr,
            account="" if who == rec.remote_addr else who,
            detail=f"{len(window)} export requests, {total} bytes in {self.rules.window:.0f}s; "
            f"last: {rec.request}",
        )


class AccessLogAnalyzer:
    def __init__(self, parser: AccessLogParser, source: str, exports: ExportRules) -> None:
        self.parser = parser
        self.source = source
        self.exports = ExportWatch(exports)
        self.lines = 0
        self.unparsed = 0
        self.status_counts = [0] * 6  # by status // 100; 0 for anything outside 1xx-5xx
        self.bytes_sent = 0
        self.duration_counts = [0] * (len(DURATION_BUCKETS) + 1)
        self.duration_sum = 0.0
        self.security: dict[str, int] = {}
        self._ua_cache: dict[str, Detection | None] = {}
        self._target_cache: dict[str, Detection | None] = {}

    @property
    def responses(self) -> dict[str, int]:
        return {cls: self.status_counts[i + 1] for i, cls in enumerate(STATUS_CLASSES)}

    def feed(self, line: str, key: str = "") -> list[Event]:
        """Account for one line (see :meth:`feed_chunk`)."""
        return self.feed_chunk(Chunk(key, [0], [line]))

    def feed_chunk(self, chunk: Chunk) -> list[Event]:
        """Account for the lines of a chunk; return the events they raise.

        The hot loop of the exporter (a million lines in seconds): locals only.
        """
        events: list[Event] = []
        parse = self.parser.parse_fields
        status_counts = self.status_counts
        durations = self.duration_counts
        bounds = DURATION_BUCKETS
        bisect_left = bisect.bisect_left
        ua_cache = self._ua_cache
        target_cache = self._target_cache
        is_export = self.exports.pattern.search if self.exports.pattern else lambda _: None
        sent = unparsed = 0
        total_time = 0.0
        for offset, line in zip(chunk.offsets, chunk.lines, strict=True):
            fields = parse(line)
            if fields is None:
                unparsed += 1
                continue
            _, _, _, _, target, status, nbytes, rt, ua, _ = fields
            cls = status // 100
            status_counts[cls if 0 < cls < 6 else 0] += 1
            sent += nbytes
            if rt is not None:
                durations[bisect_left(bounds, rt)] += 1
                total_time += rt
            found = target_cache.get(target, _MISSING)
            if found is _MISSING:
                found = classify_target(target)
                if len(target_cache) >= 50_000:
                    target_cache.clear()
                target_cache[target] = found
            if found is None and ua and ua != "-":
                found = ua_cache.get(ua, _MISSING)
                if found is _MISSING:
                    found = classify_user_agent(ua)
                    if len(ua_cache) >= 10_000:
                        ua_cache.clear()
                    ua_cache[ua] = found
            if found is not None:
                rec = AccessRecord._make(fields)
                events.append(self._attack(rec, found, f"{chunk.file_id}:{offset}"))
            if is_export(target) is not None:
                ev = self.exports.observe(AccessRecord._make(fields), self.source)
                if ev is not None:
                    self._count("abnormal_export")
                    events.append(ev._replace(key=f"{self.source}:{chunk.file_id}:{offset}:export"))
        self.lines += len(chunk.lines)
        self.unparsed += unparsed
        self.bytes_sent += sent
        self.duration_sum += total_time
        return events

    def _count(self, kind: str) -> None:
        self.security[kind] = self.security.get(kind, 0) + 1

    def _attack(self, rec: AccessRecord, found: Detection, where: str) -> Event:
        self._count(found.type)
        detail = rec.request
        if found.rule == "scan-user-agent":
            detail += f" UA={rec.user_agent}"
        return Event(
            key=f"{self.source}:{where}",
            time=rec.time or 0.0,
            source=self.source,
            type=found.type,
            rule=found.rule,
            client_ip=rec.remote_addr,
            account="" if rec.remote_user == "-" else rec.remote_user,
            detail=detail,
        )
