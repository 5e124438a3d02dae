"""Backups against the real MariaDB: run, verify, 3-2-1, failures, drills, and the metrics."""

from __future__ import annotations

import errno
import hashlib
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pymysql
import pytest
from fx_backup import MARIADB, BackupSetup
from helpers import require_binary, sscp_ops_cmd
from prometheus_client import CollectorRegistry, generate_latest

from exporters.backup import BackupCollector
from sscp_ops.backup.catalogue import Catalogue
from sscp_ops.backup.manifest import MANIFEST, Manifest
from sscp_ops.backup.run import run_set
from sscp_ops.config import load_config

pytestmark = pytest.mark.slow


def cli(setup: BackupSetup, action: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        sscp_ops_cmd("backup", action, *args, "--config.file", str(setup.config)),
        capture_output=True,
        text=True,
        timeout=120,
    )


def metrics(setup: BackupSetup) -> dict[tuple[str, frozenset], float]:
    from helpers import parse_exposition

    class Adapter:
        def collect(self):
            return BackupCollector(setup.catalog, ["platform"]).collect(5.0)

    registry = CollectorRegistry()
    registry.register(Adapter())
    return parse_exposition(generate_latest(registry).decode())


def metric(m: dict, name: str, **labels: str) -> float:
    return m[(name, frozenset({"set": "platform", **labels}.items()))]


def run_dirs(root: Path) -> list[Path]:
    set_dir = root / "platform"
    return sorted(set_dir.iterdir()) if set_dir.is_dir() else []


def dump_file(copy_dir: Path) -> Path:
    return next(copy_dir.glob("mysql-*.sql.zst"))


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def live_counts(db: str) -> dict[str, int]:
    conn = pymysql.connect(**MARIADB, database=db)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
            tables = [row[0] for row in cur.fetchall()]
            out = {}
            for t in tables:
                cur.execute(f"SELECT COUNT(*) FROM `{t}`")
                out[t] = cur.fetchone()[0]
            return out
    finally:
        conn.close()


def test_run_makes_four_copies_manifests_and_catalogue_rows(backup_setup: BackupSetup) -> None:
    s = backup_setup
    r = cli(s, "run")
    assert r.returncode == 0, r.stdout + r.stderr
    copies = {name: run_dirs(root) for name, root in s.locations.items()}
    assert all(len(dirs) == 1 for dirs in copies.values()), copies
    run_id = copies["a"][0].name
    names = {p.name for p in copies["a"][0].iterdir()}
    assert names == {MANIFEST, "config.tar.zst", f"mysql-{s.db.name}.sql.zst"}
    for dirs in copies.values():
        assert dirs[0].name == run_id
        assert {p.name for p in dirs[0].iterdir()} == names
        assert (dirs[0] / MANIFEST).read_bytes() == (copies["a"][0] / MANIFEST).read_bytes()

    manifest = Manifest.from_json((copies["a"][0] / MANIFEST).read_bytes())
    assert manifest.databases[s.db.name] == live_counts(s.db.name)
    assert manifest.databases[s.db.name]["cases"] == 4000
    assert {"mariadb-dump", "server", "zstd", "sscp-ops", "python"} <= set(manifest.tools)
    configs = {e.path.rsplit("/", 1)[-1] for e in manifest.config}
    assert {"nginx.conf", "platform.conf", "redis.conf", "config.yml"} <= configs
    assert manifest.config_missing == (str(s.etc / "absent"),)

    db = sqlite3.connect(s.catalog)
    runs = db.execute("SELECT result, error, duration, size_bytes FROM runs").fetchall()
    assert len(runs) == 1 and runs[0][0] == "success" and runs[0][1] is None
    assert runs[0][2] > 0 and runs[0][3] == manifest.size
    rows = db.execute("SELECT kind, result, location, sha256 FROM copies ORDER BY id").fetchall()
    assert [r[:2] for r in rows] == [
        ("local", "ok"),
        ("local", "ok"),
        ("offsite", "ok"),
        ("offline", "ok"),
    ]
    digest = hashlib.sha256((copies["a"][0] / MANIFEST).read_bytes()).hexdigest()
    assert [r[2] for r in rows] == [str(s.locations[n]) for n in ("a", "b", "offsite", "offline")]
    assert {r[3] for r in rows} == {digest}
    db.close()

    # Secrets never leave the password file.
    for text in (r.stdout, r.stderr, s.catalog.read_bytes().decode("latin-1")):
        assert s.db.backup_password not in text

    m = metrics(s)
    assert metric(m, "backup_runs_total") == 1 and metric(m, "backup_failures_total") == 0
    assert metric(m, "backup_copies", location_kind="local") == 2
    assert metric(m, "backup_copies", location_kind="offsite") == 1
    # The offline copy counts only once the medium is confirmed detached.
    assert metric(m, "backup_copies", location_kind="offline") == 0
    assert metric(m, "backup_321_compliant") == 0
    assert cli(s, "verify").returncode == 1

    r = cli(s, "offline-confirm", "platform")
    assert r.returncode == 0, r.stderr
    r = cli(s, "verify")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "compliant" in r.stdout and "0 problems" in r.stdout
    m = metrics(s)
    assert metric(m, "backup_copies", location_kind="offline") == 1
    assert metric(m, "backup_321_compliant") == 1
    assert metric(m, "backup_last_success_timestamp_seconds") > 1.7e9
    assert metric(m, "backup_size_bytes") == manifest.size
    for root in s.locations.values():
        assert metric(m, "backup_copy_verified", location=str(root)) == 1


