"""slow-digest against pt-query-digest on a slow log written by a real (private) MariaDB with
long_query_time=0; EXPLAIN of the index candidates on that server."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fx_logs import MariaDB, own_mariadb, run_workload
from helpers import require_binary, sscp_ops_cmd

from sscp_ops.loganalysis.slowlog import Digest, checksum, fingerprint, parse_slow_log


@pytest.fixture(scope="module")
def mariadb_slow(tmp_path_factory) -> Iterator[MariaDB]:
    with own_mariadb(tmp_path_factory.mktemp("mariadb")) as db:
        run_workload(db, rounds=300)
        yield db


@pytest.fixture(scope="module")
def pt_digest(mariadb_slow: MariaDB) -> dict:
    binary = require_binary("pt-query-digest")
    out = subprocess.run(
        [binary, "--output", "json", "--limit", "100%", str(mariadb_slow.slow_log)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout)


def digest_of(path: Path) -> Digest:
    d = Digest()
    with open(path, encoding="utf-8") as f:
        for q in parse_slow_log(f):
            d.add(q)
    return d


@pytest.mark.slow
def test_same_top10_fingerprints_and_counts_as_pt_query_digest(
    mariadb_slow: MariaDB, pt_digest: dict
) -> None:
    ours = digest_of(mariadb_slow.slow_log)
    assert ours.queries == pt_digest["global"]["query_count"] > 1000
    assert len(ours.classes) == pt_digest["global"]["unique_query_count"]
    theirs = pt_digest["classes"]  # ordered by total Query_time, as ours
    top = ours.top(10)
    assert [c.fingerprint for c in top] == [c["fingerprint"] for c in theirs[:10]]
    for mine, pt in zip(top, theirs[:10], strict=True):
        metrics = pt["metrics"]
        assert mine.checksum == pt["checksum"]
        assert mine.count == pt["query_count"]
        assert mine.total_time == pytest.approx(float(metrics["Query_time"]["sum"]), abs=1e-5)
        assert mine.max_time == pytest.approx(float(metrics["Query_time"]["max"]), abs=1e-6)
        assert mine.lock_time == pytest.approx(float(metrics["Lock_time"]["sum"]), abs=1e-5)
        assert mine.rows_examined == int(metrics["Rows_examined"]["sum"])
        assert mine.rows_sent == int(metrics["Rows_sent"]["sum"])
    # Every class, not only the top 10, has pt-query-digest's fingerprint and count.
    assert {c.fingerprint: c.count for c in ours.classes.values()} == {
        c["fingerprint"]: c["query_count"] for c in theirs
    }


@pytest.mark.slow
def test_cli_json_and_explain_confirms_full_scans(mariadb_slow: MariaDB, pt_digest) -> None:
    dsn = f"mysql://root@localhost/sscp_slow?unix_socket={mariadb_slow.socket}"
    out = subprocess.run(
        sscp_ops_cmd(
            "logs",
            "slow-digest",
            str(mariadb_slow.slow_log),
            "--top",
            "10",
            "--format",
            "json",
            "--dsn",
            dsn,
        ),
        capture_output=True,
        text=True,
        timeout=60,
        env={"MYSQL_PWD": "", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["queries"] == pt_digest["global"]["query_count"]
    assert [r["checksum"] for r in report["top"]] == [
        c["checksum"] for c in pt_digest["classes"][:10]
    ]
    scans = {r["fingerprint"]: r for r in report["top"] if r["index_candidate"]}
    like = "select count(*) from cases where title like ?"
    district = (
        "select id, title from cases where district_id = ? and status = ? "
        "order by created_at limit ?"
    )
    assert like in scans and district in scans
    for fp in (like, district):
        assert scans[fp]["confirmed"] is True, scans[fp]
        assert scans[fp]["explain"][0]["type"] == "ALL"
    # Point lookups by primary key are no candidates.
    point = next(r for r in report["top"] if r["fingerprint"].startswith("update cases"))
    assert point["index_candidate"] is None


def test_cli_table(tmp_path) -> None:
    log = tmp_path / "slow.log"
    log.write_text(SAMPLE)
    out = subprocess.run(
        sscp_ops_cmd("logs", "slow-digest", str(log), "--top", "1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "# 3 queries, 2 classes, 3.500 s total"
    assert "select * from t where a in(?+) order by b limit ?" in lines[2]
    assert len(lines) == 3


# Lines as MariaDB 10.11 writes them (log_slow_verbosity=query_plan), with a restart banner.
SAMPLE = """\
/usr/sbin/mariadbd, Version: 10.11.6-MariaDB-0+deb12u1-log (Debian 12). started with:
Tcp port: 3306  Unix socket: /run/mysqld/mysqld.sock
Time		    Id Command	Argument
# Time: 261128 21:14:26
# User@Host: app[app] @ localhost []
# Thread_id: 4  Schema: w  QC_hit: No
# Query_time: 1.500000  Lock_time: 0.000100  Rows_sent: 2  Rows_examined: 40000
# Rows_affected: 0  Bytes_sent: 144
# Full_scan: Yes  Full_join: No  Tmp_table: No  Tmp_table_on_disk: No
use `w`;
SET timestamp=1795900466;
SELECT * FROM t WHERE a IN (1,2,3)
  /* from the list page */ ORDER BY b ASC LIMIT 5;
