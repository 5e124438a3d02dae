"""Fixtures for the backup tests: a real MariaDB database with users, and a config for it."""

from __future__ import annotations

import random
import secrets
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import require_binary

from sscp_ops.backup.catalogue import Catalogue

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root"}

ROW_COUNTS = {"cases": 4000, "inspectors": 300, "attachments": 1200, "archive_empty": 0}


@dataclass(frozen=True)
class BackupDb:
    name: str
    backup_user: str
    backup_password: str
    drill_user: str
    drill_password: str
    rows: dict[str, int]


def _root():
    import pymysql

    try:
        return pymysql.connect(**MARIADB, autocommit=True, connect_timeout=5)
    except pymysql.MySQLError as exc:
        from helpers import missing

        missing(f"MariaDB on 127.0.0.1:3306 ({exc})")
        raise


def _fill(cur, db: str) -> None:
    rnd = random.Random(6)
    words = [
        "市场",
        "监管",
        "投诉",
        "食品",
        "it's",
        "a),(b",
        'say "hi"',
        "back\\slash",
        "line\nbreak",
    ]
    cur.execute(f"USE `{db}`")
    cur.execute(
        "CREATE TABLE inspectors (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL, phone CHAR(11))"
    )
    cur.execute(
        "CREATE TABLE cases (id INT PRIMARY KEY AUTO_INCREMENT, inspector INT NOT NULL,"
        " title VARCHAR(200), body TEXT, amount DECIMAL(12,2), created DATETIME,"
        " KEY (inspector))"
    )
    cur.execute(
        "CREATE TABLE attachments (id INT PRIMARY KEY, case_id INT, data BLOB, note VARCHAR(40))"
    )
    cur.execute("CREATE TABLE archive_empty (id INT PRIMARY KEY)")
    cur.execute("CREATE TABLE case_audit (case_id INT, at DATETIME)")
    cur.executemany(
        "INSERT INTO inspectors VALUES (%s, %s, %s)",
        [(i, f"检查员{i}", f"138{i:08d}") for i in range(ROW_COUNTS["inspectors"])],
    )
    cur.executemany(
        "INSERT INTO cases (inspector, title, body, amount, created) VALUES (%s,%s,%s,%s,%s)",
        [
            (
                rnd.randrange(300),
                " ".join(rnd.choices(words, k=4)),
                " ".join(rnd.choices(words, k=40)),
                round(rnd.random() * 1e6, 2),
                "2026-11-01 08:00:00",
            )
            for _ in range(ROW_COUNTS["cases"])
        ],
    )
    cur.executemany(
        "INSERT INTO attachments VALUES (%s, %s, %s, %s)",
        [
            (i, i % 4000, rnd.randbytes(200), None if i % 3 else "(x),('y')")
            for i in range(ROW_COUNTS["attachments"])
        ],
    )
    cur.execute("CREATE VIEW open_cases AS SELECT id, title FROM cases WHERE amount > 1000")
    cur.execute(
        "CREATE TRIGGER cases_audit AFTER INSERT ON cases FOR EACH ROW"
        " INSERT INTO case_audit VALUES (NEW.id, NOW())"
    )
    cur.execute("CREATE PROCEDURE case_count() SELECT COUNT(*) FROM cases")


@pytest.fixture(scope="module")
def backup_db():
    """A database ``sscp_backup_<hex>`` with tables, a view, a trigger and a procedure, a
    backup user and a drill user with random passwords; all dropped afterwards."""
    require_binary("mariadb-dump", "mysqldump")
    require_binary("mariadb", "mysql")
    conn = _root()
    suffix = secrets.token_hex(4)
    db = f"sscp_backup_{suffix}"
    bk_user, dr_user = f"sscp_bk_{suffix}", f"sscp_dr_{suffix}"
    # Characters that need quoting in an option file, to prove the credentials file is right.
    bk_pass = secrets.token_urlsafe(12) + '#"\\ x'
    dr_pass = secrets.token_urlsafe(12) + "'#"
    with conn.cursor() as cur:
        try:
            cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
            _fill(cur, db)
            cur.execute(f"CREATE USER '{bk_user}'@'%%' IDENTIFIED BY %s", (bk_pass,))
            cur.execute(
                f"GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON `{db}`.*"
                f" TO '{bk_user}'@'%'"
            )
            cur.execute(f"GRANT SELECT ON mysql.proc TO '{bk_user}'@'%'")
            cur.execute(f"CREATE USER '{dr_user}'@'%%' IDENTIFIED BY %s", (dr_pass,))
            cur.execute(f"GRANT ALL ON `sscp\\_drill\\_%`.* TO '{dr_user}'@'%'")
            cur.execute(f"GRANT SET USER ON *.* TO '{dr_user}'@'%'")
            yield BackupDb(db, bk_user, bk_pass, dr_user, dr_pass, dict(ROW_COUNTS))
        finally:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
            cur.execute(f"DROP USER IF EXISTS '{bk_user}'@'%'")
            cur.execute(f"DROP USER IF EXISTS '{dr_user}'@'%'")
    conn.close()


