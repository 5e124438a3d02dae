"""MySQL / MariaDB collector: one reused PyMySQL connection per configured target, under the
names of mysqld_exporter (0.14, default collectors), so its rules and dashboards work. Sample
output::

    mysql_up{target="db1"} 1
    mysql_version_info{innodb_version="",target="db1",version="10.11.19-MariaDB",...} 1
    mysql_global_status_threads_connected{target="db1"} 12
    mysql_global_status_commands_total{command="select",target="db1"} 51023
    mysql_global_status_buffer_pool_pages{state="free",target="db1"} 7318
    mysql_global_variables_max_connections{target="db1"} 151
    mysql_slave_status_seconds_behind_master{channel_name="",connection_name="",...} 0
    mysql_info_schema_long_running_queries{target="db1"} 0
    mysql_info_schema_longest_query_seconds{target="db1"} 0
    mysql_perf_schema_events_statements_rows_sent_total{digest="3a4f...",schema="city",...} 1e+06

What is read at each scrape:

- ``SHOW GLOBAL STATUS``: every numeric value as ``mysql_global_status_<name>`` (untyped), with
  mysqld_exporter's renaming: ``Com_*`` -> ``mysql_global_status_commands_total{command}``,
  ``Handler_*`` -> ``..._handlers_total{handler}``, ``Connection_errors_*`` ->
  ``..._connection_errors_total{error}``, ``Innodb_buffer_pool_pages_{data,free,misc,old}`` ->
  ``..._buffer_pool_pages{state}``, ``..._dirty`` -> ``..._buffer_pool_dirty_pages``, other
  ``Innodb_buffer_pool_pages_*`` -> ``..._buffer_pool_page_changes_total{operation}``,
  ``Innodb_rows_*`` -> ``..._innodb_row_ops_total{operation}``, ``Performance_schema_*`` ->
  ``..._performance_schema_lost_total{instrumentation}``. ON/YES count 1, OFF/NO 0.
- ``SHOW GLOBAL VARIABLES``: numeric values as ``mysql_global_variables_<name>`` (gauges), and
  ``mysql_version_info`` / ``mysql_transaction_isolation``.
- replica status (``SHOW ALL SLAVES STATUS``, else ``SHOW SLAVE STATUS`` / ``SHOW REPLICA
  STATUS``) when the server is a replica: ``mysql_slave_status_seconds_behind_master``,
  ``..._slave_io_running``, ``..._slave_sql_running``. Needs the ``REPLICATION CLIENT``
  (MySQL) or ``SLAVE MONITOR`` (MariaDB >= 10.5) privilege; without it these are left out.
- the process list (ours): statements running for at least the server's ``long_query_time``
  (``mysql_info_schema_long_running_queries``) and the age of the oldest running statement
  (``mysql_info_schema_longest_query_seconds``).
- when ``performance_schema`` is ON: the top :data:`TOP_DIGESTS` statement digests by rows sent
  and the top :data:`TOP_DIGESTS` by time (at most twice that many label sets), under
  mysqld_exporter's ``mysql_perf_schema_events_statements_*_total{schema,digest,digest_text}``
  names (executions, seconds, errors, warnings, rows sent / examined, disk temporary tables,
  sort merge passes, no index used), to spot abnormal queries and bulk exports; the monthly
  report ranks statements from them. ``digest_text`` is the server's normalised statement
  (literals replaced by ``?``), cut at :data:`DIGEST_TEXT_LIMIT` characters as
  mysqld_exporter does; the report masks it again before showing it. As mysqld_exporter,
  statements on the system schemas are left out; unlike it, statements run without a default
  database are kept, with ``schema="NONE"``.

Grants the exporter user needs: ``PROCESS, REPLICATION CLIENT, SELECT ON *.*`` (plus
``SLAVE MONITOR`` on MariaDB replicas).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pymysql
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.samples import Sample
from pymysql.constants import CLIENT

from exporters.core import Collector, ParseError, TargetCollector, TargetUnavailable, read_password
from sscp_ops.config import Config
from sscp_ops.config.targets import MysqlTarget

log = logging.getLogger("exporter")

TOP_DIGESTS = 10
#: Characters of the normalised statement text kept in ``digest_text`` (mysqld_exporter's
#: default ``--collect.perf_schema.eventsstatements.digest_text_limit``).
DIGEST_TEXT_LIMIT = 120

Rows = Sequence[Sequence[object]]


@dataclass(frozen=True)
class ServerValues:
    """``SHOW GLOBAL STATUS`` or ``VARIABLES``: numeric values by Prometheus-safe lower name,
    and the raw text of every row by its original lower-case name."""

    numbers: dict[str, float]
    texts: dict[str, str]


_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_VALID = re.compile(r"[a-z0-9_]+")
_NUMBER_START = frozenset("0123456789-+.")
_TIME_FORMATS = ("%b %d %H:%M:%S %Y GMT", "%Y-%m-%d %H:%M:%S")
_LOOKS_LIKE_TIME = re.compile(r"^(\d{4}-\d\d-\d\d|[A-Z][a-z]{2} [ \d]\d) \d\d:\d\d:\d\d")
_WORDS = {
    "yes": 1.0,
    "on": 1.0,
    "no": 0.0,
    "off": 0.0,
    "disabled": 0.0,
    "connecting": 0.0,
    "primary": 1.0,
    "non-primary": 0.0,
    "disconnected": 0.0,
}


def parse_value(raw: object) -> float | None:
    """A status or variable value as mysqld_exporter reads it; ``None`` when not numeric."""
    if raw is None:
        return None
    if isinstance(raw, int | float):
        return float(raw)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    try:
        return float(text)
    except ValueError:
        pass
    word = _WORDS.get(text.lower())
    if word is not None:
        return word
    if _LOOKS_LIKE_TIME.match(text):
        for fmt in _TIME_FORMATS:
            try:
                stamp = dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
            except ValueError:
                continue
            return stamp.timestamp()
    return None


def parse_server_values(rows: Rows, what: str = "SHOW GLOBAL STATUS") -> ServerValues:
    """Rows of ``(Variable_name, Value)`` -> :class:`ServerValues`."""
    numbers: dict[str, float] = {}
    texts: dict[str, str] = {}
    if not rows:
        raise ParseError(f"{what}: no rows")
    for row in rows:
        try:
            name, raw = row
        except (TypeError, ValueError):
            raise ParseError(f"{what}: expected (name, value) rows, got {row!r:.80}") from None
        if name.__class__ is not str:
            if not isinstance(name, bytes):
                raise ParseError(f"{what}: expected (name, value) rows, got {row!r:.80}")
            name = name.decode()
        if raw.__class__ is not str:
            raw = (
                ""
                if raw is None
                else raw.decode("utf-8", "replace")
                if isinstance(raw, bytes)
                else str(raw)
            )
        lower = name.lower()
        texts[lower] = raw
        value: float | None = None
        if raw[:1] in _NUMBER_START:
            try:
                value = float(raw)  # most values: skip parse_value's other readings
            except ValueError:
                value = parse_value(raw)
        elif raw:
            value = parse_value(raw)
        if value is not None:
            numbers[lower if _VALID.fullmatch(lower) else _INVALID.sub("_", lower)] = value
    return ServerValues(numbers, texts)


def parse_packed(packed: str | bytes | None) -> list[tuple[str, str]]:
    """``name<US>value<RS>name<US>value...`` (one ``GROUP_CONCAT`` row) -> (name, value) rows."""
    if isinstance(packed, bytes):
        packed = packed.decode("utf-8", "replace")
    if not packed:
        raise ParseError("global status: empty")
    if len(packed) >= _PACKED_MAX:
        raise ParseError("global status: truncated at group_concat_max_len")
    rows = []
    for record in packed.split(_RECORD):
        name, sep, value = record.partition(_FIELD)
        if not sep:
            raise ParseError(f"global status: record without a value: {record[:60]!r}")
        rows.append((name, value))
    return rows


def parse_packed_or_rows(result: object) -> Rows:
    """A packed ``GROUP_CONCAT`` value (str/bytes) or already (name, value) rows."""
    if result is None or isinstance(result, str | bytes):
        return parse_packed(result)
    return result  # type: ignore[return-value]


def processlist_metrics(target: str, row: Sequence[object] | None) -> list[Metric]:
    """``(running, over long_query_time, longest age)`` from the process list -> families."""
    if row is None or len(row) != 3:
        raise ParseError(f"process list: unexpected row {row!r:.80}")
    _running, long_running, longest = row
    count = GaugeMetricFamily(
        "mysql_info_schema_long_running_queries",
        "Statements running for at least the server's long_query_time.",
        labels=["target"],
    )
    count.add_metric([target], float(long_running))
    age = GaugeMetricFamily(
        "mysql_info_schema_longest_query_seconds",
        "Age of the oldest running statement (0 when none).",
        labels=["target"],
    )
    age.add_metric([target], float(longest))
    return [count, age]


_STATUS_GROUP = re.compile(
    r"^(com|handler|connection_errors|innodb_buffer_pool_pages|innodb_rows|performance_schema)_(.*)$"
)
_GROUP_FAMILIES = {
    "com": (
        "mysql_global_status_commands_total",
        "command",
        "Total number of executed MySQL commands.",
    ),
    "handler": (
        "mysql_global_status_handlers_total",
        "handler",
        "Total number of executed MySQL handlers.",
    ),
    "connection_errors": (
        "mysql_global_status_connection_errors_total",
        "error",
        "Total number of MySQL connection errors.",
    ),
    "innodb_rows": (
        "mysql_global_status_innodb_row_ops_total",
        "operation",
        "Total number of MySQL InnoDB row operations.",
    ),
    "performance_schema": (
        "mysql_global_status_performance_schema_lost_total",
        "instrumentation",
        "Total number of MySQL instrumentations that could not be loaded or created due to "
        "memory constraints.",
    ),
    "page_changes": (
        "mysql_global_status_buffer_pool_page_changes_total",
        "operation",
        "Innodb buffer pool page state changes.",
    ),
}


_STATUS_HELP = "Generic metric from SHOW GLOBAL STATUS."
_VARIABLES_HELP = "Generic gauge metric from SHOW GLOBAL VARIABLES."


def _single(name: str, doc: str, kind: str, labels: dict[str, str], value: float) -> Metric:
    """A family of one sample, built without *MetricFamily's per-call label zipping (this
    runs ~1,000 times per MySQL scrape)."""
    family = Metric(name, doc, kind)
    family.samples.append(Sample(name, labels, value))
    return family


def global_status_metrics(target: str, status: ServerValues) -> list[Metric]:
    """``SHOW GLOBAL STATUS`` under mysqld_exporter's names, every series labelled ``target``."""
    t = {"target": target}
    out: list[Metric] = []
    grouped: dict[str, CounterMetricFamily] = {}
    pages = GaugeMetricFamily(
        "mysql_global_status_buffer_pool_pages",
        "Innodb buffer pool pages by state.",
        labels=["target", "state"],
    )
    for key, value in status.numbers.items():
        match = _STATUS_GROUP.match(key)
        if match is None:
            out.append(_single(f"mysql_global_status_{key}", _STATUS_HELP, "unknown", t, value))
            continue
        group, item = match.groups()
        if group == "innodb_buffer_pool_pages":
            if item in ("data", "free", "misc", "old"):
                pages.add_metric([target, item], value)
                continue
            if item == "dirty":
                out.append(
                    _single(
                        "mysql_global_status_buffer_pool_dirty_pages",
                        "Innodb buffer pool dirty pages.",
                        "gauge",
                        t,
                        value,
                    )
                )
                continue
            if item == "total":
                continue
            group = "page_changes"
        family = grouped.get(group)
        if family is None:
            name, label, doc = _GROUP_FAMILIES[group]
            family = grouped[group] = CounterMetricFamily(name, doc, labels=["target", label])
        family.add_metric([target, item], value)
    if pages.samples:
        out.append(pages)
    return out + list(grouped.values())


