"""MySQL / MariaDB slow query log: parse, fingerprint (as pt-query-digest does), digest.

    for q in parse_slow_log(lines):      # streaming: one entry in memory at a time
        digest.add(q)
    digest.top(10)                        # classes by total query time

:func:`fingerprint` follows Percona Toolkit 3.2's ``QueryRewriter::fingerprint`` step by step
(literals to ``?``, ``IN (...)``/``VALUES (...)`` lists collapsed, comments dropped, whitespace
and case normalised, ``LIMIT`` and ``ASC`` normalised), so a class here is the class
pt-query-digest reports, with the same ``checksum`` (the MD5 of the fingerprint, upper case).
"""

from __future__ import annotations

import hashlib
import math
import re
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from exporters.core import ParseError

# -- fingerprint ---------------------------------------------------------------------------

_MYSQLDUMP = re.compile(r"SELECT /\*!40001 SQL_NO_CACHE \*/ \* FROM `")
_PT_CHECKSUM = re.compile(r"/\*\w+\.\w+:[0-9]/[0-9]\*/")
_CALL = re.compile(r"\s*(call\s+\S+)\(", re.I)
_MULTI_INSERT = re.compile(
    r"((?:INSERT|REPLACE)(?: IGNORE)?\s+INTO.+?VALUES\s*\(.*?\))\s*,\s*\(", re.I | re.S
)
_MLC = re.compile(r"/\*[^!].*?\*/", re.S | re.M)
_OLC = re.compile(r"(?:--|#)[^'\"\r\n]*(?=[\r\n]|\Z)")
_USE = re.compile(r"use \S+\n?\Z", re.I)
_ESC_QUOTE = re.compile(r"\\[\"']")
_DQ = re.compile(r'".*?"', re.S)
_SQ = re.compile(r"'.*?'", re.S)
_BOOL = re.compile(r"\bfalse\b|\btrue\b", re.I)
_NUMBER = re.compile(r"[0-9+-][0-9a-f.xb+-]*")
_LEFTOVER = re.compile(r"[xb.+-]\?")
_SPACE = re.compile(r"[ \n\t\r\f]+")
_NULL = re.compile(r"\bnull\b")
_LISTS = re.compile(r"\b(in|values?)(?:[\s,]*\([\s?,]*\))+")
_UNION = re.compile(r"\b(select\s.*?)(?:(\sunion(?:\sall)?)\s\1)+")
_LIMIT = re.compile(r"\blimit \?(?:, ?\?| offset \?)?")
_ORDER_BY = re.compile(r"\border by ", re.I)
_ASC = re.compile(r"(.+?)\s+asc", re.I)


def fingerprint(query: str) -> str:
    """The abstracted form of a statement, identical to pt-query-digest's."""
    if _MYSQLDUMP.match(query):
        return "mysqldump"
    if _PT_CHECKSUM.search(query):
        return "percona-toolkit"
    if query.startswith("administrator command: "):
        return query
    m = _CALL.match(query)
    if m:
        return m.group(1).lower()
    m = _MULTI_INSERT.match(query)
    if m:
        query = m.group(1)
    query = _MLC.sub("", query)
    query = _OLC.sub("", query)
    if _USE.match(query):
        return _USE.sub("use ?", query)
    if "\\" in query:
        query = _ESC_QUOTE.sub("", query)
    if '"' in query:
        query = _DQ.sub("?", query)
    if "'" in query:
        query = _SQ.sub("?", query)
    query = _BOOL.sub("?", query)
    query = _NUMBER.sub("?", query)
    query = _LEFTOVER.sub("?", query)
    query = query.lstrip()
    if query.endswith("\n"):
        query = query[:-1]
    query = _SPACE.sub(" ", query).lower()
    query = _NULL.sub("?", query)
    query = _LISTS.sub(r"\1(?+)", query)
    if "union" in query:
        query = _UNION.sub(r"\1 /*repeat\2*/", query)
    query = _LIMIT.sub("limit ?", query, count=1)
    m = _ORDER_BY.search(query)
    if m:
        pos = m.end()
        while True:
            a = _ASC.match(query, pos)
            if a is None:
                break
            query = query[: a.start()] + a.group(1) + query[a.end() :]
            pos = a.start() + len(a.group(1))
    return query


def checksum(fp: str) -> str:
    """pt-query-digest's class checksum: the fingerprint's MD5 in upper-case hex."""
    return hashlib.md5(fp.encode("utf-8"), usedforsecurity=False).hexdigest().upper()


