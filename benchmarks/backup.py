#!/usr/bin/env python3
"""Backup and drill throughput against the plain tools, measured in the same run.

    .venv/bin/python benchmarks/backup.py --size-mb 1024

Generates ``sscp_backup_bench_<hex>`` (SQL dump of about --size-mb MB) on 127.0.0.1:3306
(root, no password), then times, on the same data:

* reference backup: ``mariadb-dump --single-transaction ... | gzip -6 > file``
* also: ``mariadb-dump ... | zstd -3 > file`` (same compressor as ours)
* ours: ``backup run`` with one local location (dump + zstd + sha256 + row counts + config
  tarball + manifest + fsync + rename), and with the 2 local + offsite + offline copies, plain
  and with the offsite and offline copies age-encrypted (the encryption overhead)
* reference restore: ``zstd -dc <our dump> | mariadb scratch`` (a plain restore of the same dump)
* ours: ``backup drill`` (re-hash, restore, row counts of every table, config compare, drop)
  into a throwaway server it starts itself (the default), and into a scratch database on the
  running server (``drill.server: shared``)

Throughput is raw SQL megabytes per second. The database and scratch databases are dropped.
"""

from __future__ import annotations

import argparse
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sscp_ops.backup.catalogue import Catalogue  # noqa: E402
from sscp_ops.backup.drill import drill_set  # noqa: E402
from sscp_ops.backup.run import run_set  # noqa: E402
from sscp_ops.config import parse_config  # noqa: E402

try:
    import pyrage
except ImportError:
    sys.exit("pyrage is needed: pip install 'sscp-ops[backup-encryption]'")

ROOT = {"host": "127.0.0.1", "port": 3306, "user": "root"}
DUMP = "mariadb-dump -h127.0.0.1 -P3306 -uroot --single-transaction --routines --events --triggers"


def sh(cmd: str) -> float:
    start = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True)
    return time.perf_counter() - start


