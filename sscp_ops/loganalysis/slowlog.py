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

import functools
import hashlib
import math
import re
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from sscp_ops.errors import ParseError

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
_BOOL_HINT = re.compile(r"[fF][aA][lL][sS][eE]|[tT][rR][uU][eE]")
_NUMBER = re.compile(r"[0-9+-][0-9a-f.xb+-]*")
_LEFTOVER = re.compile(r"[xb.+-]\?")
_SPACE = re.compile(r"[ \n\t\r\f]+")
_NULL = re.compile(r"\bnull\b")
_LISTS = re.compile(r"\b(in|values?)(?:[\s,]*\([\s?,]*\))+")
_UNION = re.compile(r"\b(select\s.*?)(?:(\sunion(?:\sall)?)\s\1)+")
_LIMIT = re.compile(r"\blimit \?(?:, ?\?| offset \?)?")
_ORDER_BY = re.compile(r"\border by ", re.I)
_ASC = re.compile(r"(.+?)\s+asc", re.I)
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_DIGITS_MATTER = ("administrator command: ", "SELECT /*!")


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
    if "/*" in query:
        query = _MLC.sub("", query)
    if "--" in query or "#" in query:
        query = _OLC.sub("", query)
    if _USE.match(query):
        return _USE.sub("use ?", query)
    if "\\" in query:
        query = _ESC_QUOTE.sub("", query)
    if '"' in query:
        query = _DQ.sub("?", query)
    if "'" in query:
        query = _SQ.sub("?", query)
    if _BOOL_HINT.search(query):
        query = _BOOL.sub("?", query)
    query = _NUMBER.sub("?", query)
    query = _LEFTOVER.sub("?", query)
    query = query.lstrip()
    if query.endswith("\n"):
        query = query[:-1]
    query = _SPACE.sub(" ", query).lower()
    if "null" in query:
        query = _NULL.sub("?", query)
    if "(" in query:
        query = _LISTS.sub(r"\1(?+)", query)
    if "union" in query:
        query = _UNION.sub(r"\1 /*repeat\2*/", query)
    if "limit" in query:
        query = _LIMIT.sub("limit ?", query, count=1)
    m = _ORDER_BY.search(query) if "order by" in query else None
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


#: Server (re)start banners written into the slow log (pt-query-digest's list, plus mariadbd).
_BANNER = re.compile(
    r"^(?:T[cC][pP]\s[pP]ort:\s+\d+|[/A-Z].*(?:mysqld|mariadbd),\sVersion.*"
    r"(?:started\swith:|embedded\slibrary)|Time\s+Id\s+Command).*\n",
    re.M,
)
_USER_HOST = re.compile(r"^# User@Host: ([^\[\n]+|\[[^\[\n]+\]).*?@ (\S*) \[(.*?)\]", re.M)
_QUERY_TIME = re.compile(
    r"^# Query_time: ([\d.]+)\s+Lock_time: ([\d.]+)\s+Rows_sent: (\d+)\s+Rows_examined: (\d+)",
    re.M,
)
_SCHEMA = re.compile(r"Schema: (\w+)(?=\s|$)", re.M)
_TIME = re.compile(
    r"^# Time: (?:(\d{6}\s+\d{1,2}:\d\d:\d\d)|(\d{4}-\d\d-\d\dT[\d:.]+)(Z|[+-][\d:]+)?)", re.M
)
_ADMIN = re.compile(r"^# administrator command: (.*?);?$", re.M)
#: The statement starts at the first line that is neither a comment nor session bookkeeping.
_NOT_STATEMENT = ("#", "use ", "SET last_insert_id", "SET insert_id", "SET timestamp")
_USE_DB = re.compile(r"^use ([^;\n]+)", re.M)
_SET_TIMESTAMP = re.compile(r"^SET timestamp=(\d+(?:\.\d+)?)", re.M)
#: pt-query-digest's record separator: a statement's final ";" and the next entry's "#".
_SEPARATOR = ";\n#"


def _record(text: str) -> SlowQuery | None:
    """One entry (header comment lines, session lines, the statement) -> SlowQuery."""
    if "Tcp port" in text or "TCP Port" in text or ", Version" in text or "Time " in text:
        text = _BANNER.sub("", text)
    if not text.startswith("#"):
        text = "#" + text
    start, end = 0, len(text)
    while start < end and text.startswith(_NOT_STATEMENT, start):
        nl = text.find("\n", start)
        start = end if nl < 0 else nl + 1
    head = text[:start]
    at = head.find("# Query_time:")
    times = _QUERY_TIME.match(head, at) if at >= 0 else None
    if times is None:
        return None
    if start < end:
        query = text[start:]
        if query.endswith(";\n"):
            query = query[:-2]
        elif query.endswith(";"):
            query = query[:-1]
        query = query.rstrip("\n")
    else:
        admin = _ADMIN.search(head)
        query = admin.group(1) if admin else ""
        if admin:
            query = "administrator command: " + query
    if not query:
        return None
    user = host = db = ""
    at = head.find("# User@Host:")
    uh = _USER_HOST.match(head, at) if at >= 0 else None
    if uh:
        user = uh.group(1).strip().split("[")[0]
        host = uh.group(2) or uh.group(3)
    use = _USE_DB.search(head) if "use " in head else None
    if use:
        db = use.group(1).strip().strip("`")
    else:
        schema = _SCHEMA.search(head)
        if schema:
            db = schema.group(1)
    when: float | None = None
    if "# Time:" in head:
        when = _parse_time(head)
    if when is None:
        ts = _SET_TIMESTAMP.search(head) if "SET timestamp=" in head else None
        if ts:
            when = float(ts.group(1))
    full_scan = ("Full_scan: Yes" in head) if "Full_scan:" in head else None
    try:
        return SlowQuery(
            query,
            float(times.group(1)),
            float(times.group(2)),
            int(times.group(3)),
            int(times.group(4)),
            user,
            host,
            db,
            when,
            full_scan,
        )
    except ValueError as exc:
        raise ParseError(f"slow log: bad value in {head!r}: {exc}") from None