def global_variables_metrics(target: str, variables: ServerValues) -> list[Metric]:
    """``SHOW GLOBAL VARIABLES`` under mysqld_exporter's names, labelled ``target``."""
    t = {"target": target}
    out: list[Metric] = [
        _single(f"mysql_global_variables_{key}", _VARIABLES_HELP, "gauge", t, value)
        for key, value in variables.numbers.items()
    ]
    version = GaugeMetricFamily(
        "mysql_version_info",
        "MySQL version and distribution.",
        labels=["target", "innodb_version", "version", "version_comment"],
    )
    texts = variables.texts
    version.add_metric(
        [
            target,
            texts.get("innodb_version", ""),
            texts.get("version", ""),
            texts.get("version_comment", ""),
        ],
        1,
    )
    out.append(version)
    level = texts.get("transaction_isolation") or texts.get("tx_isolation")
    if level:
        fam = GaugeMetricFamily(
            "mysql_transaction_isolation",
            "MySQL transaction isolation.",
            labels=["target", "level"],
        )
        fam.add_metric([target, level], 1)
        out.append(fam)
    return out


REPLICA_LABELS = ("channel_name", "connection_name", "master_host", "master_uuid")
REPLICA_FIELDS = {
    "seconds_behind_master": "Seconds the replica SQL thread is behind the primary.",
    "slave_io_running": "Whether the replica I/O thread runs (1) or not (0).",
    "slave_sql_running": "Whether the replica SQL thread runs (1) or not (0).",
}
_REPLICA_RENAMES = {
    "seconds_behind_source": "seconds_behind_master",
    "replica_io_running": "slave_io_running",
    "replica_sql_running": "slave_sql_running",
    "source_host": "master_host",
    "source_uuid": "master_uuid",
}


