"""Security regressions of the backups (issue 15, items 6-8), each with real processes.

* file modes: under umask 022 every file a backup creates is 0600 and every directory 0700
  (0640/0750 with a configured group), on every kind of copy and for the catalogue;
* a restore drill never writes into production: a restored EVENT that writes the production
  schema, and a trigger it sets off, leave production untouched;
* encrypted copies: every file is an age file, ``verify`` checks them without the key, the
  drill restores them with the key and fails with one clear line with a wrong or no key.
"""

from __future__ import annotations

import grp
import os
import sqlite3
import stat
import subprocess
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fx_backup import BackupSetup
from helpers import require_binary, sscp_ops_cmd

from sscp_ops.backup.catalogue import Catalogue
from sscp_ops.backup.drill import drill_set
from sscp_ops.config import load_config

pytestmark = pytest.mark.slow


def cli(config: Path, action: str, *args: str, umask: int = 0o022) -> subprocess.CompletedProcess:
    return subprocess.run(
        sscp_ops_cmd("backup", action, *args, "--config.file", str(config)),
        capture_output=True,
        text=True,
        timeout=180,
        umask=umask,
    )


def modes(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory below ``root`` (itself excluded): path -> (mode bits, gid)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(Path(dirpath) / name)
            out[str(Path(dirpath, name).relative_to(root))] = (stat.S_IMODE(st.st_mode), st.st_gid)
    return out


def other_group() -> grp.struct_group:
    for name in ("nogroup", "daemon", "adm", "users"):
        try:
            return grp.getgrnam(name)
        except KeyError:
            continue
    pytest.skip("no group other than root to test with")
    raise AssertionError


def add_rsync_offsite(s: BackupSetup) -> Path:
    """A fifth location: an off-site copy by rsync to a directory the run creates."""
    require_binary("rsync")
    remote = s.config.parent / "remote"
    offline = f"{{kind: offline, path: {s.locations['offline']}}}"
    s.config.write_text(
        s.config.read_text().replace(
            offline, f'{offline}\n        - {{kind: offsite, rsync: "{remote}/dr"}}'
        )
    )
    return remote


def check_private(
    s: BackupSetup, remote: Path, file_mode: int, dir_mode: int, gid: int | None
) -> int:
    """Assert the modes of every backup file; returns how many files and dirs were checked."""
    checked = 0
    roots = [*s.locations.values(), remote / "dr"]
    for root in roots:
        found = modes(root)
        assert any(p.endswith("manifest.json") for p in found), (root, found)
        for path, (mode, file_gid) in found.items():
            is_dir = (root / path).is_dir()
            assert mode == (dir_mode if is_dir else file_mode), (root / path, oct(mode))
            if gid is not None and not str(root).startswith(str(remote)):
                assert file_gid == gid, (root / path, file_gid)
            checked += 1
    state = modes(s.catalog.parent)
    assert {"backup.db", "backup.db.platform.lock"} <= set(state)
    cat_mode = file_mode if gid is None else 0o640
    for path, (mode, _) in state.items():
        assert mode == cat_mode, (path, oct(mode))
        checked += 1
    return checked


def test_backup_files_are_private_under_umask_022_on_every_copy(
    backup_setup: BackupSetup,
) -> None:
    s = backup_setup
    remote = add_rsync_offsite(s)
    r = cli(s.config, "run")
    assert r.returncode == 0, r.stdout + r.stderr
    checked = check_private(s, remote, 0o600, 0o700, None)
    # 5 locations x (set dir + run dir + 3 files) + the catalogue and its lock file
    assert checked == 5 * 5 + 2


def test_with_a_group_files_are_0640_and_directories_0750(backup_setup: BackupSetup) -> None:
    s = backup_setup
    remote = add_rsync_offsite(s)
    group = other_group()
    text = s.config.read_text()
    text = text.replace("  sets:\n", f"  catalog_group: {group.gr_name}\n  sets:\n")
    text = text.replace("      locations:\n", f"      group: {group.gr_name}\n      locations:\n")
    s.config.write_text(text)
    # A catalogue left 0644 by an older version is tightened too.
    s.catalog.parent.mkdir()
    sqlite3.connect(s.catalog).close()
    os.chmod(s.catalog, 0o644)
    r = cli(s.config, "run", umask=0o077)  # a tight umask must not take the group's bits away
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.stat(s.catalog).st_gid == group.gr_gid
    checked = check_private(s, remote, 0o640, 0o750, group.gr_gid)
    assert checked == 5 * 5 + 2


def test_backup_units_set_a_private_umask() -> None:
    units = sorted(Path(__file__).parent.parent.glob("deploy/systemd/sscp-ops-backup*.service"))
    assert [u.name for u in units] == [
        "sscp-ops-backup-drill.service",
        "sscp-ops-backup.service",
    ]
    for unit in units:
        assert "\nUMask=0077\n" in unit.read_text(), unit


# ---------------------------------------------------------------------------------------------
# The drill and production


@dataclass(frozen=True)
class Production:
    server: object  # fx_servers.MariaDB
    config: Path
    catalog: Path


def production_rows(server, where: str = "") -> list[tuple[str, str]]:
    conn = server.root()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT src, what FROM platform.drill_marker {where} ORDER BY id")
            return list(cur.fetchall())
    finally:
        conn.close()


@pytest.fixture
def production(tmp_path: Path) -> Iterator[Production]:
    """A private MariaDB playing production, its event scheduler on, with a schema
    ``platform`` whose event writes ``platform.drill_marker`` by its full name every second
    and sets off a trigger that does the same; each row records the schema it ran in."""
    from fx_servers import mariadb_server

    with mariadb_server(tmp_path / "prod", "--event-scheduler=ON", "--skip-log-bin") as server:
        conn = server.root()
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE platform")
            cur.execute("USE platform")
            cur.execute("CREATE TABLE cases (id INT PRIMARY KEY, phone CHAR(11))")
            cur.executemany(
                "INSERT INTO cases VALUES (%s, %s)", [(i, f"138{i:08d}") for i in range(50)]
            )
            cur.execute(
                "CREATE TABLE drill_marker (id INT AUTO_INCREMENT PRIMARY KEY,"
                " src VARCHAR(64), what VARCHAR(16))"
            )
            cur.execute("CREATE TABLE ticks (id INT AUTO_INCREMENT PRIMARY KEY)")
            cur.execute(
                "CREATE TRIGGER tick_audit AFTER INSERT ON ticks FOR EACH ROW"
                " INSERT INTO platform.drill_marker (src, what) VALUES (DATABASE(), 'trigger')"
            )
            cur.execute(
                "CREATE EVENT tick ON SCHEDULE EVERY 1 SECOND DO BEGIN"
                " INSERT INTO platform.drill_marker (src, what) VALUES (DATABASE(), 'event');"
                " INSERT INTO ticks () VALUES (); END"
            )
        conn.close()
        catalog = tmp_path / "state" / "backup.db"
        (tmp_path / "a").mkdir()
        config = tmp_path / "config.yml"
        config.write_text(
            textwrap.dedent(
                f"""\
                backup:
                  catalog: {catalog}
                  sets:
                    - name: platform
                      mysql: {{address: "{server.address}", user: root, databases: [platform]}}
                      locations:
                        - {{kind: local, path: {tmp_path / "a"}}}
                      drill: {{address: "{server.address}", user: root}}
                """
            )
        )
        yield Production(server, config, catalog)


def wait_for_production_ticks(server, ticks: int, timeout: float = 20.0) -> None:
    """Poll until production's own event has run ``ticks`` more times: by then any enabled
    copy of it restored by the drill has had the same chances to run."""
    start = len(production_rows(server, "WHERE src = 'platform' AND what = 'event'"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = len(production_rows(server, "WHERE src = 'platform' AND what = 'event'"))
        if now >= start + ticks:
            return
        time.sleep(0.1)
    raise TimeoutError(f"production's event did not run {ticks} times in {timeout}s")


def drill_watching_production(p: Production, **overrides) -> tuple[object, list[str], list]:
    """Run a drill whose progress hook, right after each restore, waits for two production
    ticks and notes the drill databases and events that production shows meanwhile."""
    config = load_config(p.config)
    assert config.backup is not None
    bset = config.backup.sets[0]
    if overrides:
        bset = bset.model_copy(update={"drill": bset.drill.model_copy(update=overrides)})
    seen_dbs: list[str] = []
    seen_events: list = []

    @contextmanager
    def hook(description: str, total):
        yield lambda n: None
        if ": restore " in description:
            wait_for_production_ticks(p.server, 2)
            conn = p.server.root()
            with conn.cursor() as cur:
                cur.execute("SHOW DATABASES LIKE 'sscp\\_drill\\_%'")
                seen_dbs.extend(row[0] for row in cur.fetchall())
                cur.execute(
                    "SELECT event_schema, event_name, status FROM information_schema.events"
                    " WHERE event_schema LIKE 'sscp\\_drill\\_%'"
                )
                seen_events.extend(cur.fetchall())
            conn.close()

    catalogue = Catalogue(p.catalog)
    try:
        from sscp_ops.backup.run import run_set

        assert run_set(bset, catalogue).ok
        report = drill_set(bset, catalogue, progress=hook)
    finally:
        catalogue.close()
    return report, seen_dbs, seen_events


def test_drill_never_writes_production_by_default(production: Production) -> None:
    require_binary("mariadbd", "/usr/sbin/mariadbd")
    report, seen_dbs, seen_events = drill_watching_production(production)
    # No row written into production by a restored copy, nothing of the drill on it.
    assert production_rows(production.server, "WHERE src <> 'platform'") == []
    assert seen_dbs == [] and seen_events == []
    assert report.ok, report.error
    assert report.tables == 3 and report.rows >= 50  # cases, drill_marker, ticks
    # Production's own event and trigger kept running meanwhile (the check could have seen).
    own = production_rows(production.server, "WHERE src = 'platform'")
    assert {what for _, what in own} == {"event", "trigger"}


def test_drill_on_the_shared_server_is_opt_in_and_restores_events_disabled(
    production: Production,
) -> None:
    report, seen_dbs, seen_events = drill_watching_production(production, server="shared")
    assert production_rows(production.server, "WHERE src <> 'platform'") == []
    assert len(seen_dbs) == 1
    assert [(name, status) for _, name, status in seen_events] == [("tick", "DISABLED")]
    assert report.ok, report.error


# ---------------------------------------------------------------------------------------------
# Encrypted copies

AGE_MAGIC = b"age-encryption.org/v1"


@dataclass(frozen=True)
class Keys:
    public: str
    identity_file: Path
    wrong_identity_file: Path


@pytest.fixture
def age_keys(tmp_path: Path) -> Keys:
    """A key pair whose private half stays in the test's key directory, never in the config,
    and another private key that fits no copy."""
    import pyrage

    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    identity = pyrage.x25519.Identity.generate()
    (keys / "backup.key").write_text(f"# backup drill key\n{identity}\n")
    (keys / "other.key").write_text(f"{pyrage.x25519.Identity.generate()}\n")
    return Keys(str(identity.to_public()), keys / "backup.key", keys / "other.key")


def encrypt(s: BackupSetup, keys: Keys, kinds: str) -> None:
    s.config.write_text(
        s.config.read_text().replace(
            "      drill:",
            f"      encryption: {{recipients: [{keys.public}], locations: [{kinds}]}}\n"
            "      drill:",
        )
    )


def copy_dirs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "platform").iterdir())


def backup_metrics(s: BackupSetup) -> dict:
    from test_backup_mariadb import metrics

    return metrics(s)


def test_offsite_and_offline_copies_are_age_files_verified_without_the_key(
    backup_setup: BackupSetup, age_keys: Keys
) -> None:
    s = backup_setup
    remote = add_rsync_offsite(s)
    encrypt(s, age_keys, "offsite, offline")
    r = cli(s.config, "run")
    assert r.returncode == 0, r.stdout + r.stderr
    sealed_roots = [s.locations["offsite"], s.locations["offline"], remote / "dr"]
    sealed_files = 0
    for root in sealed_roots:
        (copy,) = copy_dirs(root)
        names = sorted(p.name for p in copy.iterdir())
        assert names == sorted(
            ["config.tar.zst.age", f"mysql-{s.db.name}.sql.zst.age", "manifest.json.age"]
        )
        for path in copy.iterdir():
            assert path.read_bytes()[: len(AGE_MAGIC)] == AGE_MAGIC, path
            sealed_files += 1
    for name in ("a", "b"):  # the local copies stay plain
        (copy,) = copy_dirs(s.locations[name])
        assert (copy / "manifest.json").is_file()
    assert sealed_files == 9

    assert cli(s.config, "offline-confirm", "platform").returncode == 0
    r = cli(s.config, "verify")  # no identity anywhere in the config
    assert r.returncode == 0, r.stdout + r.stderr
    assert "5 copies checked, 0 problems" in r.stdout
    sealed_names = sorted(
        [str(s.locations["offsite"]), str(s.locations["offline"]), f"rsync:{remote}/dr"]
    )
    assert f"encrypted: {', '.join(sealed_names)}" in r.stdout
    m = backup_metrics(s)
    encrypted = {
        dict(labels)["location"]: value
        for (name, labels), value in m.items()
        if name == "backup_copy_encrypted"
    }
    assert encrypted == {
        str(s.locations["a"]): 0,
        str(s.locations["b"]): 0,
        str(s.locations["offsite"]): 1,
        str(s.locations["offline"]): 1,
        f"rsync:{remote}/dr": 1,
    }

    # A flipped byte in an encrypted dump, on disk and at the rsync target, is found
    # without the key.
    for root in (s.locations["offsite"], remote / "dr"):
        dump = next(copy_dirs(root)[0].glob("mysql-*.age"))
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0xFF
        dump.write_bytes(bytes(data))
    r = cli(s.config, "verify")
    assert r.returncode == 1
    corrupt = [line for line in r.stdout.splitlines() if line.strip().startswith("corrupt:")]
    assert len(corrupt) == 2, r.stdout


def test_all_copies_encrypted_drill_needs_the_key_and_restores_with_it(
    backup_setup: BackupSetup, age_keys: Keys
) -> None:
    s = backup_setup
    encrypt(s, age_keys, "all")
    r = cli(s.config, "run")
    assert r.returncode == 0, r.stdout + r.stderr
    files = [p for root in s.locations.values() for p in copy_dirs(root)[0].iterdir()]
    assert len(files) == 12
    assert all(p.read_bytes().startswith(AGE_MAGIC) for p in files)
    # No plaintext left behind: nothing else in the set directories.
    assert all(len(copy_dirs(root)) == 1 for root in s.locations.values())

    def failed_line(r: subprocess.CompletedProcess) -> str:
        assert r.returncode == 1, r.stdout + r.stderr
        assert "Traceback" not in r.stderr
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith("*** ") and "FAILED" not in ln]
        assert len(lines) == 1, r.stderr
        return lines[0]

    line = failed_line(cli(s.config, "drill"))
    assert "the copy is encrypted: give the age identity file with --identity-file" in line
    line = failed_line(cli(s.config, "drill", "--identity-file", str(age_keys.wrong_identity_file)))
    assert "cannot decrypt manifest.json.age with the identity file" in line
    line = failed_line(cli(s.config, "drill", "--identity-file", str(s.config.parent / "absent")))
    assert "cannot read identity file" in line

    r = cli(s.config, "drill", "--identity-file", str(age_keys.identity_file))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "5 tables, 5500 rows, 4 config files" in r.stdout, r.stdout

    # The key may also come from the config (drill.identity_file).
    s.config.write_text(
        s.config.read_text().replace(
            "      drill: {", f"      drill: {{identity_file: {age_keys.identity_file}, "
        )
    )
    r = cli(s.config, "drill")
    assert r.returncode == 0, r.stdout + r.stderr
    db = sqlite3.connect(s.catalog)
    results = [row[0] for row in db.execute("SELECT result FROM drills ORDER BY id")]
    db.close()
    assert results == ["failed", "failed", "failed", "success", "success"]