def test_verify_finds_a_corrupt_copy_and_the_metric_shows_it(backup_setup: BackupSetup) -> None:
    s = backup_setup
    assert cli(s, "run").returncode == 0
    assert cli(s, "offline-confirm", "platform").returncode == 0
    bad = dump_file(run_dirs(s.locations["b"])[0])
    corrupt(bad)
    stray = run_dirs(s.locations["a"])[0] / "notes.txt"
    stray.write_text("left here by hand\n")

    r = cli(s, "verify")
    assert r.returncode == 1
    assert f"corrupt: {bad}" in r.stdout
    assert f"unexpected: {stray}" in r.stdout
    m = metrics(s)
    assert metric(m, "backup_copy_verified", location=str(s.locations["b"])) == 0
    assert metric(m, "backup_copy_verified", location=str(s.locations["a"])) == 1
    assert metric(m, "backup_copies", location_kind="local") == 1
    assert metric(m, "backup_321_compliant") == 0


def test_removing_the_offsite_copy_violates_321(backup_setup: BackupSetup) -> None:
    s = backup_setup
    assert cli(s, "run").returncode == 0
    assert cli(s, "offline-confirm", "platform").returncode == 0
    assert cli(s, "verify").returncode == 0
    gone = run_dirs(s.locations["offsite"])[0]
    shutil.rmtree(gone)

    r = cli(s, "verify")
    assert r.returncode == 1
    assert f"missing: {gone}" in r.stdout and "VIOLATED" in r.stdout
    m = metrics(s)
    assert metric(m, "backup_copies", location_kind="offsite") == 0
    assert metric(m, "backup_321_compliant") == 0
    assert metric(m, "backup_copy_verified", location=str(s.locations["offsite"])) == 0


def test_location_failing_mid_copy_is_recorded_and_other_copies_kept(
    backup_setup: BackupSetup,
) -> None:
    s = backup_setup
    config = load_config(s.config)
    assert config.backup is not None
    bset = config.backup.sets[0]
    offsite = s.locations["offsite"]

    def disk_full_on_offsite(src: Path, dst: Path, progress) -> None:
        if offsite in dst.parents:
            with open(src, "rb") as fin, open(dst, "wb") as fout:
                fout.write(fin.read(100))
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        shutil.copyfile(src, dst)

    catalogue = Catalogue(s.catalog)
    try:
        report = run_set(bset, catalogue, copier=disk_full_on_offsite)
    finally:
        catalogue.close()
    assert not report.ok
    assert "No space left on device" in (report.error or "")
    assert run_dirs(offsite) == []  # neither a run directory nor a half-written partial
    for name in ("a", "b", "offline"):
        (copy,) = run_dirs(s.locations[name])
        assert copy.name == report.run_id and (copy / MANIFEST).is_file()

    db = sqlite3.connect(s.catalog)
    ((result, error),) = db.execute("SELECT result, error FROM runs").fetchall()
    assert result == "failed" and str(offsite) in error and "No space left" in error
    rows = dict(db.execute("SELECT location, result FROM copies").fetchall())
    db.close()
    assert rows[str(offsite)] == "failed"
    assert [rows[str(s.locations[n])] for n in ("a", "b", "offline")] == ["ok"] * 3

    m = metrics(s)
    assert metric(m, "backup_failures_total") == 1
    assert metric(m, "backup_last_run_success") == 0
    assert metric(m, "backup_last_success_timestamp_seconds") == 0
    assert metric(m, "backup_copies", location_kind="offsite") == 0
    assert metric(m, "backup_copies", location_kind="local") == 2


def test_unreachable_offsite_and_dump_errors_exit_non_zero(backup_setup: BackupSetup) -> None:
    s = backup_setup
    offsite = s.locations["offsite"]
    offsite.rmdir()  # the off-site share is not mounted
    r = cli(s, "run")
    assert r.returncode == 1
    assert f"offsite  {offsite}: failed" in r.stdout
    assert len(run_dirs(s.locations["a"])) == 1

    # A dump error (the password file now holds a wrong password): nothing is left behind.
    (s.config.parent / "secrets" / "backup.pass").write_text("wrong\n")
    r = cli(s, "run")
    assert r.returncode == 1
    assert "FAILED" in r.stdout and "Access denied" in r.stdout
    assert len(run_dirs(s.locations["a"])) == 1
    db = sqlite3.connect(s.catalog)
    results = [row[0] for row in db.execute("SELECT result FROM runs ORDER BY id")]
    db.close()
    assert results == ["failed", "failed"]


