"""The nginx, tomcat, redis and mysql collectors against real servers, through a real
``sscp-ops exporter`` process, and their agreement with Debian's reference exporters
(prometheus-nginx-exporter 0.11, prometheus-redis-exporter 1.45, prometheus-mysqld-exporter
0.14) scraping the same servers at the same moment.

Agreement: every series both expose (same name, same labels but ``target``) must be equal for
configuration values and slow gauges, and for counters ours must lie between two reads of
theirs taken before and after ours. Gauges that move with every connection (client counts,
memory of a busy shared MariaDB) must be present on both sides with the same labels.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import ExitStack

import pytest
import redis as redis_client
import requests
from fx_servers import redis_server
from fx_targets import (
    mysqld_reference,
    nginx_reference,
    parse_samples,
    redis_reference,
    start_exporter,
)
from helpers import promtool_check_metrics

Samples = dict[tuple[str, frozenset], float]


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory):
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        client = redis_client.Redis(host=server.host, port=server.port)
        client.mset({"a": 1, "b": 2, "c": 3})
        client.expire("a", 3600)
        client.get("a")
        client.get("missing")
        client.select(2)
        client.set("x", "y")
        client.close()
        yield server


@pytest.fixture(scope="module")
def live(nginx, tomcat, private_redis, mysql_user, tmp_path_factory):
    """Our exporter with one target of each system, and the reference exporters beside it."""
    config = f"""
exporter: {{collectors: {{host: false}}}}
targets:
  nginx: [{{name: web1, url: "{nginx.stub_status_url}"}}]
  tomcat: [{{name: app1, url: "{tomcat.status_url}", user: {tomcat.user},
            password_file: {tomcat.password_file}}}]
  redis: [{{name: cache1, address: "{private_redis.address}"}}]
  mysql: [{{name: db1, address: "{mysql_user.address}", user: {mysql_user.user},
           password_file: {mysql_user.password_file}}}]