def replica_metrics(target: str, rows: list[dict[str, object]]) -> list[Metric]:
    """Rows of the replica status (dicts by column) -> ``mysql_slave_status_*`` families."""
    fams = {
        key: GaugeMetricFamily(f"mysql_slave_status_{key}", doc, labels=["target", *REPLICA_LABELS])
        for key, doc in REPLICA_FIELDS.items()
    }
    for row in rows:
        norm = {_REPLICA_RENAMES.get(k.lower(), k.lower()): v for k, v in row.items()}
        labels = [target, *(str(norm.get(k) or "") for k in REPLICA_LABELS)]
        for key in REPLICA_FIELDS:
            value = parse_value(norm.get(key))
            if value is not None:
                fams[key].add_metric(labels, value)
    return [fam for fam in fams.values() if fam.samples]


@dataclass(frozen=True)
class Digest:
    schema: str
    digest: str
    digest_text: str
    count: int
    seconds: float
    errors: int
    warnings: int
    rows_sent: int
    rows_examined: int
    tmp_disk_tables: int
    sort_merge_passes: int
    no_index_used: int


# Digest field -> (mysqld_exporter's metric name, help).
DIGEST_METRICS = {
    "count": ("mysql_perf_schema_events_statements_total", "Executions of the statement."),
    "seconds": ("mysql_perf_schema_events_statements_seconds_total", "Time spent in it."),
    "errors": ("mysql_perf_schema_events_statements_errors_total", "Executions with an error."),
    "warnings": ("mysql_perf_schema_events_statements_warnings_total", "Warnings raised."),
    "rows_sent": ("mysql_perf_schema_events_statements_rows_sent_total", "Rows sent."),
    "rows_examined": ("mysql_perf_schema_events_statements_rows_examined_total", "Rows read."),
    "tmp_disk_tables": (
        "mysql_perf_schema_events_statements_tmp_disk_tables_total",
        "Temporary tables created on disk.",
    ),
    "sort_merge_passes": (
        "mysql_perf_schema_events_statements_sort_merge_passes_total",
        "Merge passes of its sorts.",
    ),
    "no_index_used": (
        "mysql_perf_schema_events_statements_no_index_used_total",
        "Executions that scanned a table without an index.",
    ),
}