# -- parsing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlowQuery:
    query: str
    query_time: float
    lock_time: float = 0.0
    rows_sent: int = 0
    rows_examined: int = 0
    user: str = ""
    host: str = ""
    db: str = ""
    time: float | None = None
    full_scan: bool | None = None


_BANNER = re.compile(
    r"^(?:T[cC][pP]\s[pP]ort:\s+\d+|[/A-Z].*mysqld?,\sVersion.*|Time\s+Id\s+Command)"
)
_USER_HOST = re.compile(r"# User@Host: ([^\[]+|\[[^[]+\]).*?@ (\S*) \[(.*?)\]")
_PROPS = re.compile(r"(\w+):\s+(\S+|\Z)")
_TIME = re.compile(
    r"^# Time: (?:(\d{6}\s+\d{1,2}:\d\d:\d\d)|(\d{4}-\d\d-\d\dT[\d:.]+)(Z|[+-][\d:]+)?)"
)


def _entry(header: list[str], body: list[str]) -> SlowQuery | None:
    props: dict[str, str] = {}
    user = host = db = ""
    when: float | None = None
    query = ""
    for line in header:
        if line.startswith("# Time:"):
            when = _parse_time(line) or when
        elif line.startswith("# User@Host:"):
            m = _USER_HOST.match(line)
            if m:
                user = m.group(1).strip().split("[")[0]
                host = m.group(2) or m.group(3)
        elif line.startswith("# administrator command:"):
            query = line[2:].rstrip().removesuffix(";")
        else:
            if "Schema:" in line:
                line = re.sub(r"Schema:\s+(\w+: )", r"\1", line)
            props.update(_PROPS.findall(line))
    lines = list(body)
    while lines and (lines[0].startswith(("use ", "SET timestamp", "SET insert_id", "SET last_"))):
        first = lines.pop(0)
        if first.startswith("use ") and not db:
            db = first[4:].split(";")[0].strip().strip("`")
        elif first.startswith("SET timestamp=") and when is None:
            try:
                when = float(first[len("SET timestamp=") :].split(";")[0])
            except ValueError:
                pass
    if lines:
        query = "\n".join(lines)
        if query.endswith(";"):
            query = query[:-1]
    if not query or "Query_time" not in props:
        return None
    db = db or props.get("Schema", "")
    try:
        return SlowQuery(
            query=query,
            query_time=float(props["Query_time"]),
            lock_time=float(props.get("Lock_time", 0) or 0),
            rows_sent=int(props.get("Rows_sent", 0) or 0),
            rows_examined=int(props.get("Rows_examined", 0) or 0),
            user=user,
            host=host,
            db=db,
            time=when,
            full_scan=(props["Full_scan"] == "Yes") if "Full_scan" in props else None,
        )
    except ValueError as exc:
        raise ParseError(f"slow log: bad value in {header!r}: {exc}") from None


def _parse_time(line: str) -> float | None:
    m = _TIME.match(line)
    if not m:
        return None
    try:
        if m.group(1):
            return datetime.strptime(" ".join(m.group(1).split()), "%y%m%d %H:%M:%S").timestamp()
        stamp = m.group(2) + (m.group(3) or "")
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class SlowLogStream:
    """Incremental parser for a followed slow log: lines go in as they are read, complete
    entries come out. An entry is complete when the next one starts (pt-query-digest's split:
    a ``#`` line after a statement line that ends with ``;``), so the last entry of the file
    waits for the next one, or for :meth:`flush`."""

    def __init__(self) -> None:
        self._header: list[str] = []
        self._body: list[str] = []

    def feed(self, lines: Iterable[str]) -> Iterator[SlowQuery]:
        header, body = self._header, self._body
        for raw in lines:
            line = raw.rstrip("\r\n")
            if line.startswith("#"):
                if body and (body[-1].endswith(";") or _BANNER.match(body[-1])):
                    entry = _entry(header, [b for b in body if not _BANNER.match(b)])
                    if entry is not None:
                        yield entry
                    header, body = [], []
                    self._header, self._body = header, body
                if body:  # a '#' line inside a statement
                    body.append(line)
                else:
                    header.append(line)
            elif _BANNER.match(line) and not body:
                continue
            elif line or body:
                body.append(line)
            if len(body) > 10_000:  # a runaway statement: keep memory bounded
                del body[5_000:]

    def flush(self) -> Iterator[SlowQuery]:
        if self._header:
            entry = _entry(self._header, [b for b in self._body if not _BANNER.match(b)])
            if entry is not None:
                yield entry
        self._header, self._body = [], []