"""
    directory = tmp_path_factory.mktemp("live")
    with ExitStack() as stack:
        ours = stack.enter_context(start_exporter(directory, config)) + "/metrics"
        refs = {
            "nginx": stack.enter_context(nginx_reference(nginx.stub_status_url)),
            "redis": stack.enter_context(redis_reference(private_redis.address)),
            "mysql": stack.enter_context(mysqld_reference(mysql_user, directory)),
        }
        yield ours, refs


def scrape(url: str) -> Samples:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    return parse_samples(response.text)


def untarget(samples: Samples, prefix: str, target: str) -> Samples:
    """Our series of one target, with the ``target`` label dropped, for comparison."""
    out: Samples = {}
    for (name, labels), value in samples.items():
        if name.startswith(prefix) and ("target", target) in labels:
            out[(name, frozenset(kv for kv in labels if kv[0] != "target"))] = value
    return out


def only(samples: Samples, prefix: str) -> Samples:
    return {k: v for k, v in samples.items() if k[0].startswith(prefix)}


def compare(
    before: Samples,
    ours: Samples,
    after: Samples,
    exact: set[str],
    volatile: set[str],
    skip: set[str] = frozenset(),
) -> int:
    """Check every shared series; return how many were compared."""
    our_names = {n for n, _ in ours}
    their_names = {n for n, _ in after}
    shared = (our_names & their_names) - skip
    problems = []
    compared = 0
    for name in sorted(shared):
        mine = {labels: v for (n, labels), v in ours.items() if n == name}
        theirs_a = {labels: v for (n, labels), v in after.items() if n == name}
        theirs_b = {labels: v for (n, labels), v in before.items() if n == name}
        if set(mine) != set(theirs_a):
            problems.append(
                f"{name}: labels ours={sorted(map(sorted, mine))[:3]} "
                f"theirs={sorted(map(sorted, theirs_a))[:3]}"
            )
            continue
        for labels, value in mine.items():
            compared += 1
            a = theirs_a[labels]
            b = theirs_b.get(labels, a)
            if name in volatile:
                continue
            if name in exact:
                ok = value in (a, b)
            else:
                lo, hi = min(a, b), max(a, b)
                ok = lo - 1e-9 * abs(lo) <= value <= hi + 1e-9 * abs(hi)
            if not ok:
                problems.append(f"{name}{dict(labels)}: ours={value} theirs={b}..{a}")
    assert not problems, "\n".join(problems)
    return compared


# ---------------------------------------------------------------------------- nginx


def test_nginx_up_with_real_values(live, nginx) -> None:
    ours_url, _ = live
    first = untarget(scrape(ours_url), "nginx_", "web1")
    requests.get(nginx.url("/missing.html"), timeout=5)
    second = untarget(scrape(ours_url), "nginx_", "web1")
    key = ("nginx_http_requests_total", frozenset())
    assert second[("nginx_up", frozenset())] == 1
    assert second[key] >= first[key] + 2  # our scrape and the 404 in between
    assert second[("nginx_connections_writing", frozenset())] >= 1  # the stub_status answer
    assert second[("nginx_connections_accepted", frozenset())] >= 1


def test_nginx_agrees_with_reference(live) -> None:
    ours_url, refs = live
    before = only(scrape(refs["nginx"]), "nginx_")
    ours = untarget(scrape(ours_url), "nginx_", "web1")
    after = only(scrape(refs["nginx"]), "nginx_")
    # The version (from the Server header of the real nginx) is ours alone.
    versions = [dict(labels)["version"] for n, labels in ours if n == "nginx_version_info"]
    assert len(versions) == 1 and re.fullmatch(r"1\.\d+\.\d+", versions[0]), versions
    ours = {k: v for k, v in ours.items() if k[0] != "nginx_version_info"}
    assert {n for n, _ in ours} == {n for n, _ in after}  # the whole set of names
    compared = compare(
        before,
        ours,
        after,
        exact={"nginx_up"},
        # connections held open by whichever exporter is not scraping at this moment
        volatile={
            "nginx_connections_active",
            "nginx_connections_reading",
            "nginx_connections_writing",
            "nginx_connections_waiting",
        },
    )
    assert compared == 8


# ---------------------------------------------------------------------------- tomcat


def test_tomcat_up_with_real_values(live, tomcat) -> None:
    ours_url, _ = live
    first = untarget(scrape(ours_url), "tomcat_", "app1")
    second = untarget(scrape(ours_url), "tomcat_", "app1")
    assert second[("tomcat_up", frozenset())] == 1
    conn = frozenset({("connector", f"http-nio-127.0.0.1-{tomcat.port}")})
    assert second[("tomcat_threads_max", conn)] == tomcat.max_threads
    assert 1 <= second[("tomcat_threads_busy", conn)] <= second[("tomcat_threads_current", conn)]
    assert second[("tomcat_requests_total", conn)] >= first[("tomcat_requests_total", conn)] + 1
    assert second[("tomcat_sent_bytes_total", conn)] > first[("tomcat_sent_bytes_total", conn)]
    assert second[("tomcat_jvm_memory_max_bytes", frozenset())] == 256 * 1024 * 1024  # -Xmx256m
    total = second[("tomcat_jvm_memory_total_bytes", frozenset())]
    assert 0 < second[("tomcat_jvm_memory_free_bytes", frozenset())] < total
    assert any(n == "tomcat_jvm_memory_pool_used_bytes" for n, _ in second)
    # The version, from the manager's HTML status page of the real Tomcat (read once an hour).
    versions = [dict(labels)["version"] for n, labels in second if n == "tomcat_version_info"]
    assert len(versions) == 1 and re.fullmatch(r"\d+\.\d+\.\d+", versions[0]), versions


# ---------------------------------------------------------------------------- redis

REDIS_EXACT = {
    "redis_up",
    "redis_memory_max_bytes",
    "redis_db_keys",
    "redis_db_keys_expiring",
    "redis_connected_slaves",
    "redis_blocked_clients",
    "redis_rdb_last_save_timestamp_seconds",
    "redis_rdb_last_bgsave_status",
    "redis_aof_last_bgrewrite_status",
    "redis_rdb_changes_since_last_save",
    "redis_rdb_bgsave_in_progress",
    "redis_aof_enabled",
    "redis_loading_dump_file",
    "redis_slowlog_length",
    "redis_process_id",
    "redis_pubsub_channels",
    "redis_latest_fork_seconds",
    "redis_instance_info",
    "redis_master_repl_offset",
    "redis_config_maxclients",
    "redis_aof_last_write_status",
}
# redis_exporter has these only with --include-system-metrics (the reference runs without)
REDIS_SYSTEM = {"redis_total_system_memory_bytes"}
# each exporter's own connection and its buffers move these between reads
REDIS_VOLATILE = {
    "redis_connected_clients",
    "redis_memory_used_bytes",
    "redis_memory_used_rss_bytes",
    "redis_memory_used_peak_bytes",
    "redis_memory_used_lua_bytes",
    "redis_mem_fragmentation_ratio",
    "redis_db_avg_ttl_seconds",  # counts down while we read
}
REDIS_LISTED = (
    "redis_up",
    "redis_uptime_in_seconds",
    "redis_connected_clients",
    "redis_blocked_clients",
    "redis_memory_used_bytes",
    "redis_memory_max_bytes",
    "redis_memory_used_rss_bytes",
    "redis_mem_fragmentation_ratio",
    "redis_commands_processed_total",
    "redis_keyspace_hits_total",
    "redis_keyspace_misses_total",
    "redis_evicted_keys_total",
    "redis_expired_keys_total",
    "redis_rejected_connections_total",
    "redis_db_keys",
    "redis_connected_slaves",
    "redis_rdb_last_save_timestamp_seconds",
    "redis_rdb_last_bgsave_status",
    "redis_slowlog_length",
)


def test_redis_up_with_real_values(live) -> None:
    ours_url, _ = live
    ours = untarget(scrape(ours_url), "redis_", "cache1")
    for name in REDIS_LISTED:
        assert any(n == name for n, _ in ours), f"{name} missing"
    assert ours[("redis_up", frozenset())] == 1
    assert ours[("redis_db_keys", frozenset({("db", "db0")}))] == 3
    assert ours[("redis_db_keys_expiring", frozenset({("db", "db0")}))] == 1
    assert ours[("redis_db_keys", frozenset({("db", "db2")}))] == 1
    assert ours[("redis_keyspace_hits_total", frozenset())] >= 1
    assert ours[("redis_keyspace_misses_total", frozenset())] >= 1
    assert ours[("redis_memory_used_bytes", frozenset())] > 100_000


def test_redis_agrees_with_reference(live) -> None:
    ours_url, refs = live
    before = only(scrape(refs["redis"]), "redis_")
    ours = untarget(scrape(ours_url), "redis_", "cache1")
    after = only(scrape(refs["redis"]), "redis_")
    missing = sorted({n for n, _ in ours} - {n for n, _ in after} - REDIS_SYSTEM)
    assert not missing, f"names redis_exporter does not have: {missing}"
    compared = compare(before, ours, after, exact=REDIS_EXACT, volatile=REDIS_VOLATILE)
    assert compared >= 50


# ---------------------------------------------------------------------------- mysql

# Gauges of the shared MariaDB that other sessions (and both exporters' own connections) move.
MYSQL_VOLATILE_PREFIXES = (
    "mysql_global_status_threads_",
    "mysql_global_status_open",
    "mysql_global_status_memory_used",
    "mysql_global_status_buffer_pool_",
    "mysql_global_status_innodb_buffer_pool_bytes_",
    "mysql_global_status_innodb_buffer_pool_pages_",
    "mysql_global_status_innodb_data_pending",
    "mysql_global_status_innodb_os_log_pending",
    "mysql_global_status_innodb_row_lock_current_waits",
    "mysql_global_status_innodb_history_list_length",
    "mysql_global_status_innodb_checkpoint_age",
    "mysql_global_status_innodb_mem_",
    "mysql_global_status_innodb_num_open_files",
    "mysql_global_status_innodb_async_",
    "mysql_global_status_innodb_master_thread_active_loops",
    "mysql_global_status_innodb_row_lock_time_",
    "mysql_global_status_innodb_undo_truncations",
    "mysql_global_status_max_used_connections",
    "mysql_global_status_last_query_cost",
    "mysql_global_status_qcache_free",
    "mysql_global_status_qcache_queries_in_cache",
    "mysql_global_status_qcache_total_blocks",
    "mysql_global_status_slave_",
    "mysql_global_status_tc_log_",
    "mysql_global_status_slaves_",
    "mysql_global_status_rows_tmp_read",
    "mysql_global_status_prepared_stmt_count",
    "mysql_global_status_delayed_insert_threads",
    "mysql_global_status_not_flushed_delayed_rows",
    "mysql_global_status_max_statement_time_exceeded",
    "mysql_global_status_max_used_connections_time",
    "mysql_global_status_memory_",
    "mysql_global_status_innodb_lsn_",
    "mysql_global_status_innodb_log_",
    "mysql_global_status_key_blocks_",
    "mysql_global_status_rpl_",
    "mysql_global_status_uptime_since_flush_status",
)


def test_mysql_up_with_real_values(live, mysql_user) -> None:
    ours_url, _ = live
    ours = untarget(scrape(ours_url), "mysql_", "db1")
    none = frozenset()
    assert ours[("mysql_up", none)] == 1
    assert ours[("mysql_global_status_threads_connected", none)] >= 1  # ours, at least
    assert ours[("mysql_global_status_uptime", none)] > 0
    assert ours[("mysql_global_variables_max_connections", none)] > 0
    assert ours[("mysql_global_variables_innodb_buffer_pool_size", none)] > 0
    assert ("mysql_global_variables_long_query_time", none) in ours
    assert ("mysql_global_variables_slow_query_log", none) in ours
    assert ours[("mysql_global_status_commands_total", frozenset({("command", "select")}))] > 0
    assert ours[("mysql_info_schema_long_running_queries", none)] >= 0
    assert ("mysql_info_schema_longest_query_seconds", none) in ours
    assert any(n == "mysql_version_info" for n, _ in ours)
    # not a replica here: no replica series; performance_schema is OFF: no digests
    assert not any(n.startswith(("mysql_slave_status_", "mysql_perf_schema_")) for n, _ in ours)


def test_mysql_long_running_query_is_seen(live, mysql_server) -> None:
    """A running statement shows up in the process-list series: its age in the longest, and in
    the count once it is older than the server's long_query_time."""
    ours_url, _ = live
    threshold = untarget(scrape(ours_url), "mysql_global_variables_", "db1")[
        ("mysql_global_variables_long_query_time", frozenset())
    ]
    worker = mysql_server.root()
    sleeper = threading.Thread(
        target=lambda: worker.cursor().execute("SELECT SLEEP(%s)", (min(threshold, 30) + 3,))
    )
    sleeper.start()
    try:
        time.sleep(2)
        ours = untarget(scrape(ours_url), "mysql_info_schema_", "db1")
        assert ours[("mysql_info_schema_longest_query_seconds", frozenset())] >= 1
        if threshold <= 1:
            assert ours[("mysql_info_schema_long_running_queries", frozenset())] >= 1
    finally:
        sleeper.join()
        worker.close()