def parse_digests(rows: Iterable[Sequence[object]]) -> list[Digest]:
    """Rows of :data:`_DIGESTS` -> one :class:`Digest` per (schema, digest), first row kept
    (the two halves of the query may both list a digest, read a moment apart)."""
    out: dict[tuple[str, str], Digest] = {}
    for row in rows:
        if len(row) != 12:
            raise ParseError(f"statement digests: unexpected row {row!r:.80}")
        schema, digest, text = (str(v or "") for v in row[:3])
        try:
            count, wait, errors, warnings, sent, examined, disk, merges, no_index = (
                int(v or 0) for v in row[3:]
            )
        except (TypeError, ValueError):
            raise ParseError(f"statement digests: not a number in {row!r:.80}") from None
        out.setdefault(
            (schema, digest),
            Digest(
                schema,
                digest,
                text,
                count,
                wait / 1e12,
                errors,
                warnings,
                sent,
                examined,
                disk,
                merges,
                no_index,
            ),
        )
    return list(out.values())


def digest_metrics(target: str, digests: Iterable[Digest]) -> list[Metric]:
    """``mysql_perf_schema_events_statements_*{schema,digest,digest_text}`` (the top digests
    by rows sent and by time: at most 2 x :data:`TOP_DIGESTS` label sets)."""
    labels = ["target", "schema", "digest", "digest_text"]
    fams = {
        attr: CounterMetricFamily(name, f"{doc} (top statement digests)", labels=labels)
        for attr, (name, doc) in DIGEST_METRICS.items()
    }
    for d in digests:
        key = [target, d.schema, d.digest, d.digest_text]
        for attr, fam in fams.items():
            fam.add_metric(key, getattr(d, attr))
    return list(fams.values())


