"""Parsers of the remote-system collectors, on captured real responses (tests/fixtures/)."""

from __future__ import annotations

import pytest
from helpers import FIXTURES

from exporters.core import ParseError
from exporters.mysql import (
    global_status_metrics,
    global_variables_metrics,
    parse_server_values,
    parse_value,
    replica_metrics,
)
from exporters.nginx import StubStatus, parse_server_version, parse_stub_status
from exporters.redis import KeyspaceDb, info_metrics, parse_redis_info
from exporters.tomcat import parse_tomcat_status, parse_tomcat_version, status_metrics


def read(area: str, name: str) -> str:
    return (FIXTURES / area / name).read_text()


def samples(metrics) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for fam in metrics for s in fam.samples}


# ---------------------------------------------------------------------------- nginx

STUB = read("nginx", "stub_status.txt")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            STUB,
            StubStatus(
                active=2, accepted=4, handled=4, requests=5, reading=0, writing=1, waiting=1
            ),
        ),
        (
            "Active connections: 291 \nserver accepts handled requests\n 16630948 16630948 "
            "31070465 \nReading: 6 Writing: 179 Waiting: 106 \n",
            StubStatus(291, 16630948, 16630948, 31070465, 6, 179, 106),
        ),
        (STUB.replace("\n", "\r\n"), parse_stub_status(STUB)),
    ],
)
def test_parse_stub_status(text: str, expected: StubStatus) -> None:
    assert parse_stub_status(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        read("nginx", "error_page.html"),
        "",
        STUB.splitlines(keepends=True)[0],  # truncated after the first line
        "".join(STUB.splitlines(keepends=True)[:3]),
        STUB.replace("Waiting", "Sleeping"),
        STUB + "Active connections: 1\n",
    ],
    ids=["html", "empty", "one-line", "three-lines", "renamed", "trailing"],
)
def test_parse_stub_status_rejects_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse_stub_status(text)


# ---------------------------------------------------------------------------- tomcat

TOMCAT_XML = read("tomcat", "status.xml")


def test_parse_tomcat_status_captured() -> None:
    status = parse_tomcat_status(TOMCAT_XML)
    assert (status.memory_free, status.memory_total, status.memory_max) == (
        45564944,
        69206016,
        268435456,
    )
    (conn,) = status.connectors
    assert conn.name == "http-nio-127.0.0.1-40789"  # Tomcat quotes the name; we do not
    assert (conn.max_threads, conn.current_threads, conn.busy_threads) == (50, 10, 1)
    assert (conn.requests, conn.errors, conn.bytes_sent) == (1, 0, 1499)
    assert conn.processing_seconds == pytest.approx(0.057)
    pools = {p.name: p for p in status.pools}
    assert pools["G1 Old Gen"].max == 268435456
    assert pools["G1 Eden Space"].max is None  # usageMax -1: unbounded


def test_tomcat_status_metrics_are_labelled() -> None:
    got = samples(status_metrics("app1", parse_tomcat_status(TOMCAT_XML)))
    conn = frozenset({("target", "app1"), ("connector", "http-nio-127.0.0.1-40789")})
    assert got[("tomcat_threads_max", conn)] == 50
    assert got[("tomcat_threads_busy", conn)] == 1
    assert got[("tomcat_requests_total", conn)] == 1
    assert got[("tomcat_request_processing_seconds_total", conn)] == pytest.approx(0.057)
    assert got[("tomcat_jvm_memory_max_bytes", frozenset({("target", "app1")}))] == 268435456
    assert all(dict(labels).get("target") == "app1" for _, labels in got)


