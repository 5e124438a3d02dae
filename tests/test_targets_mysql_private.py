"""The mysql collector on what the shared MariaDB does not have: a private primary with
``performance_schema`` ON (statement digests) and a private replica (replica status), both
real ``mariadbd`` processes; the replica series agree with mysqld_exporter's."""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from fx_probe import make_self_signed
from fx_servers import MariaDB, mariadb_install, mariadb_server
from fx_targets import MysqlUser, mysqld_reference, parse_samples

from exporters.mysql import TOP_DIGESTS, MysqlCollector
from sscp_ops.config.base import TlsConfig
from sscp_ops.config.targets import MysqlTarget


@dataclass
class Pair:
    primary: MariaDB
    replica: MariaDB
    user: MysqlUser
    cert: Path  # the primary's self-signed TLS certificate (CN and SAN 127.0.0.1)


def replica_status(server: MariaDB) -> dict:
    conn = server.root()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW SLAVE STATUS")
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        return dict(zip(names, row, strict=True)) if row else {}
    finally:
        conn.close()


def wait_caught_up(server: MariaDB, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        status = replica_status(server)
        if status.get("Slave_SQL_Running") == "Yes" and status.get("Seconds_Behind_Master") == 0:
            return status
        time.sleep(0.2)
    raise TimeoutError(f"replica not caught up: {status.get('Last_Error')!r}")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    base = tmp_path_factory.mktemp("mariadb")
    cert, key = make_self_signed(base)
    template = base / "template"
    mariadb_install(template)
    shutil.copytree(template, base / "replica-data")
    user = MysqlUser(
        user=f"sscp_exp_{secrets.token_hex(3)}",
        password=secrets.token_urlsafe(12),
        password_file=base / "exporter.pass",
    )
    user.password_file.write_text(user.password)
    with ExitStack() as stack:
        primary = stack.enter_context(
            mariadb_server(
                base / "primary",
                "--server-id=1",
                f"--log-bin={base / 'primary' / 'binlog'}",
                "--performance-schema=ON",
                f"--ssl-cert={cert}",
                f"--ssl-key={key}",
                datadir=template,
            )
        )
        replica = stack.enter_context(
            mariadb_server(base / "replica", "--server-id=2", datadir=base / "replica-data")
        )
        repl_password = secrets.token_urlsafe(12)
        conn = primary.root()
        with conn.cursor() as cur:
            cur.execute("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY %s", (repl_password,))
            cur.execute("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'")
            account = f"'{user.user}'@'127.0.0.1'"
            cur.execute(f"CREATE USER {account} IDENTIFIED BY %s", (user.password,))
            cur.execute(f"GRANT PROCESS, REPLICATION CLIENT, SELECT ON *.* TO {account}")
            cur.execute(f"GRANT SLAVE MONITOR ON *.* TO {account}")
            cur.execute("CREATE DATABASE city")
            cur.execute("CREATE TABLE city.cases (id INT PRIMARY KEY, title VARCHAR(40))")
            cur.executemany(
                "INSERT INTO city.cases VALUES (%s, %s)", [(i, f"case {i}") for i in range(500)]
            )
        conn.close()
        conn = replica.root()
        with conn.cursor() as cur:
            cur.execute(
                "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%s, MASTER_USER='repl', "
                "MASTER_PASSWORD=%s, MASTER_USE_GTID=no",
                (primary.port, repl_password),
            )
            cur.execute("START SLAVE")
        conn.close()
        wait_caught_up(replica)
        yield Pair(primary, replica, user, cert)


def collect(server: MariaDB, user: MysqlUser) -> dict:
    collector = MysqlCollector(
        MysqlTarget(
            name="db", address=server.address, user=user.user, password_file=user.password_file
        )
    )
    try:
        # the first scrape finds what the server allows, the second sends it as one batch
        first, second = (
            {
                (s.name, frozenset(s.labels.items())): s.value
                for family in collector.collect(5)
                for s in family.samples
            }
            for _ in range(2)
        )
        assert collector._plan is not None
        stable = [k for k in first if not k[0].startswith("mysql_perf_schema_")]  # top N moves
        assert set(stable) == {k for k in second if not k[0].startswith("mysql_perf_schema_")}
        return second
    finally:
        collector.close()


def test_top_statement_digests_by_rows_sent(pair: Pair) -> None:
    conn = pair.primary.root()
    with conn.cursor() as cur:
        for _ in range(3):
            cur.execute("SELECT id, title FROM city.cases")  # the bulk read: 500 rows each
            cur.fetchall()
        cur.execute("SELECT title FROM city.cases WHERE id = 7")
        cur.execute(
            "SELECT DIGEST FROM performance_schema.events_statements_summary_by_digest "
            "WHERE DIGEST_TEXT LIKE 'SELECT %FROM `city` . `cases` '"
        )
        (bulk,) = cur.fetchone()
    conn.close()
    got = collect(pair.primary, pair.user)
    assert got[("mysql_up", frozenset({("target", "db")}))] == 1

    def series(name: str) -> dict[str, float]:
        """digest -> value, checking every label set once."""
        out = {}
        for (n, labels), value in got.items():
            if n == name:
                labels = dict(labels)
                assert set(labels) == {"target", "schema", "digest", "digest_text"}
                assert labels["digest"] not in out
                out[labels["digest"]] = value
        return out

    sent = series("mysql_perf_schema_events_statements_rows_sent_total")
    assert sent[bulk] == 1500
    assert max(sent.values()) == 1500  # the top digest by rows sent
    assert len(sent) <= 2 * TOP_DIGESTS  # top by rows sent, and top by time
    assert series("mysql_perf_schema_events_statements_total")[bulk] == 3
    assert series("mysql_perf_schema_events_statements_rows_examined_total")[bulk] >= 1500
    assert series("mysql_perf_schema_events_statements_seconds_total")[bulk] > 0
    assert series("mysql_perf_schema_events_statements_no_index_used_total")[bulk] == 3
    assert series("mysql_perf_schema_events_statements_errors_total")[bulk] == 0
    texts = {
        dict(labels)["digest"]: dict(labels)["digest_text"]
        for (n, labels) in got
        if n == "mysql_perf_schema_events_statements_total"
    }
    assert texts[bulk].startswith("SELECT ") and "`cases`" in texts[bulk]
    assert all(len(t) <= 120 for t in texts.values())


def test_replica_status(pair: Pair) -> None:
    got = collect(pair.replica, pair.user)
    labels = frozenset(
        {
            ("target", "db"),
            ("channel_name", ""),
            ("connection_name", ""),
            ("master_host", "127.0.0.1"),
            ("master_uuid", ""),
        }
    )
    assert got[("mysql_slave_status_seconds_behind_master", labels)] == 0
    assert got[("mysql_slave_status_slave_io_running", labels)] == 1
    assert got[("mysql_slave_status_slave_sql_running", labels)] == 1
    assert not [k for k in collect(pair.primary, pair.user) if k[0].startswith("mysql_slave_")]


def test_replica_status_agrees_with_mysqld_exporter(pair: Pair, tmp_path) -> None:
    with mysqld_reference(
        MysqlUser(
            pair.user.user, pair.user.password, pair.user.password_file, port=pair.replica.port
        ),
        tmp_path,
    ) as url:
        theirs = parse_samples(requests.get(url, timeout=10).text)
    ours = collect(pair.replica, pair.user)
    ours = {
        (n, frozenset(kv for kv in labels if kv[0] != "target")): v
        for (n, labels), v in ours.items()
        if n.startswith("mysql_slave_status_")
    }
    assert len(ours) == 3
    for key, value in ours.items():
        assert theirs[key] == value, key


def test_stopped_sql_thread(pair: Pair) -> None:
    conn = pair.replica.root()
    with conn.cursor() as cur:
        cur.execute("STOP SLAVE SQL_THREAD")
    try:
        got = collect(pair.replica, pair.user)
        running = {n: v for (n, _), v in got.items() if n.startswith("mysql_slave_status_")}
        assert running["mysql_slave_status_slave_sql_running"] == 0
        assert "mysql_slave_status_seconds_behind_master" not in running  # NULL while stopped
    finally:
        with conn.cursor() as cur:
            cur.execute("START SLAVE SQL_THREAD")
        conn.close()
        wait_caught_up(pair.replica)


def test_digests_agree_with_mysqld_exporter(pair: Pair, tmp_path) -> None:
    """Counters of the digests both expose: ours between two reads of theirs."""
    conn = pair.primary.root()
    with conn.cursor() as cur:
        cur.execute("USE city")  # mysqld_exporter leaves out statements without a database
        for limit in (100, 200, 300):
            cur.execute("SELECT id, title FROM cases WHERE id < %s", (limit,))
            cur.execute("SELECT COUNT(*) FROM cases")
    conn.close()
    user = MysqlUser(
        pair.user.user, pair.user.password, pair.user.password_file, port=pair.primary.port
    )
    with mysqld_reference(user, tmp_path, "--collect.perf_schema.eventsstatements") as url:
        before = parse_samples(requests.get(url, timeout=10).text)
        ours = collect(pair.primary, pair.user)
        after = parse_samples(requests.get(url, timeout=10).text)
    ours = {
        (n, frozenset(kv for kv in labels if kv[0] != "target")): v
        for (n, labels), v in ours.items()
        if n.startswith("mysql_perf_schema_events_statements_")
    }
    shared = [key for key in ours if key in after]
    assert len({name for name, _ in shared}) == 9  # every one of our names, same labels
    assert any(dict(labels)["schema"] == "city" for _, labels in shared)
    for key in shared:
        lo, hi = before.get(key, after[key]), after[key]
        assert lo <= ours[key] <= hi, (key, lo, ours[key], hi)


def test_tls(pair: Pair) -> None:
    """A user that must use TLS: up with the server's CA or with verification off; refused
    when the certificate cannot be verified against the CA given."""
    account = f"'{pair.user.user}_tls'@'127.0.0.1'"
    conn = pair.primary.root()
    with conn.cursor() as cur:
        cur.execute(f"CREATE USER {account} IDENTIFIED BY %s REQUIRE SSL", (pair.user.password,))
        cur.execute(f"GRANT PROCESS, SELECT ON *.* TO {account}")
    conn.close()

    def up(tls: TlsConfig | None) -> float:
        collector = MysqlCollector(
            MysqlTarget(
                name="db",
                address=pair.primary.address,
                user=f"{pair.user.user}_tls",
                password_file=pair.user.password_file,
                tls=tls,
            )
        )
        try:
            (up_family, *_) = collector.collect(5)
            return up_family.samples[0].value
        finally:
            collector.close()

    assert up(TlsConfig(ca_file=pair.cert)) == 1
    assert up(TlsConfig(insecure_skip_verify=True)) == 1
    # without a tls section PyMySQL still encrypts when the server offers it (unverified)
    assert up(None) == 1
    other, _ = make_self_signed(pair.primary.directory)  # a CA that did not sign the server's
    assert up(TlsConfig(ca_file=other)) == 0