def test_mysql_agrees_with_reference(live) -> None:
    ours_url, refs = live
    before = only(scrape(refs["mysql"]), "mysql_")
    ours = untarget(scrape(ours_url), "mysql_", "db1")
    after = only(scrape(refs["mysql"]), "mysql_")
    families = ("mysql_global_status_", "mysql_global_variables_")
    for prefix in families:
        mine = {n for n, _ in ours if n.startswith(prefix)}
        theirs = {n for n, _ in after if n.startswith(prefix)}
        assert mine == theirs, (prefix, sorted(mine ^ theirs)[:20])
    volatile = {n for n, _ in ours if n.startswith(MYSQL_VOLATILE_PREFIXES)}
    exact = {n for n, _ in ours if n.startswith("mysql_global_variables_")}
    exact |= {"mysql_up", "mysql_version_info", "mysql_transaction_isolation"}
    compared = compare(before, ours, after, exact=exact, volatile=volatile)
    assert compared >= 900


# ---------------------------------------------------------------------------- whole output


def test_full_output_passes_promtool_check_metrics(live) -> None:
    """`promtool check metrics` on everything we expose. The one class of findings let through
    is mysqld_exporter's own names built from server variable names
    (``mysql_global_variables_max_error_count``...), which must stay as they are."""
    ours_url, _ = live
    text = requests.get(ours_url, timeout=10).text
    result = promtool_check_metrics(text)
    findings = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and not line.startswith("mysql_global_variables_")
    ]
    assert not findings, "\n".join(findings)  # a parse error would be a finding too


def test_every_series_of_a_remote_system_has_a_target(live) -> None:
    ours_url, _ = live
    samples = scrape(ours_url)
    remote = [k for k in samples if k[0].startswith(("nginx_", "tomcat_", "redis_", "mysql_"))]
    assert len(remote) > 1000
    without = [k for k in remote if "target" not in dict(k[1])]
    assert not without, without[:5]