@pytest.mark.parametrize(
    "text",
    [
        TOMCAT_XML[: len(TOMCAT_XML) // 2],  # cut in the middle
        read("nginx", "error_page.html"),
        "",
        "<status><jvm><memory free='1' total='2' max='3'/></jvm></status>",  # no connector
        TOMCAT_XML.replace('maxThreads="50"', 'maxThreads="many"'),
        TOMCAT_XML.replace("<requestInfo ", "<requestinfo "),
        "<html><body>not it</body></html>",
    ],
    ids=[
        "truncated",
        "html-404",
        "empty",
        "no-connector",
        "not-a-number",
        "no-requestinfo",
        "other-root",
    ],
)
def test_parse_tomcat_status_rejects_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse_tomcat_status(text)


# ---------------------------------------------------------------------------- redis

REDIS_INFO = read("redis", "info.txt")


def test_parse_redis_info_captured() -> None:
    info = parse_redis_info(REDIS_INFO)
    assert info.fields["redis_version"] == "7.0.15"
    assert info.fields["rdb_last_bgsave_status"] == "ok"
    assert info.keyspace == {
        "db0": KeyspaceDb(keys=3, expires=1, avg_ttl_ms=99950),
        "db3": KeyspaceDb(keys=1, expires=0, avg_ttl_ms=0),
    }


def test_redis_info_metrics_names_and_values() -> None:
    info = parse_redis_info(REDIS_INFO)
    got = samples(info_metrics("cache1", info, slowlog_length=2, databases=16))
    t = frozenset({("target", "cache1")})
    assert got[("redis_memory_used_bytes", t)] == float(info.fields["used_memory"])
    assert got[("redis_keyspace_hits_total", t)] == float(info.fields["keyspace_hits"])
    assert got[("redis_rdb_last_bgsave_status", t)] == 1
    assert got[("redis_slowlog_length", t)] == 2
    assert got[("redis_db_keys", t | {("db", "db0")})] == 3
    assert got[("redis_db_keys", t | {("db", "db15")})] == 0  # empty, listed like redis_exporter
    assert got[("redis_db_avg_ttl_seconds", t | {("db", "db0")})] == pytest.approx(99.95)
    assert len([k for k in got if k[0] == "redis_db_keys"]) == 16
    # what the alerts read: clients against maxclients, memory against the host's
    assert got[("redis_config_maxclients", t)] == 10000
    assert got[("redis_total_system_memory_bytes", t)] == float(info.fields["total_system_memory"])
    assert got[("redis_aof_last_write_status", t)] == 1
    assert ("redis_master_link_up", t) not in got  # a master has no link to a master


def test_redis_replica_with_its_master_gone() -> None:
    # captured from a redis-server 7.0 started with --replicaof a port nobody listens on
    info = parse_redis_info(read("redis", "info_replica.txt"))
    got = samples(info_metrics("replica1", info, None, None))
    t = frozenset({("target", "replica1")})
    assert info.fields["role"] == "slave"
    assert got[("redis_master_link_up", t)] == 0
    assert got[("redis_connected_slaves", t)] == 0


def test_redis_master_link_up() -> None:
    text = read("redis", "info_replica.txt").replace(
        "master_link_status:down", "master_link_status:up"
    )
    got = samples(info_metrics("r", parse_redis_info(text), None, None))
    assert got[("redis_master_link_up", frozenset({("target", "r")}))] == 1


def test_redis_info_without_config_lists_only_databases_with_keys() -> None:
    got = samples(info_metrics("c", parse_redis_info(REDIS_INFO), None, None))
    assert {dict(k[1])["db"] for k in got if k[0] == "redis_db_keys"} == {"db0", "db3"}
    assert not [k for k in got if k[0] == "redis_slowlog_length"]


@pytest.mark.parametrize(
    "text",
    [
        REDIS_INFO[: len(REDIS_INFO) // 4],  # truncated reply
        REDIS_INFO[: REDIS_INFO.index("used_memory:") + 6],  # cut inside a line
        "",
        "-ERR unknown command\r\n",
        REDIS_INFO.replace("db0:keys=3,expires=1", "db0:keys=three,expires=1"),
    ],
    ids=["truncated", "cut-line", "empty", "error", "bad-keyspace"],
)
def test_parse_redis_info_rejects_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse_redis_info(text)


def test_redis_info_metrics_reject_non_numeric_value() -> None:
    info = parse_redis_info(REDIS_INFO.replace("used_memory:", "used_memory:x", 1))
    with pytest.raises(ParseError):
        info_metrics("c", info, None, None)


# ---------------------------------------------------------------------------- mysql


def tsv_rows(name: str) -> list[tuple[str, str]]:
    return [tuple(line.split("\t", 1)) for line in read("mysql", name).splitlines()]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("151", 151.0),
        ("10.000000", 10.0),
        ("ON", 1.0),
        ("OFF", 0.0),
        ("Yes", 1.0),
        ("Connecting", 0.0),
        ("Disconnected", 0.0),
        ("Primary", 1.0),
        ("2026-11-28 20:56:00", 1795899360.0),
        ("Sep 09 22:38:00 2027 GMT", 1820529480.0),
        ("REPEATABLE-READ", None),
        ("", None),
        (None, None),
        (b"42", 42.0),
        (7, 7.0),
    ],
)
def test_parse_value(raw, expected) -> None:
    assert parse_value(raw) == expected


