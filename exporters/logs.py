"""Logs collector: follows the files of the ``logs:`` section and turns them into metrics and
stored security events (built only when the config has a ``logs`` section).

At each scrape every file is read from where the last scrape stopped (at most
``logs.max_bytes_per_scrape`` bytes; the rest waits for the next scrape), its lines are
analysed, the events they raise are stored, and only then is the file's position saved: a
crash re-reads lines, and the event store drops what it already has. Sample output::

    nginx_http_responses_total{status_class="2xx",target="web1"} 10234
    nginx_http_request_duration_seconds_bucket{le="1.999",target="web1"} 10190
    nginx_http_response_bytes_total{target="web1"} 8.1234e+08
    sscp_security_events_total{type="sql_injection"} 17
    sscp_login_attempts_total{log="sshd",result="failure"} 230
    mysql_slow_queries_total{target="db1"} 812
    mysql_slow_queries_digest_seconds_sum{digest="5A8E8F4BF1783F15",target="db1"} 12.4
    sscp_logs_lag_bytes{log="web1"} 0
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from exporters.core import Collector
from sscp_ops.config import Config
from sscp_ops.config.logs import LogFile, LogsConfig
from sscp_ops.config.targets import MysqlTarget
from sscp_ops.events import EVENT_TYPES, Event, EventStore
from sscp_ops.loganalysis.access import DURATION_BUCKETS, STATUS_CLASSES, AccessLogAnalyzer
from sscp_ops.loganalysis.logins import (
    KnownAddresses,
    LoginAnalyzer,
    LoginLineParser,
    MariaDBGeneralLog,
    parse_mariadb_audit_line,
    parse_sshd_line,
)
from sscp_ops.loganalysis.nginx import compile_log_format
from sscp_ops.loganalysis.slowlog import (
    Digest,
    SlowLogStream,
    export_finding,
    processlist_finding,
)
from sscp_ops.tailer import Chunk, LogFollower

log = logging.getLogger("exporter")

#: Slow-query classes exposed per target (by total time): keeps the label set bounded.
TOP_DIGESTS = 10


class _Source:
    """One followed file and its analysis."""

    def __init__(self, spec: LogFile, cfg: LogsConfig) -> None:
        self.spec = spec
        self.follower = LogFollower(
            spec.path, cfg.positions_dir / f"{spec.name}.json", cfg.max_bytes_per_scrape
        )
        self.lines = 0

    def feed(self, chunk: Chunk) -> list[Event]:
        raise NotImplementedError


class _Nginx(_Source):
    def __init__(self, spec: LogFile, cfg: LogsConfig) -> None:
        super().__init__(spec, cfg)
        self.analyzer = AccessLogAnalyzer(
            compile_log_format(spec.log_format), spec.name, cfg.exports
        )

    def feed(self, chunk: Chunk) -> list[Event]:
        return self.analyzer.feed_chunk(chunk)


class _Logins(_Source):
    def __init__(self, spec: LogFile, cfg: LogsConfig, store: EventStore, clock) -> None:
        super().__init__(spec, cfg)
        self.store = store
        self.analyzer = LoginAnalyzer(
            spec.name, cfg.logins, KnownAddresses(store.login_addresses(spec.name))
        )
        self.unparsed = 0
        if spec.kind == "login":
            assert spec.pattern is not None
            parser = LoginLineParser(spec.pattern, spec.success, spec.time_format)
            self._parse = parser.parse
        elif spec.kind == "mariadb_general":
            self._parse = MariaDBGeneralLog().parse
        elif spec.kind == "mariadb_audit":
            self._parse = parse_mariadb_audit_line
        else:
            self._parse = lambda line: parse_sshd_line(line, clock)

    def feed(self, chunk: Chunk) -> list[Event]:
        events: list[Event] = []
        for key, line in chunk:
            attempt = self._parse(line)
            if attempt is None:
                self.unparsed += self.spec.kind == "login"
                continue
            events.extend(self.analyzer.feed(attempt, key))
        self.store.save_login_addresses(self.spec.name, self.analyzer.known.take_changes())
        return events


class _SlowLog(_Source):
    def __init__(self, spec: LogFile, cfg: LogsConfig) -> None:
        super().__init__(spec, cfg)
        self.cfg = cfg
        self.stream = SlowLogStream()
        self.digest = Digest(keep_times=False)

    def feed(self, chunk: Chunk) -> list[Event]:
        events: list[Event] = []
        for i, q in enumerate(self.stream.feed(chunk.lines)):
            self.digest.add(q)
            rule = export_finding(
                q, self.cfg.exports.backup_accounts, self.cfg.exports.max_rows_sent
            )
            if rule is not None:
                events.append(
                    Event(
                        # The entry's own time and text identify it across re-reads.
                        f"{self.spec.name}:{chunk.file_id}:{q.time}:{_digest(q.query)}:{i}",
                        q.time or time.time(),
                        self.spec.name,
                        "abnormal_export",
                        rule,
                        q.host,
                        q.user,
                        f"{q.rows_sent} rows sent: {q.query}",
                    )
                )
        return events


class _Processlist:
    """Running statements of a MySQL target (the one a slow log's ``target`` names in
    ``targets.mysql``): exports in progress, seen before they reach any log. Where
    performance_schema is on, also the rows sent per account (SELECTs): an account that
    receives more than ``exports.max_rows_sent`` rows between two scrapes and is not a backup
    account raises ``abnormal_export`` (rule ``rows-sent-per-account``)."""

    QUERY = (
        "SELECT ID, USER, HOST, INFO FROM information_schema.PROCESSLIST "
        "WHERE INFO IS NOT NULL AND ID <> CONNECTION_ID()"
    )
    ROWS_SENT = (
        "SELECT USER, SUM(SUM_ROWS_SENT) FROM "
        "performance_schema.events_statements_summary_by_account_by_event_name "
        "WHERE EVENT_NAME = 'statement/sql/select' AND USER IS NOT NULL GROUP BY USER"
    )

    def __init__(self, target: MysqlTarget, cfg: LogsConfig, clock: Callable[[], float]) -> None:
        self.target = target
        self.cfg = cfg
        self.clock = clock
        self._conn = None
        self._seen: set[str] = set()
        #: account -> rows sent by its SELECTs (performance_schema), at the last scrape.
        self.rows_sent: dict[str, int] = {}
        self._perf_schema = True

    def _connect(self):
        import pymysql

        host, _, port = self.target.address.rpartition(":")
        return pymysql.connect(
            host=host.strip("[]"),
            port=int(port),
            user=self.target.user,
            password=self.target.password() or "",
            connect_timeout=self.target.timeout,
            read_timeout=self.target.timeout,
            autocommit=True,
        )

    def poll(self) -> list[Event]:
        try:
            if self._conn is None:
                self._conn = self._connect()
            with self._conn.cursor() as cur:
                cur.execute(self.QUERY)
                rows = cur.fetchall()
                sent = self._rows_sent(cur)
        except Exception as exc:  # the target may be down: the mysql collector reports that
            log.warning(
                "processlist check failed",
                extra={"kv": {"target": self.target.name, "err": type(exc).__name__}},
            )
            self.close()
            return []
        events = []
        for pid, user, host, info in rows:
            rule = processlist_finding(user, info, self.cfg.exports.backup_accounts)
            if rule is None:
                continue
            key = f"{self.target.name}:processlist:{pid}:{_digest(info)}"
            if key in self._seen:
                continue
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen.add(key)
            events.append(
                Event(
                    key,
                    self.clock(),
                    self.target.name,
                    "abnormal_export",
                    f"{rule}-running",
                    (host or "").rsplit(":", 1)[0],
                    user,
                    info,
                )
            )
        for user, total in sent.items():
            before = self.rows_sent.get(user)
            self.rows_sent[user] = total
            if before is None or total < before or user in self.cfg.exports.backup_accounts:
                continue
            if total - before > self.cfg.exports.max_rows_sent:
                now = self.clock()
                events.append(
                    Event(
                        f"{self.target.name}:rows-sent:{user}:{int(now)}",
                        now,
                        self.target.name,
                        "abnormal_export",
                        "rows-sent-per-account",
                        "",
                        user,
                        f"{total - before} rows sent to {user} since the last scrape",
                    )
                )
        return events

    def _rows_sent(self, cur) -> dict[str, int]:
        if not self._perf_schema:
            return {}
        import pymysql

        try:
            cur.execute(self.ROWS_SENT)
        except pymysql.MySQLError:  # performance_schema off or not readable: processlist only
            self._perf_schema = False
            return {}
        return {user: int(total or 0) for user, total in cur.fetchall()}

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # already broken
                pass
            self._conn = None


class LogsCollector(Collector):
    name = "logs"

    def __init__(
        self,
        cfg: LogsConfig,
        store: EventStore | None = None,
        clock: Callable[[], float] = time.time,
        mysql_targets: Iterable[MysqlTarget] = (),
    ) -> None:
        self.cfg = cfg
        self.store = store or EventStore(cfg.events_db)
        self.security = dict.fromkeys(EVENT_TYPES, 0)
        self.sources: list[_Source] = []
        for spec in cfg.files:
            if spec.kind == "nginx":
                self.sources.append(_Nginx(spec, cfg))
            elif spec.kind in ("login", "sshd", "mariadb_general", "mariadb_audit"):
                self.sources.append(_Logins(spec, cfg, self.store, clock))
            else:
                self.sources.append(_SlowLog(spec, cfg))
        slow_targets = {f.label for f in cfg.files if f.kind == "mysql_slow"}
        self.processlists = [
            _Processlist(t, cfg, clock) for t in mysql_targets if t.name in slow_targets
        ]

    def read(self, deadline: float | None = None) -> int:
        """Read what is new in every file; returns the number of new events stored."""
        stored = 0
        for source in self.sources:
            if deadline is not None and time.monotonic() > deadline:
                break
            events: list[Event] = []
            for chunk in source.follower.read():
                source.lines += len(chunk.lines)
                events.extend(source.feed(chunk))
            if events:
                stored += self.store.add(events)
                for e in events:
                    self.security[e.type] += 1
            source.follower.commit()
        for watch in self.processlists:
            events = watch.poll()
            if events:
                stored += self.store.add(events)
                for e in events:
                    self.security[e.type] += 1
        return stored

    def collect(self, timeout: float) -> Iterable[Metric]:
        self.read(time.monotonic() + timeout * 0.8)
        return self.metrics()

    def metrics(self) -> list[Metric]:
        lines = CounterMetricFamily(
            "sscp_logs_lines", "Lines read from a followed log file.", labels=["log"]
        )
        lag = GaugeMetricFamily(
            "sscp_logs_lag_bytes",
            "Bytes of a followed log file not read yet (file size minus position).",
            labels=["log"],
        )
        unparsed = CounterMetricFamily(
            "sscp_logs_unparsed_lines",
            "Lines that did not match the log's format.",
            labels=["log"],
        )
        security = CounterMetricFamily(
            "sscp_security_events",
            "Security events found in logs (attacks, abnormal logins, abnormal exports).",
            labels=["type"],
        )
        for kind, n in self.security.items():
            security.add_metric([kind], n)
        responses = CounterMetricFamily(
            "nginx_http_responses",
            "HTTP responses by status class.",
            labels=["target", "status_class"],
        )
        sent = CounterMetricFamily(
            "nginx_http_response_bytes", "Response body bytes sent.", labels=["target"]
        )
        duration = HistogramMetricFamily(
            "nginx_http_request_duration_seconds",
            "Request processing time ($request_time).",
            labels=["target"],
        )
        attempts = CounterMetricFamily(
            "sscp_login_attempts", "Login attempts by result.", labels=["log", "result"]
        )
        slow_total = CounterMetricFamily(
            "mysql_slow_queries", "Statements in the slow query log.", labels=["target"]
        )
        slow_time = CounterMetricFamily(
            "mysql_slow_queries_time_seconds",
            "Total execution time of the statements in the slow query log.",
            labels=["target"],
        )
        digest = SummaryMetricFamily(
            "mysql_slow_queries_digest_seconds",
            f"Execution time of the top {TOP_DIGESTS} statement classes (pt-query-digest "
            "fingerprints; digest = the last 16 hex digits of their checksum) by total time.",
            labels=["target", "digest"],
        )
        digest_examined = GaugeMetricFamily(
            "mysql_slow_queries_digest_rows_examined",
            "Rows examined by the top statement classes since the exporter started.",
            labels=["target", "digest"],
        )
        account_rows = CounterMetricFamily(
            "mysql_account_rows_sent",
            "Rows sent by each account's SELECTs (performance_schema; monitored targets only).",
            labels=["target", "account"],
        )
        for watch in self.processlists:
            for account, total in sorted(watch.rows_sent.items()):
                account_rows.add_metric([watch.target.name, account], total)
        for source in self.sources:
            name = source.spec.name
            lines.add_metric([name], source.lines)
            lag.add_metric([name], _lag(source.follower))
            if isinstance(source, _Nginx):
                a, target = source.analyzer, source.spec.label
                unparsed.add_metric([name], a.unparsed)
                for cls in STATUS_CLASSES:
                    responses.add_metric([target, cls], a.responses[cls])
                sent.add_metric([target], a.bytes_sent)
                cumulative, buckets = 0, []
                for bound, n in zip(DURATION_BUCKETS, a.duration_counts, strict=False):
                    cumulative += n
                    buckets.append((repr(float(bound)), cumulative))
                buckets.append(("+Inf", cumulative + a.duration_counts[-1]))
                duration.add_metric([target], buckets, round(a.duration_sum, 6))
            elif isinstance(source, _Logins):
                unparsed.add_metric([name], source.unparsed)
                for result, n in source.analyzer.attempts.items():
                    attempts.add_metric([name, result], n)
            elif isinstance(source, _SlowLog):
                target, d = source.spec.label, source.digest
                slow_total.add_metric([target], d.queries)
                slow_time.add_metric([target], round(d.total_time, 6))
                for cls in d.top(TOP_DIGESTS):
                    digest.add_metric(
                        [target, cls.checksum[-16:]], cls.count, round(cls.total_time, 6)
                    )
                    digest_examined.add_metric([target, cls.checksum[-16:]], cls.rows_examined)
        return [
            lines,
            lag,
            unparsed,
            security,
            responses,
            sent,
            duration,
            attempts,
            slow_total,
            slow_time,
            digest,
            digest_examined,
            account_rows,
        ]

    def close(self) -> None:
        for watch in self.processlists:
            watch.close()
        self.store.close()


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).hexdigest()


def _lag(follower: LogFollower) -> float:
    pos = follower.position
    try:
        size = os.stat(pos.path).st_size
    except OSError:
        return 0.0
    if Path(pos.path) != follower.path:  # still draining a rotated file
        try:
            size += os.stat(follower.path).st_size
        except OSError:
            pass
    return float(max(0, size - pos.offset))


def build(config: Config) -> list[Collector]:
    if config.logs is None or not config.logs.files:
        return []
    return [LogsCollector(config.logs, mysql_targets=config.targets.mysql)]