def parse_slow_log(lines: Iterable[str]) -> Iterator[SlowQuery]:
    """Slow-log entries of a whole file, streaming (one entry in memory at a time)."""
    stream = SlowLogStream()
    yield from stream.feed(lines)
    yield from stream.flush()


_OUTFILE = re.compile(r"\binto\s+(?:out|dump)file\b", re.I)


def export_finding(q: SlowQuery, backup_accounts: Iterable[str], max_rows_sent: int) -> str | None:
    """Why a statement looks like a data export (rule id), or None.

    ``into-outfile``: SELECT ... INTO OUTFILE/DUMPFILE by anyone; ``dump-by-non-backup``:
    mysqldump's signature by an account that is not a backup account; ``large-result``: more
    rows sent by one statement than ``max_rows_sent``.
    """
    if _OUTFILE.search(q.query):
        return "into-outfile"
    if _MYSQLDUMP.match(q.query) and q.user not in set(backup_accounts):
        return "dump-by-non-backup"
    if q.rows_sent > max_rows_sent:
        return "large-result"
    return None


# -- digest --------------------------------------------------------------------------------


@dataclass
class QueryClass:
    fingerprint: str
    checksum: str
    count: int = 0
    total_time: float = 0.0
    max_time: float = 0.0
    lock_time: float = 0.0
    rows_sent: int = 0
    rows_examined: int = 0
    full_scans: int = 0
    sample: SlowQuery | None = None
    times: array = field(default_factory=lambda: array("d"))

    @property
    def avg_time(self) -> float:
        return self.total_time / self.count if self.count else 0.0

    @property
    def p95_time(self) -> float:
        """95th percentile (nearest rank) of the query times."""
        if not self.times:
            return 0.0
        ordered = sorted(self.times)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    def index_candidate(self, min_examined: int = 1000, ratio: float = 100.0) -> str | None:
        """Why this class may want an index: full scans, or rows examined >> rows sent."""
        if not self.count:
            return None
        per_query = self.rows_examined / self.count
        if self.full_scans and self.full_scans * 2 >= self.count and per_query >= min_examined:
            return "full_scan"
        if per_query >= min_examined and self.rows_examined >= ratio * max(1, self.rows_sent):
            return "rows_examined_vs_sent"
        return None

    def as_dict(self) -> dict:
        return {
            "checksum": self.checksum,
            "fingerprint": self.fingerprint,
            "count": self.count,
            "total_time": round(self.total_time, 6),
            "avg_time": round(self.avg_time, 6),
            "p95_time": round(self.p95_time, 6),
            "max_time": round(self.max_time, 6),
            "lock_time": round(self.lock_time, 6),
            "rows_examined": self.rows_examined,
            "rows_sent": self.rows_sent,
            "full_scans": self.full_scans,
            "index_candidate": self.index_candidate(),
            "sample": self.sample.query if self.sample else "",
            "db": self.sample.db if self.sample else "",
        }


class Digest:
    """Query classes keyed by fingerprint; ``keep_times=False`` (the exporter) drops the
    per-query times that the p95 needs, so memory grows with classes only."""

    def __init__(self, keep_times: bool = True) -> None:
        self.keep_times = keep_times
        self.classes: dict[str, QueryClass] = {}
        self.queries = 0
        self.total_time = 0.0
        self._fp_cache: dict[str, str] = {}

    def add(self, q: SlowQuery) -> QueryClass:
        fp = self._fp_cache.get(q.query)
        if fp is None:
            fp = fingerprint(q.query)
            if len(self._fp_cache) > 20_000:
                self._fp_cache.clear()
            self._fp_cache[q.query] = fp
        cls = self.classes.get(fp)
        if cls is None:
            cls = self.classes[fp] = QueryClass(fp, checksum(fp))
        cls.count += 1
        cls.total_time += q.query_time
        cls.lock_time += q.lock_time
        cls.rows_sent += q.rows_sent
        cls.rows_examined += q.rows_examined
        cls.full_scans += bool(q.full_scan)
        if self.keep_times:
            cls.times.append(q.query_time)
        if q.query_time >= cls.max_time:
            cls.max_time = q.query_time
            cls.sample = q
        self.queries += 1
        self.total_time += q.query_time
        return cls

    def top(self, n: int = 10) -> list[QueryClass]:
        """The ``n`` classes with the most total time (ties: more queries first)."""
        ranked = sorted(self.classes.values(), key=lambda c: (-c.total_time, -c.count))
        return ranked[:n]