def scratch_databases() -> list[str]:
    conn = pymysql.connect(**MARIADB)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE 'sscp\\_drill\\_%'")
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def test_drill_restores_row_counts_and_records_duration(backup_setup: BackupSetup) -> None:
    s = backup_setup
    assert cli(s, "run").returncode == 0
    before = scratch_databases()
    r = cli(s, "drill", "platform")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{sum(live_counts(s.db.name).values())} rows" in r.stdout
    assert scratch_databases() == before  # the scratch database is dropped
    db = sqlite3.connect(s.catalog)
    ((result, duration, tables, rows),) = db.execute(
        "SELECT result, duration, tables, rows FROM drills"
    ).fetchall()
    db.close()
    assert result == "success" and duration > 0
    assert (tables, rows) == (5, 5500)
    m = metrics(s)
    assert metric(m, "restore_drill_last_success") == 1
    assert metric(m, "restore_drill_duration_seconds") == pytest.approx(duration)
    assert metric(m, "restore_drill_last_timestamp_seconds") > 1.7e9


def test_drill_on_a_corrupt_set_fails_loudly(backup_setup: BackupSetup) -> None:
    s = backup_setup
    assert cli(s, "run").returncode == 0
    for root in s.locations.values():
        corrupt(dump_file(run_dirs(root)[0]))
    r = cli(s, "drill")
    assert r.returncode == 1
    assert "RESTORE DRILL FAILED" in r.stderr
    assert "no intact copy" in r.stderr
    db = sqlite3.connect(s.catalog)
    ((result, error),) = db.execute("SELECT result, error FROM drills").fetchall()
    db.close()
    assert result == "failed" and "corrupt" in error
    m = metrics(s)
    assert metric(m, "restore_drill_last_success") == 0


def test_rsync_offsite_copy_is_made_and_verified(backup_setup: BackupSetup) -> None:
    require_binary("rsync")
    s = backup_setup
    target = s.locations["offsite"]
    text = s.config.read_text()
    s.config.write_text(
        text.replace(f"{{kind: offsite, path: {target}}}", f'{{kind: offsite, rsync: "{target}"}}')
    )
    r = cli(s, "run")
    assert r.returncode == 0, r.stdout + r.stderr
    (copy,) = run_dirs(target)
    assert {p.name for p in copy.iterdir()} == {
        p.name for p in run_dirs(s.locations["a"])[0].iterdir()
    }
    assert cli(s, "offline-confirm", "platform").returncode == 0
    r = cli(s, "verify")
    assert r.returncode == 0, r.stdout
    corrupt(dump_file(copy))
    r = cli(s, "verify")
    assert r.returncode == 1 and "corrupt" in r.stdout
    m = metrics(s)
    assert metric(m, "backup_copy_verified", location=f"rsync:{target}") == 0
    assert metric(m, "backup_321_compliant") == 0


def test_retention_removes_old_runs_and_marks_them_in_the_catalogue(
    backup_setup: BackupSetup,
) -> None:
    s = backup_setup
    text = s.config.read_text().replace(
        "      drill:",
        "      retention: {daily: 2, weekly: 0, monthly: 0}\n      drill:",
    )
    s.config.write_text(text)
    config = load_config(s.config)
    assert config.backup is not None
    bset = config.backup.sets[0]
    day = 86400.0
    now = 1_795_000_000.0
    catalogue = Catalogue(s.catalog)
    try:
        ids = []
        for when in (now - 40 * day, now - 2 * day, now - day, now):
            report = run_set(bset, catalogue, clock=lambda when=when: when)
            assert report.ok, report.error
            ids.append(report.run_id)
    finally:
        catalogue.close()
    for root in s.locations.values():
        assert [p.name for p in run_dirs(root)] == ids[2:]  # the two newest days
    db = sqlite3.connect(s.catalog)
    removed = db.execute(
        "SELECT r.run_id, COUNT(*) FROM copies c JOIN runs r ON r.id = c.run"
        " WHERE c.removed_at IS NOT NULL GROUP BY r.run_id ORDER BY r.run_id"
    ).fetchall()
    db.close()
    assert removed == [(ids[0], 4), (ids[1], 4)]
    assert cli(s, "offline-confirm", "platform").returncode == 0
    r = cli(s, "verify")
    assert r.returncode == 0, r.stdout


def test_progress_bar_only_on_a_terminal_and_one_run_per_set(backup_setup: BackupSetup) -> None:
    import fcntl
    import os
    import pty
    import struct
    import termios

    s = backup_setup
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 120 columns
    try:
        proc = subprocess.run(
            sscp_ops_cmd("backup", "run", "--config.file", str(s.config)),
            stdout=subprocess.PIPE,
            stderr=slave,
            timeout=120,
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    assert proc.returncode == 0
    on_tty = b"".join(chunks).decode("utf-8", "replace")
    assert "platform: dump" in on_tty and "B/s" in on_tty
    off_tty = cli(s, "run")
    assert off_tty.returncode == 0 and "B/s" not in off_tty.stderr

    lock = s.catalog.with_name(f"{s.catalog.name}.platform.lock")
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        r = cli(s, "run")
    assert r.returncode == 1 and "in progress" in r.stderr