def _parse_time(head: str) -> float | None:
    m = _TIME.search(head)
    if not m:
        return None
    return _time_of(m.group(1), m.group(2), m.group(3))


@functools.lru_cache(maxsize=64)
def _time_of(classic: str | None, iso: str | None, zone: str | None) -> float | None:
    m = (classic, iso, zone)
    try:
        if m[0]:
            return datetime.strptime(" ".join(m[0].split()), "%y%m%d %H:%M:%S").timestamp()
        stamp = (m[1] or "") + (m[2] or "")
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class SlowLogStream:
    """Incremental parser: text goes in as it is read, complete entries come out.

    Entries are split where pt-query-digest splits them, at ``;\n#`` (a statement's final
    semicolon and the next entry's first comment line), so the last entry waits for the next
    one, or for :meth:`flush`. Memory holds one unfinished entry at most (cut at 16 MiB).
    """

    def __init__(self) -> None:
        self._carry = ""

    def feed_text(self, text: str) -> Iterator[SlowQuery]:
        buf = self._carry + text if self._carry else text
        parts = buf.split(_SEPARATOR)
        carry = parts.pop()
        self._carry = carry if len(carry) < (16 << 20) else ""
        for i, part in enumerate(parts):
            if i or not part.startswith("#"):
                part = part if part.startswith("#") else "#" + part
            q = _record(part)
            if q is not None:
                yield q

    def feed(self, lines: Iterable[str]) -> Iterator[SlowQuery]:
        """Lines without their newlines (as the log follower returns them)."""
        text = "\n".join(lines)
        return self.feed_text(text + "\n" if text else text)

    def flush(self) -> Iterator[SlowQuery]:
        carry, self._carry = self._carry, ""
        if carry.strip():
            q = _record(carry)
            if q is not None:
                yield q


def parse_slow_log(source: Iterable[str] | IO[str], block: int = 1 << 20) -> Iterator[SlowQuery]:
    """Entries of a whole slow log, streaming: a file is read in ``block``-sized pieces; lines
    (with their newlines) are accepted too."""
    stream = SlowLogStream()
    read = getattr(source, "read", None)
    if read is not None:
        while True:
            text = read(block)
            if not text:
                break
            yield from stream.feed_text(text)
    else:
        for line in source:
            yield from stream.feed_text(line)
    yield from stream.flush()


_OUTFILE = re.compile(r"\binto\s+(?:out|dump)file\b", re.I)
#: What mysqldump / mariadb-dump send to read a table (``*`` or, since MariaDB 10.x, columns).
_DUMP = re.compile(r"SELECT /\*!40001 SQL_NO_CACHE \*/ ")


def export_finding(q: SlowQuery, backup_accounts: Iterable[str], max_rows_sent: int) -> str | None:
    """Why a statement looks like a data export (rule id), or None.

    ``into-outfile``: SELECT ... INTO OUTFILE/DUMPFILE by anyone; ``dump-by-non-backup``:
    mysqldump's signature by an account that is not a backup account; ``large-result``: more
    rows sent by one statement than ``max_rows_sent``.
    """
    if _OUTFILE.search(q.query):
        return "into-outfile"
    if _DUMP.match(q.query) and q.user not in set(backup_accounts):
        return "dump-by-non-backup"
    if q.rows_sent > max_rows_sent:
        return "large-result"
    return None


# -- digest --------------------------------------------------------------------------------


def processlist_finding(user: str, info: str | None, backup_accounts: Iterable[str]) -> str | None:
    """Why a running statement (a PROCESSLIST row) looks like a data export, or None:
    ``into-outfile`` by anyone, ``dump-by-non-backup`` (mysqldump's SELECT) by an account that
    is not a backup account."""
    if not info:
        return None
    if _OUTFILE.search(info):
        return "into-outfile"
    if _DUMP.match(info) and user not in set(backup_accounts):
        return "dump-by-non-backup"
    return None


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
        self._fp_cache: dict[bytes, str] = {}

    def add(self, q: SlowQuery) -> QueryClass:
        fp = self._fingerprint(q.query)
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

    def _fingerprint(self, query: str) -> str:
        """:func:`fingerprint`, remembered per *shape*: the statement with every digit read as
        0. Statements that differ only in their digits get the same fingerprint (pt-query-
        digest's rules turn every digit into part of a ``?``), except ``CALL name(...)``,
        administrator commands and mysqldump's ``/*!40001 ...*/``: those are not cached."""
        key = query.encode("utf-8", "surrogateescape").translate(_DIGITS_AS_ZERO)
        fp = self._fp_cache.get(key)
        if fp is None:
            fp = fingerprint(query)
            if query.startswith(_DIGITS_MATTER) or _CALL.match(query):
                return fp  # kept verbatim, or mysqldump's /*!40001*/: digits matter
            if len(self._fp_cache) >= 20_000:
                self._fp_cache.clear()
            self._fp_cache[key] = fp
        return fp

    def top(self, n: int = 10) -> list[QueryClass]:
        """The ``n`` classes with the most total time (ties: more queries first)."""
        ranked = sorted(self.classes.values(), key=lambda c: (-c.total_time, -c.count))
        return ranked[:n]