_PROCESSLIST = (
    "SELECT COUNT(*), COALESCE(SUM(TIME >= @@GLOBAL.long_query_time), 0), "
    "COALESCE(MAX(TIME), 0) FROM information_schema.PROCESSLIST "
    "WHERE COMMAND IN ('Query', 'Execute') AND ID <> CONNECTION_ID()"
)
_DIGEST_COLUMNS = (
    "COALESCE(SCHEMA_NAME, 'NONE'), COALESCE(DIGEST, ''), "
    f"LEFT(COALESCE(DIGEST_TEXT, ''), {DIGEST_TEXT_LIMIT}), COUNT_STAR, SUM_TIMER_WAIT, "
    "SUM_ERRORS, SUM_WARNINGS, SUM_ROWS_SENT, SUM_ROWS_EXAMINED, SUM_CREATED_TMP_DISK_TABLES, "
    "SUM_SORT_MERGE_PASSES, SUM_NO_INDEX_USED "
    "FROM performance_schema.events_statements_summary_by_digest WHERE SCHEMA_NAME IS NULL "
    "OR SCHEMA_NAME NOT IN ('mysql', 'performance_schema', 'information_schema')"
)
_DIGESTS = (
    f"(SELECT {_DIGEST_COLUMNS} ORDER BY SUM_ROWS_SENT DESC LIMIT {TOP_DIGESTS}) UNION ALL "
    f"(SELECT {_DIGEST_COLUMNS} ORDER BY SUM_TIMER_WAIT DESC LIMIT {TOP_DIGESTS})"
)
# Global status and variables, fastest first: one packed row from a table (PyMySQL decodes
# ~600 rows of SHOW GLOBAL STATUS in ~3 ms of CPU, one row in 0.3 ms), else the SHOW statement.
_FIELD, _RECORD = "\x1f", "\x1e"
_PACKED_MAX = 16 * 1024 * 1024
_PACK = (
    f"SELECT GROUP_CONCAT(VARIABLE_NAME, '{_FIELD}', COALESCE(VARIABLE_VALUE, '') "
    f"SEPARATOR '{_RECORD}') FROM "
)
_SOURCES = {
    "status": (
        _PACK + "information_schema.GLOBAL_STATUS",  # MariaDB, MySQL 5.6
        _PACK + "performance_schema.global_status",  # MySQL >= 5.7
        "SHOW GLOBAL STATUS",
    ),
    "variables": (
        _PACK + "information_schema.GLOBAL_VARIABLES",
        _PACK + "performance_schema.global_variables",
        "SHOW GLOBAL VARIABLES",
    ),
}
# unknown table, no such table, I_S feature disabled (5.7), access denied: try the next source
_NO_SOURCE = {1044, 1109, 1142, 1146, 1227, 3167}
_REPLICA_QUERIES = ("SHOW ALL SLAVES STATUS", "SHOW SLAVE STATUS", "SHOW REPLICA STATUS")
# Server errors meaning "this user may not read that": the part is skipped, not the target.
_DENIED = {1044, 1142, 1227, 1370}
# ... and meaning "this server has no such statement": try the next spelling.
_UNKNOWN_STATEMENT = {1064, 1193}


