"""Pure parts of the backup package: row counting, option files, retention, config, manifest."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sscp_ops.backup.dump import (
    DumpError,
    RowCounter,
    count_rows,
    credentials_file,
    dump_command,
    option_file_text,
)
from sscp_ops.backup.manifest import ConfigEntry, FileEntry, Manifest
from sscp_ops.backup.retention import runs_to_keep
from sscp_ops.config import ConfigError, parse_config
from sscp_ops.config.backup import Retention

# The shape mariadb-dump 10.11 writes (one row per line) and the older one-line shape.
DUMP_NEW = (
    b"-- MariaDB dump 10.19\n"
    b"CREATE TABLE `t1` (\n  `id` int(11) NOT NULL\n) ENGINE=InnoDB;\n"
    b"INSERT INTO `t1` VALUES\n(1,'a),(b'),\n(2,'it\\'s'),\n(3,'x\\n(y');\n"
    b"CREATE TABLE `empty` (\n  `id` int(11)\n);\n"
    b"CREATE TABLE `we``ird` (\n  `id` int(11)\n);\n"
    b"INSERT INTO `we``ird` VALUES\n(1);\n"
    b"INSERT INTO `t1` VALUES\n(4,NULL);\n"
)
DUMP_OLD = (
    b"CREATE TABLE `t1` (\n  `id` int(11) NOT NULL\n);\n"
    b"INSERT INTO `t1` VALUES (1,'a),(b'),(2,'say \\'(hi)\\''),(3,0x28),(4,NULL);\n"
)


@pytest.mark.parametrize("dump", [DUMP_NEW, DUMP_OLD])
def test_row_counter_gives_the_same_counts_for_any_chunking(dump: bytes) -> None:
    expected = {"t1": 4, "empty": 0, "we`ird": 1} if dump is DUMP_NEW else {"t1": 4}
    for size in range(1, len(dump) + 1):
        counter = RowCounter()
        for i in range(0, len(dump), size):
            counter.feed(dump[i : i + size])
        assert counter.close() == dict(sorted(expected.items())), size


@pytest.mark.parametrize("cut", [5, 12])
def test_truncated_dump_is_an_error(cut: int) -> None:
    counter = RowCounter()
    counter.feed(DUMP_NEW[:-cut])
    with pytest.raises(DumpError, match="truncated"):
        counter.close()


def test_count_rows_ignores_parentheses_in_strings() -> None:
    assert count_rows(b"(1,'(('),(2,'\\')(')") == 2


def test_option_file_quotes_and_escapes_the_password(tmp_path: Path) -> None:
    text = option_file_text("backup", 'p#"\\x', "127.0.0.1", 3306)
    assert 'password="p#\\"\\\\x"' in text
    assert text.startswith("[client]\n")


def test_credentials_file_is_private_and_removed_and_not_on_the_command_line() -> None:
    with credentials_file("backup", "s3cret", "127.0.0.1:3306") as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert "s3cret" in path.read_text()
        cmd = dump_command("/usr/bin/mariadb-dump", path, "platform")
        assert cmd[1] == f"--defaults-extra-file={path}"
        assert not any("s3cret" in arg for arg in cmd)
        assert {"--single-transaction", "--routines", "--events", "--triggers"} <= set(cmd)
    assert not path.exists()


def test_retention_keeps_newest_per_day_week_and_month() -> None:
    # One run a day at 02:00 and an extra one at 14:00 each day, for 120 days from 2026-08-01.
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 8, 1, 2, tzinfo=UTC)
    runs = []
    for d in range(120):
        for h in (0, 12):
            runs.append((start + timedelta(days=d, hours=h)).strftime("%Y%m%dT%H%M%SZ"))
    keep = runs_to_keep(runs, Retention(daily=7, weekly=4, monthly=3))
    newest = max(runs)
    assert newest in keep
    days = sorted({r[:8] for r in keep}, reverse=True)
    # 7 daily + up to 4 weekly + up to 3 monthly, overlapping.
    assert len(keep) <= 14
    assert days[:7] == sorted({r[:8] for r in runs}, reverse=True)[:7]
    assert all(r.endswith("140000Z") for r in keep)  # the newest run of each bucket
    months = {r[:6] for r in keep}
    assert months == {"202611", "202610", "202609"}
    assert runs_to_keep([], Retention()) == set()


def test_manifest_round_trip() -> None:
    m = Manifest(
        set="p",
        run_id="20261128T020000Z",
        created="2026-11-28T02:00:00Z",
        files=(FileEntry("mysql-x.sql.zst", 10, "a" * 64, "mysql", "x", 40),),
        databases={"x": {"t": 3}},
        config=(ConfigEntry("etc/nginx/nginx.conf", 5, "b" * 64),),
        tools={"zstd": "1.5"},
    )
    assert Manifest.from_json(m.to_json()) == m
    with pytest.raises(ValueError, match="unreadable manifest"):
        Manifest.from_json(b'{"format": 1}')


BASE = """\
backup:
  catalog: /tmp/c.db
  sets:
    - name: p
      config_paths: [/etc/nginx]
      locations:
"""


@pytest.mark.parametrize(
    ("locations", "expected"),
    [
        ("        - {kind: local}\n", "give exactly one of path or rsync"),
        (
            "        - {kind: local, path: /a}\n        - {kind: local, rsync: 'h:/x'}\n",
            "rsync is only for an offsite location",
        ),
        ("        - {kind: offsite, path: /a}\n", "needs at least one local location"),
        ("        - {kind: local, path: /a}\n        - {kind: local, path: /a}\n", "duplicate"),
        ("        - {kind: tape, path: /a}\n", "backup.sets[0].locations[0].kind"),
    ],
)
def test_bad_backup_config_names_the_key(locations: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + locations, "cfg.yml")
    assert expected in str(info.value)
    assert str(info.value).startswith("cfg.yml:")


def test_issue_config_shape_is_accepted() -> None:
    config = parse_config(
        """\
backup:
  catalog: /var/lib/sscp-ops/backup.db
  sets:
    - name: platform
      mysql: {address: "127.0.0.1:3306", user: backup, password_file: /etc/sscp-ops/backup.pass,
              databases: [platform]}
      config_paths: [/etc/nginx, /etc/redis]
      locations:
        - {kind: local, path: /backup/a}
        - {kind: local, path: /backup/b}
        - {kind: offsite, rsync: "backup@dr.example:/srv/backup"}
        - {kind: offline, path: /media/offline}
      drill: {address: "127.0.0.1:3306", user: drill, password_file: /etc/sscp-ops/drill.pass}
""",
        "cfg.yml",
    )
    assert config.backup is not None
    bset = config.backup.get("platform")
    assert [loc.name for loc in bset.locations][2] == "rsync:backup@dr.example:/srv/backup"
    assert bset.retention == Retention()