@dataclass(frozen=True)
class BackupSetup:
    config: Path
    catalog: Path
    locations: dict[str, Path]  # a, b, offsite, offline
    etc: Path
    db: BackupDb


@pytest.fixture
def backup_setup(tmp_path: Path, backup_db: BackupDb) -> BackupSetup:
    """Four location roots, a config directory to back up, password files, and the YAML."""
    locs = {name: tmp_path / name for name in ("a", "b", "offsite", "offline")}
    for path in locs.values():
        path.mkdir()
    etc = tmp_path / "etc"
    (etc / "nginx" / "conf.d").mkdir(parents=True)
    (etc / "nginx" / "nginx.conf").write_text("worker_processes 2;\n")
    (etc / "nginx" / "conf.d" / "platform.conf").write_text("server { listen 80; }\n")
    (etc / "redis.conf").write_text("maxmemory 1gb\n")
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700)
    (secrets_dir / "backup.pass").write_text(backup_db.backup_password + "\n")
    (secrets_dir / "drill.pass").write_text(backup_db.drill_password + "\n")
    catalog = tmp_path / "state" / "backup.db"
    config = tmp_path / "config.yml"
    config.write_text(
        textwrap.dedent(
            f"""\
            backup:
              catalog: {catalog}
              sets:
                - name: platform
                  mysql: {{address: "127.0.0.1:3306", user: {backup_db.backup_user},
                          password_file: {secrets_dir / "backup.pass"},
                          databases: [{backup_db.name}]}}
                  config_paths: [{etc / "nginx"}, {etc / "redis.conf"}, {etc / "absent"}]
                  locations:
                    - {{kind: local, path: {locs["a"]}}}
                    - {{kind: local, path: {locs["b"]}}}
                    - {{kind: offsite, path: {locs["offsite"]}}}
                    - {{kind: offline, path: {locs["offline"]}}}
                  drill: {{address: "127.0.0.1:3306", user: {backup_db.drill_user},
                          password_file: {secrets_dir / "drill.pass"}}}
            """
        )
    )
    return BackupSetup(config, catalog, locs, etc, backup_db)


def fill_catalogue(path: Path) -> Catalogue:
    """A backup catalogue at ``path``, returned open: two runs of "platform" (the second failed),
    one offline copy confirmed, a corrupt copy, a drill."""
    cat = Catalogue(path)
    now = time.time()
    r1 = cat.start_run("platform", "20261127T020000Z", now - 86400)
    for loc, kind in (("/a", "local"), ("/b", "local"), ("/off", "offsite"), ("/usb", "offline")):
        cat.record_copy(r1, loc, kind, f"{loc}/platform/20261127T020000Z", "ok", None, 100)
    cat.finish_run(r1, True, None, 100, "x" * 64)
    cat.confirm_offline("platform")
    r2 = cat.start_run("platform", "20261128T020000Z", now - 600)
    cat.record_copy(r2, "/a", "local", "/a/platform/20261128T020000Z", "ok", None, 120)
    cat.record_copy(r2, "/b", "local", "/b/platform/20261128T020000Z", "ok", None, 120)
    cat.record_copy(r2, "/off", "offsite", "/off", "failed", "No space left on device")
    cat.finish_run(r2, False, "/off: No space left on device", 120, "y" * 64)
    bad = next(c for c in cat.copies("platform") if c.location == "/b" and c.run == r1)
    cat.record_verify(bad.id, False, "corrupt")
    cat.record_drill(
        "platform", "20261127T020000Z", "/a", now - 5000, now - 4000, True, None, 5, 10
    )
    return cat