def test_global_status_renaming_on_captured_rows() -> None:
    status = parse_server_values(tsv_rows("global_status.tsv"))
    got = samples(global_status_metrics("db1", status))
    t = ("target", "db1")
    assert got[("mysql_global_status_commands_total", frozenset({t, ("command", "select")}))] >= 0
    assert ("mysql_global_status_handlers_total", frozenset({t, ("handler", "read_first")})) in got
    assert (
        "mysql_global_status_buffer_pool_pages",
        frozenset({t, ("state", "free")}),
    ) in got
    assert ("mysql_global_status_buffer_pool_dirty_pages", frozenset({t})) in got
    assert (
        "mysql_global_status_buffer_pool_page_changes_total",
        frozenset({t, ("operation", "flushed")}),
    ) in got
    assert (
        "mysql_global_status_connection_errors_total",
        frozenset({t, ("error", "max_connections")}),
    ) in got
    assert got[("mysql_global_status_threads_connected", frozenset({t}))] >= 1
    assert got[("mysql_global_status_wsrep_cluster_status", frozenset({t}))] == 0  # Disconnected
    names = {name for name, _ in got}
    assert "mysql_global_status_innodb_buffer_pool_pages_total" not in names
    assert not any("com_" in n or "rpl_status" in n for n in names)  # renamed / text dropped


def test_global_variables_on_captured_rows() -> None:
    variables = parse_server_values(tsv_rows("global_variables.tsv"), "SHOW GLOBAL VARIABLES")
    got = samples(global_variables_metrics("db1", variables))
    t = frozenset({("target", "db1")})
    assert got[("mysql_global_variables_max_connections", t)] == 151
    assert got[("mysql_global_variables_long_query_time", t)] == 10
    assert got[("mysql_global_variables_slow_query_log", t)] == 0
    assert got[("mysql_global_variables_innodb_buffer_pool_size", t)] > 0
    version = [labels for name, labels in got if name == "mysql_version_info"]
    assert dict(version[0])["version"].startswith("10.11")
    assert ("mysql_transaction_isolation", t | {("level", "REPEATABLE-READ")}) in got


@pytest.mark.parametrize(
    "rows",
    [[], [("Uptime",)], [("Uptime", "1", "extra")], [(None, "1")]],
    ids=["empty", "short", "long", "no-name"],
)
def test_parse_server_values_rejects_garbage(rows) -> None:
    with pytest.raises(ParseError):
        parse_server_values(rows)


def test_replica_metrics_mysql8_and_mariadb_spellings() -> None:
    rows = [
        {
            "Connection_name": "",
            "Master_Host": "10.0.0.5",
            "Slave_IO_Running": "Yes",
            "Slave_SQL_Running": "Yes",
            "Seconds_Behind_Master": 3,
        },
        {
            "Channel_Name": "",
            "Source_Host": "10.0.0.6",
            "Replica_IO_Running": "Connecting",
            "Replica_SQL_Running": "No",
            "Seconds_Behind_Source": None,
        },
    ]
    got = samples(replica_metrics("db1", rows))
    first = frozenset(
        {
            ("target", "db1"),
            ("channel_name", ""),
            ("connection_name", ""),
            ("master_host", "10.0.0.5"),
            ("master_uuid", ""),
        }
    )
    second = first - {("master_host", "10.0.0.5")} | {("master_host", "10.0.0.6")}
    assert got[("mysql_slave_status_seconds_behind_master", first)] == 3
    assert got[("mysql_slave_status_slave_io_running", second)] == 0
    assert ("mysql_slave_status_seconds_behind_master", second) not in got  # NULL: left out
    assert replica_metrics("db1", []) == []


def test_parse_digests_keeps_one_row_per_digest() -> None:
    from exporters.mysql import parse_digests

    row = ("city", "abc", "SELECT ? ", 3, 2_000_000_000_000, 0, 1, 1500, 1500, 0, 0, 3)
    later = ("city", "abc", "SELECT ? ", 4, 2_100_000_000_000, 0, 1, 2000, 2000, 0, 0, 4)
    (digest,) = parse_digests([row, later])
    assert (digest.count, digest.rows_sent, digest.no_index_used) == (3, 1500, 3)
    assert digest.seconds == pytest.approx(2.0)  # picoseconds
    with pytest.raises(ParseError):
        parse_digests([row[:5]])
    with pytest.raises(ParseError):
        parse_digests([(*row[:3], "many", *row[4:])])


@pytest.mark.parametrize(
    ("server", "version"),
    [("nginx/1.22.1", "1.22.1"), ("nginx/1.25.3 (Ubuntu)", "1.25.3"), ("nginx", None), ("", None)],
)
def test_nginx_version_from_server_header(server: str, version: str | None) -> None:
    # "nginx" alone: server_tokens off hides the version.
    assert parse_server_version(server) == version


def test_tomcat_version_from_the_html_status_page() -> None:
    # Captured from Debian's Tomcat 10 manager (/manager/status, role manager-status).
    html = (FIXTURES / "tomcat" / "status.html").read_text()
    assert parse_tomcat_version(html) == "10.1.60"
    with pytest.raises(ParseError):
        parse_tomcat_version("<html>Forbidden</html>")