def generate(db: str, size_mb: int) -> None:
    conn = pymysql.connect(**ROOT, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
        cur.execute(f"USE `{db}`")
        cur.execute(
            "CREATE TABLE cases (id BIGINT PRIMARY KEY AUTO_INCREMENT, inspector INT,"
            " title VARCHAR(200), body TEXT, amount DECIMAL(12,2), created DATETIME)"
        )
        cur.execute(
            "CREATE TABLE inspectors (id INT PRIMARY KEY, name VARCHAR(50), phone CHAR(11))"
        )
        cur.executemany(
            "INSERT INTO inspectors VALUES (%s, %s, %s)",
            [(i, f"检查员{i}", f"138{i:08d}") for i in range(2000)],
        )
        # Seed rows with random text (so compression has real work), then grow server-side
        # from the seed table (never from the table itself, which would need a temporary table).
        cur.execute("CREATE TABLE seed LIKE cases")
        cur.execute(
            "INSERT INTO seed (inspector, title, body, amount, created)"
            " SELECT seq % 2000, CONCAT('案件 ', MD5(seq)),"
            " CONCAT_WS(' ', ELT(1 + seq % 5, '市场监管 投诉 食品安全', '企业 许可 检查',"
            " '价格 举报 处理中', '特种设备 抽查 合格', '广告 违法 立案'),"
            " SHA2(CONCAT(seq, RAND()), 256), ELT(1 + seq % 3, '已受理', '已办结', '待核查'),"
            " MD5(CONCAT(RAND(), seq)), SHA2(CONCAT(RAND(), seq), 512)),"
            " ROUND(RAND() * 1000000, 2), NOW() - INTERVAL seq MINUTE FROM seq_1_to_20000"
        )
        per_row = 330  # bytes of SQL per row, measured
        target_rows = size_mb * 1000 * 1000 // per_row
        rows = 0
        while rows < target_rows:
            batch = min(20_000, target_rows - rows)
            cur.execute(
                "INSERT INTO cases (inspector, title, body, amount, created)"
                " SELECT inspector, title,"
                " CONCAT_WS(' ', MD5(CONCAT(RAND(), id)), SUBSTRING(body, 34)),"
                f" ROUND(RAND() * 1000000, 2), created FROM seed LIMIT {batch}"
            )
            rows += batch
        cur.execute("DROP TABLE seed")
    conn.close()


def drop(db: str) -> None:
    conn = pymysql.connect(**ROOT, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="approximate SQL dump size")
    ap.add_argument("--repeat", type=int, default=2, help="rounds; the fastest of each counts")
    args = ap.parse_args()
    db = f"sscp_backup_bench_{secrets.token_hex(4)}"
    work = Path(tempfile.mkdtemp(prefix="sscp-backup-bench-"))
    try:
        t = time.perf_counter()
        generate(db, args.size_mb)
        print(f"generated {db} in {time.perf_counter() - t:.1f}s", flush=True)
        for name in ("a", "b", "offsite", "offline", "ref", "one"):
            (work / name).mkdir()
        etc = work / "etc"
        etc.mkdir()
        (etc / "nginx.conf").write_text("worker_processes 2;\n")

        identity = pyrage.x25519.Identity.generate()
        (work / "drill.key").write_text(f"{identity}\n")

        def config(locations: str, extra: str = "", server: str = "throwaway") -> str:
            return (
                f"backup:\n  catalog: {work}/catalog.db\n  sets:\n"
                f"    - name: bench\n"
                f"      mysql: {{address: '127.0.0.1:3306', user: root, databases: [{db}]}}\n"
                f"      config_paths: [{etc}]\n"
                f"      retention: {{daily: 1, weekly: 0, monthly: 0}}\n"
                f"      locations: [{locations}]\n"
                f"      drill: {{server: {server}, address: '127.0.0.1:3306', user: root,"
                f" identity_file: {work}/drill.key}}\n{extra}"
            )

        one = parse_config(config(f"{{kind: local, path: {work}/one}}")).backup
        locations = (
            f"{{kind: local, path: {work}/a}}, {{kind: local, path: {work}/b}},"
            f" {{kind: offsite, path: {work}/offsite}}, {{kind: offline, path: {work}/offline}}"
        )
        four = parse_config(config(locations)).backup
        sealed = f"      encryption: {{recipients: [{identity.to_public()}]}}\n"
        four_enc = parse_config(config(locations, sealed)).backup
        shared = parse_config(config(locations, server="shared")).backup
        cat = Catalogue(work / "catalog.db")
        keys = ("gzip", "zstd", "ours1", "ours4", "ours4enc", "restore", "drill", "drillshared")
        best = dict.fromkeys(keys, float("inf"))
        cpu = dict.fromkeys(keys, float("inf"))

        def cpu_now() -> float:
            # This process plus finished children (mariadb-dump, gzip, zstd, mariadb, rsync);
            # the server's own CPU is the same for every variant and not counted.
            me = resource.getrusage(resource.RUSAGE_SELF)
            kids = resource.getrusage(resource.RUSAGE_CHILDREN)
            return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

        def timed(key: str, fn) -> object:
            start, start_cpu = time.perf_counter(), cpu_now()
            out = fn()
            best[key] = min(best[key], time.perf_counter() - start)
            cpu[key] = min(cpu[key], cpu_now() - start_cpu)
            return out

        for rnd in range(args.repeat):
            # Interleaved rounds: load from other users of the machine hits every variant alike.
            timed("gzip", lambda: sh(f"{DUMP} {db} | gzip -6 > {work}/ref/dump.sql.gz"))
            timed("zstd", lambda: sh(f"{DUMP} {db} | zstd -3 -q > {work}/ref/dump.sql.zst"))
            r1 = timed("ours1", lambda: run_set(one.sets[0], cat))
            assert r1.ok, r1.error
            time.sleep(1)  # a new run id
            time.sleep(1)  # a new run id
            r4 = timed("ours4enc", lambda: run_set(four_enc.sets[0], cat))
            assert r4.ok, r4.error
            time.sleep(1)  # a new run id
            r4 = timed("ours4", lambda: run_set(four.sets[0], cat))
            assert r4.ok, r4.error
            dump = next((work / "a" / "bench" / r4.run_id).glob("mysql-*.sql.zst"))
            scratch = f"sscp_drill_ref_{secrets.token_hex(4)}"
            conn = pymysql.connect(**ROOT, autocommit=True)
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{scratch}`")
            try:
                restore = f"zstd -dc {dump} | mariadb -h127.0.0.1 -P3306 -uroot {scratch}"
                timed("restore", lambda: sh(restore))  # noqa: B023 - called at once
            finally:
                with conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS `{scratch}`")
                conn.close()
            d = timed("drill", lambda: drill_set(four.sets[0], cat))
            assert d.ok, d.error
            d = timed("drillshared", lambda: drill_set(shared.sets[0], cat))
            assert d.ok, d.error
            print(f"round {rnd + 1} of {args.repeat} done", flush=True)
        cat.close()

        raw = int(
            subprocess.run(
                ["bash", "-c", f"gzip -dc {work}/ref/dump.sql.gz | wc -c"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        mb = raw / 1e6
        gz = (work / "ref" / "dump.sql.gz").stat().st_size
        zs = dump.stat().st_size
        print(
            f"\nSQL dump: {mb:.0f} MB ({d.rows} rows); gzip -6: {gz / 1e6:.0f} MB;"
            f" zstd -3: {zs / 1e6:.0f} MB; best of {args.repeat} rounds"
        )
        rows = [
            ("mariadb-dump | gzip -6 (reference)", "gzip", None),
            ("mariadb-dump | zstd -3", "zstd", "gzip"),
            ("backup run, 1 location", "ours1", "gzip"),
            ("backup run, 1 location vs zstd pipe", "ours1", "zstd"),
            ("backup run, 4 locations", "ours4", "gzip"),
            ("backup run, 4 locations, 2 encrypted", "ours4enc", "gzip"),
            ("  encrypted vs plain 4-location run", "ours4enc", "ours4"),
            ("zstd -dc | mariadb (reference restore)", "restore", None),
            ("backup drill (throwaway server)", "drill", "restore"),
            ("backup drill (shared server)", "drillshared", "restore"),
            ("  throwaway vs shared drill", "drill", "drillshared"),
        ]
        print(f"{'':40} {'seconds':>8} {'MB/s':>7} {'ratio':>6} {'CPU s':>7} {'ratio':>6}")
        for name, key, ref in rows:
            secs, used = best[key], cpu[key]
            ratio = f"{secs / best[ref]:.2f}" if ref else "1.00"
            cpu_ratio = f"{used / cpu[ref]:.2f}" if ref else "1.00"
            print(f"{name:40} {secs:8.1f} {mb / secs:7.1f} {ratio:>6} {used:7.1f} {cpu_ratio:>6}")
    finally:
        drop(db)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