class MysqlCollector(TargetCollector):
    name = "mysql"

    def __init__(self, target: MysqlTarget, connect=pymysql.connect) -> None:
        super().__init__(target.name)
        self.config = target
        self._connect_fn = connect
        self._conn: pymysql.connections.Connection | None = None
        self._password: str | None = None
        self._plan: list[tuple[str, str]] | None = None

    def _ssl(self) -> dict | None:
        tls = self.config.tls
        if tls is None:
            return None
        ssl: dict = {}
        if tls.ca_file:
            ssl["ca"] = str(tls.ca_file)
        if tls.cert_file:
            ssl["cert"] = str(tls.cert_file)
        if tls.key_file:
            ssl["key"] = str(tls.key_file)
        ssl["check_hostname"] = not tls.insecure_skip_verify
        ssl["verify_mode"] = not tls.insecure_skip_verify  # PyMySQL reads a bool here
        return ssl

    def _connection(self, timeout: float) -> pymysql.connections.Connection:
        password = read_password(self.config)
        if self._conn is not None and password == self._password:
            return self._conn
        self.close()
        host, _, port = self.config.address.rpartition(":")
        try:
            conn = self._connect_fn(
                host=host.strip("[]"),
                port=int(port),
                user=self.config.user,
                password=password or "",
                connect_timeout=timeout,
                read_timeout=timeout,
                write_timeout=timeout,
                autocommit=True,
                charset="utf8mb4",
                init_command=f"SET SESSION group_concat_max_len = {_PACKED_MAX}",
                client_flag=CLIENT.MULTI_STATEMENTS,
                ssl=self._ssl(),
                program_name="sscp-ops-exporter",
            )
        except pymysql.Error as exc:
            raise TargetUnavailable(f"{self.config.address}: {_describe(exc)}") from None
        self._conn, self._password = conn, password
        self._plan = None
        return conn

    def scrape(self, timeout: float) -> Iterable[Metric]:
        timeout = self.io_timeout(timeout, self.config.timeout)
        reused = self._conn is not None
        conn = self._connection(timeout)
        start = time.monotonic()
        try:
            return self._collect(conn)
        except pymysql.err.MySQLError as exc:
            self.close()
            # A kept connection the server has dropped (restart, wait_timeout) fails at once:
            # one more try on a new connection. A slow failure (timeout) is not retried.
            quick = time.monotonic() - start < timeout / 2
            if not (reused and quick and _connection_lost(exc)):
                raise TargetUnavailable(f"{self.config.address}: {_describe(exc)}") from None
        conn = self._connection(timeout)
        try:
            return self._collect(conn)
        except pymysql.err.MySQLError as exc:
            self.close()
            raise TargetUnavailable(f"{self.config.address}: {_describe(exc)}") from None

    def _collect(self, conn: pymysql.connections.Connection) -> list[Metric]:
        """The first scrape on a connection finds, statement by statement, what this server and
        user allow, and remembers it as the plan; later scrapes send the plan as one
        multi-statement batch: one round trip instead of four or five."""
        with conn.cursor() as cur:
            if self._plan is None:
                results, plan = self._discover(cur)
                self._plan = plan
            else:
                results = self._batch(cur, self._plan)
        return self._metrics(results)

    def _discover(self, cur) -> tuple[dict[str, object], list[tuple[str, str]]]:
        results: dict[str, object] = {}
        plan: list[tuple[str, str]] = []
        for what in ("status", "variables"):
            sql, results[what] = self._read(cur, what)
            plan.append((what, sql))
        sql, results["replica"] = self._replica_rows(cur)
        if sql is not None:
            plan.append(("replica", sql))
        cur.execute(_PROCESSLIST)
        results["processlist"] = cur.fetchone()
        plan.append(("processlist", _PROCESSLIST))
        variables = parse_packed_or_rows(results["variables"])
        if any(
            name.lower() == "performance_schema" and str(value).upper() == "ON"
            for name, value in variables
        ):
            try:
                cur.execute(_DIGESTS)
                results["digests"] = cur.fetchall()
                plan.append(("digests", _DIGESTS))
            except pymysql.err.MySQLError as exc:
                if not (exc.args and exc.args[0] in _DENIED):
                    raise
        return results, plan

    def _batch(self, cur, plan: list[tuple[str, str]]) -> dict[str, object]:
        cur.execute(";\n".join(sql for _, sql in plan))
        results: dict[str, object] = {}
        for index, (what, sql) in enumerate(plan):
            if index:
                cur.nextset()
            results[what] = self._result(cur, what, sql)
        return results

    @staticmethod
    def _result(cur, what: str, sql: str) -> object:
        if what in ("status", "variables"):
            return cur.fetchone()[0] if sql.startswith(_PACK) else cur.fetchall()
        if what == "replica":
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        if what == "processlist":
            return cur.fetchone()
        return cur.fetchall()

    def _metrics(self, results: dict[str, object]) -> list[Metric]:
        target = self.target or ""
        status = parse_server_values(parse_packed_or_rows(results["status"]), "SHOW GLOBAL STATUS")
        variables = parse_server_values(
            parse_packed_or_rows(results["variables"]), "SHOW GLOBAL VARIABLES"
        )
        out = global_status_metrics(target, status)
        out += global_variables_metrics(target, variables)
        out += replica_metrics(target, results.get("replica") or [])
        out += processlist_metrics(target, results["processlist"])
        if "digests" in results:
            out += digest_metrics(target, parse_digests(results["digests"]))
        return out

    def _read(self, cur, what: str) -> tuple[str, object]:
        """Global status or variables from the first source of :data:`_SOURCES` this server
        and user allow: (the statement, its packed value or its rows)."""
        sources = _SOURCES[what]
        for index, sql in enumerate(sources):
            try:
                cur.execute(sql)
                return sql, self._result(cur, what, sql)
            except pymysql.err.MySQLError as exc:
                code = exc.args[0] if exc.args else None
                if index == len(sources) - 1 or code not in _NO_SOURCE:
                    raise
        raise AssertionError("unreachable")

    def _replica_rows(self, cur) -> tuple[str | None, list[dict[str, object]]]:
        for sql in _REPLICA_QUERIES:
            try:
                cur.execute(sql)
                return sql, self._result(cur, "replica", sql)
            except pymysql.err.MySQLError as exc:
                code = exc.args[0] if exc.args else None
                if code in _UNKNOWN_STATEMENT:
                    continue
                if code in _DENIED:
                    log.info(
                        "replica status not readable, skipped until reconnect",
                        extra={"kv": {"target": self.target, "err": _describe(exc)}},
                    )
                    return None, []
                raise
        return None, []

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except pymysql.Error:
                pass  # already gone
            self._conn = None


# PyMySQL closed, connection killed (MariaDB), server gone away, lost connection, idle
# client disconnected (MySQL 8)
_LOST = {0, 1927, 2006, 2013, 2055, 4031}


def _connection_lost(exc: pymysql.err.MySQLError) -> bool:
    if isinstance(exc, pymysql.err.InterfaceError):
        return True
    return isinstance(exc, pymysql.err.OperationalError) and bool(exc.args) and exc.args[0] in _LOST


def _describe(exc: pymysql.Error) -> str:
    """``1045 Access denied for user 'exporter'@'host' (using password: YES)``: code and text
    as the server or PyMySQL gives them; neither ever holds the password."""
    if len(exc.args) >= 2:
        return f"{exc.args[0]} {exc.args[1]}"
    return str(exc) or type(exc).__name__


def build(config: Config) -> list[Collector]:
    return [MysqlCollector(target) for target in config.targets.mysql]