# User@Host: app[app] @ localhost []
# Thread_id: 4  Schema: w  QC_hit: No
# Query_time: 1.000000  Lock_time: 0.000000  Rows_sent: 1  Rows_examined: 40000
SET timestamp=1795900467;
select * from t where a in (7) order by b limit 10;
# User@Host: app[app] @ localhost []
# Query_time: 1.000000  Lock_time: 0.000000  Rows_sent: 1  Rows_examined: 1
SET timestamp=1795900468;
SELECT name FROM u WHERE id = 5;
"""


def test_parse_sample_entries() -> None:
    entries = list(parse_slow_log(SAMPLE.splitlines(keepends=True)))
    assert [e.query_time for e in entries] == [1.5, 1.0, 1.0]
    first = entries[0]
    assert (first.user, first.host, first.db, first.full_scan) == ("app", "localhost", "w", True)
    assert first.query.endswith("ORDER BY b ASC LIMIT 5")
    assert entries[1].time == 1795900467.0


#: Statements with the traps of fingerprinting: quotes, escapes, comments, lists, hex, case.
TRICKY = [
    "SELECT * FROM t WHERE id = 42",
    "select  a,b\n\tFROM t where x='it''s' and y=\"z\"",
    "SELECT * FROM t WHERE id IN (1, 2,3) AND b IS NULL",
    "INSERT INTO t (a,b) VALUES (1,'x'),(2,'y')",
    "SELECT a FROM t ORDER BY a ASC, b ASC LIMIT 10, 20",
    "SELECT * FROM t1 -- trailing\nWHERE c = 0x1F",
    "CALL sp_report(1, 'x')",
    "use sscp",
    "SELECT /*!40001 SQL_NO_CACHE */ * FROM `cases`",
    # (pt-fingerprint 3.2.1 lacks pt-query-digest's TRUE/FALSE rule: the digest test covers it.)
    "SELECT a FROM t WHERE b = 1 AND c = -1.5e3",
    "SELECT a FROM t WHERE s = 'x\\'y' /* note */ LIMIT 5 OFFSET 10",
    "SELECT a FROM t1 UNION ALL SELECT a FROM t1 UNION ALL SELECT a FROM t1",
    "REPLACE INTO t VALUES (1), (2)",
    "SELECT md5_col FROM t WHERE h = 'a1b2' AND name LIKE 'abc%'",
]


@pytest.mark.parametrize("query", TRICKY)
def test_fingerprint_equals_pt_fingerprint(query: str) -> None:
    binary = require_binary("pt-fingerprint")
    out = subprocess.run(
        [binary, "--query", query], capture_output=True, text=True, timeout=30
    ).stdout.rstrip("\n")
    assert out, query
    assert fingerprint(query) == out
    assert checksum(out) == hashlib.md5(out.encode()).hexdigest().upper()


def test_fingerprint_cache_by_digit_shape_is_exact() -> None:
    # The digest remembers fingerprints per statement with digits masked; a statement that
    # differs only in digits must still get exactly fingerprint()'s answer.
    digest = Digest()
    for query in [*TRICKY, "CALL sp1(1)", "CALL sp2(1)", "SELECT a1b FROM t", "SELECT ab FROM t"]:
        for variant in (query, re.sub(r"\d", lambda m: str((int(m.group()) + 3) % 10), query)):
            assert digest._fingerprint(variant) == fingerprint(variant), variant
