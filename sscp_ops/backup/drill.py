"""``backup drill``: restore a run into a throwaway MariaDB and a scratch directory, check, drop.

Checks: every file of the chosen copy hashes to its manifest (an encrypted copy: its
ciphertexts to the catalogue, then its plaintexts to the manifest while decrypting); every
table of the manifest is present after the restore with the row count the dump held; every
config file comes back with its size and sha256. The duration from start to the end of the
checks is the measured recovery time (the objective is 4 h).

By default the dumps are restored into a MariaDB server the drill starts for itself
(:mod:`scratchdb`): restored EVENTs, triggers and routines can only touch that copy. With
``drill.server: shared`` they go into scratch databases on a running server, the dump's EVENTs
rewritten to ``DISABLE`` on the way. The scratch server, databases and directory are always
removed.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
import zstandard

from sscp_ops.backup import copy as copying
from sscp_ops.backup import crypt
from sscp_ops.backup.archive import extract_config_tarball
from sscp_ops.backup.catalogue import Catalogue, CopyRow
from sscp_ops.backup.dump import (
    CHUNK,
    HashingWriter,
    client_program,
    credentials_file,
    split_address,
)
from sscp_ops.backup.manifest import MANIFEST, FileEntry, Manifest, sha256_bytes
from sscp_ops.backup.progress import Progress, no_progress
from sscp_ops.backup.scratchdb import ScratchServerError, throwaway_mariadb
from sscp_ops.backup.verify import check_row
from sscp_ops.config.backup import BackupSet
from sscp_ops.filemode import PRIVATE
from sscp_ops.masking import mask_text

log = logging.getLogger("backup")

SCRATCH_PREFIX = "sscp_drill_"


class DrillError(Exception):
    """The drill cannot be done or its checks failed."""


@dataclass
class DrillReport:
    set: str
    run_id: str | None = None
    location: str | None = None
    ok: bool = False
    error: str | None = None
    duration: float = 0.0
    tables: int = 0
    rows: int = 0
    config_files: int = 0
    notes: list[str] = field(default_factory=list)


def choose_copy(rows: list[CopyRow], run_id: str | None) -> tuple[str, list[CopyRow]]:
    """The run to restore (given, or the newest with a copy) and its copies, local first."""
    if not rows:
        raise DrillError("no copy of any run in the catalogue")
    wanted = run_id or max(r.run_id for r in rows)
    order = {"local": 0, "offsite": 1, "offline": 2}
    copies = sorted(
        (r for r in rows if r.run_id == wanted and not r.location.startswith("rsync:")),
        key=lambda r: order[r.kind],
    )
    if not copies:
        raise DrillError(f"no readable copy of run {wanted}")
    return wanted, copies


def _connect(address: str, user: str, password: str | None):
    host, port = split_address(address)
    return pymysql.connect(
        host=host,
        port=port,
        user=user,
        password=password or "",
        connect_timeout=10,
        autocommit=True,
    )


# mariadb-dump writes each event as one "/*!50106 CREATE*/ ... EVENT `name` ON SCHEDULE ...
# ON COMPLETION [NOT] PRESERVE {ENABLE | DISABLE | DISABLE ON SLAVE} [COMMENT '...'] DO ..." line.
_EVENT_STATUS = re.compile(
    rb"^(/\*!50106 CREATE\*/ (?:/\*!50117 DEFINER=.*?\*/ )?/\*!50106 EVENT "
    rb"`(?:[^`]|``)+` ON SCHEDULE .*? ON COMPLETION (?:NOT )?PRESERVE )"
    rb"(?:ENABLE|DISABLE ON SLAVE)\b",
    re.M,
)


class EventDisabler:
    """Writer that passes a dump on with every EVENT's status rewritten to ``DISABLE``."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self._buf = b""

    def write(self, data: bytes) -> int:
        buf = self._buf + data
        cut = buf.rfind(b"\n") + 1
        self._buf = buf[cut:]
        if cut:
            self._pass(buf[:cut])
        return len(data)

    def _pass(self, text: bytes) -> None:
        if b"50106 EVENT" in text:
            text = _EVENT_STATUS.sub(rb"\1DISABLE", text)
        self.raw.write(text)

    def flush(self) -> None:
        if self._buf:
            self._pass(self._buf)
            self._buf = b""
        self.raw.flush()


def restore_dump(
    path: Path,
    entry: FileEntry,
    options: Path,
    database: str,
    identities: list | None = None,
    disable_events: bool = False,
) -> None:
    """Stream ``path`` (decrypted with ``identities`` when given), decompressed, into the
    ``mariadb`` client; the compressed plaintext's sha256 is checked on the way."""
    dctx = zstandard.ZstdDecompressor()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [client_program(), f"--defaults-extra-file={options}", "--batch", database],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        assert proc.stdin is not None
        broken = None
        sink = EventDisabler(proc.stdin) if disable_events else proc.stdin
        try:
            with dctx.stream_writer(sink, closefd=False) as plain:
                hashed = HashingWriter(plain)
                if identities is not None:
                    crypt.decrypt_into(path, hashed, identities)
                else:
                    with open(path, "rb") as f:
                        while chunk := f.read(CHUNK):
                            hashed.write(chunk)
            sink.flush()
        except crypt.CryptError as exc:
            broken = str(exc)
        except zstandard.ZstdError as exc:
            broken = f"cannot decompress {entry.name}: {exc}"
        except OSError:  # BrokenPipeError, also when raised through pyrage
            broken = "the client stopped reading"
        finally:
            if broken is not None and proc.poll() is None:
                proc.kill()  # never let a half-fed client commit what it has
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
            code = proc.wait()
        err.seek(0)
        tail = err.read()[-1500:].decode("utf-8", "replace").strip()
    if broken and broken != "the client stopped reading":
        raise DrillError(broken)
    if code != 0:
        raise DrillError(f"restore of {entry.name} failed (exit {code}): {mask_text(tail)}")
    if broken:
        raise DrillError(broken)
    if hashed.sha256.hexdigest() != entry.sha256:
        raise DrillError(f"{entry.name}: sha256 differs from the manifest while restoring")


def check_tables(conn, scratch: str, expected: dict[str, int]) -> tuple[int, list[str]]:
    """Row counts of the restored tables against the manifest; returns (rows, problems)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = %s AND table_type = 'BASE TABLE'",
            (scratch,),
        )
        present = {row[0] for row in cur.fetchall()}
        problems = [f"table {t} missing after restore" for t in sorted(set(expected) - present)]
        total = 0
        for table in sorted(set(expected) & present):
            quoted = table.replace("`", "``")
            cur.execute(f"SELECT COUNT(*) FROM `{scratch}`.`{quoted}`")
            count = int(cur.fetchone()[0])
            total += count
            if count != expected[table]:
                problems.append(
                    f"table {table}: {count} rows restored, manifest has {expected[table]}"
                )
    return total, problems


def check_config(root: Path, manifest: Manifest) -> list[str]:
    problems = []
    for entry in manifest.config:
        path = root / entry.path
        if not path.is_file():
            problems.append(f"config file /{entry.path} missing after restore")
            continue
        size, digest = copying.hash_file(path)
        if size != entry.size or digest != entry.sha256:
            problems.append(f"config file /{entry.path} differs after restore")
    return problems


def drill_set(
    bset: BackupSet,
    catalogue: Catalogue,
    run_id: str | None = None,
    clock: Callable[[], float] = time.time,
    scratch_dir: Path | None = None,
    progress: Progress = no_progress,
    identity_file: Path | None = None,
) -> DrillReport:
    """``identity_file`` (default: ``drill.identity_file``) decrypts an encrypted copy."""
    report = DrillReport(bset.name)
    started = clock()
    try:
        _drill(
            bset,
            catalogue,
            run_id,
            report,
            scratch_dir or bset.drill.scratch_dir,
            progress,
            identity_file or bset.drill.identity_file,
        )
        report.ok = True
    except (DrillError, crypt.CryptError, ScratchServerError, OSError, pymysql.MySQLError) as exc:
        report.error = mask_text(
            str(exc) if not isinstance(exc, pymysql.MySQLError) else f"MySQL error: {exc.args[-1]}"
        )
    finished = clock()
    report.duration = finished - started
    catalogue.record_drill(
        bset.name,
        report.run_id,
        report.location,
        started,
        finished,
        report.ok,
        report.error,
        report.tables,
        report.rows,
    )
    kv = {"set": bset.name, "run": report.run_id or "", "duration": f"{report.duration:.1f}"}
    if report.ok:
        log.info("restore drill succeeded", extra={"kv": kv})
    else:
        log.error("RESTORE DRILL FAILED", extra={"kv": {**kv, "err": report.error}})
    return report


def _drill(
    bset: BackupSet,
    catalogue: Catalogue,
    run_id: str | None,
    report: DrillReport,
    scratch_dir: Path | None,
    progress: Progress,
    identity_file: Path | None,
) -> None:
    run_id, copies = choose_copy(catalogue.copies(bset.name), run_id)
    report.run_id = run_id
    chosen = None
    for row in copies:
        found = [f for f in check_row(catalogue, row) if f[0] != "unexpected"]
        if not found:
            chosen = row
            break
        report.notes.append(f"{row.location}: " + "; ".join(f"{k} {p}" for k, p, _ in found))
    if chosen is None:
        raise DrillError(f"no intact copy of run {run_id}: " + " | ".join(report.notes))
    report.location = chosen.location
    directory = Path(chosen.dest)
    identities = None
    if chosen.encrypted:
        identities = crypt.load_identities(identity_file)
        data = crypt.decrypt_bytes(directory / (MANIFEST + crypt.SUFFIX), identities)
    else:
        data = (directory / MANIFEST).read_bytes()
    if chosen.manifest_sha256 is not None and sha256_bytes(data) != chosen.manifest_sha256:
        raise DrillError(f"{MANIFEST} of {chosen.location} differs from the catalogue")
    manifest = Manifest.from_json(data)
    suffix = crypt.SUFFIX if chosen.encrypted else ""

    dumps = [f for f in manifest.files if f.kind == "mysql"]
    if dumps:
        with _restore_target(bset, scratch_dir) as (conn, options, shared):
            problems: list[str] = []
            for entry in dumps:
                # A throwaway server gets the database's own name, so that what the dump's
                # routines and views name resolves inside it.
                name = f"{SCRATCH_PREFIX}{secrets.token_hex(6)}" if shared else entry.database
                assert name is not None
                quoted = name.replace("`", "``")
                with conn.cursor() as cur:
                    cur.execute(f"CREATE DATABASE `{quoted}` CHARACTER SET utf8mb4")
                try:
                    with progress(f"{bset.name}: restore {entry.database}", None):
                        restore_dump(
                            directory / (entry.name + suffix),
                            entry,
                            options,
                            name,
                            identities,
                            disable_events=shared,
                        )
                    if shared:
                        _check_events_disabled(conn, name)
                    expected = manifest.databases.get(entry.database or "", {})
                    rows, found = check_tables(conn, name, expected)
                    report.tables += len(expected)
                    report.rows += rows
                    problems += [f"{entry.database}: {p}" for p in found]
                finally:
                    if shared:
                        with conn.cursor() as cur:
                            cur.execute(f"DROP DATABASE IF EXISTS `{quoted}`")
        if problems:
            raise DrillError("; ".join(problems))

    config = next((f for f in manifest.files if f.kind == "config"), None)
    if config is not None:
        tmp = Path(tempfile.mkdtemp(prefix="sscp-drill-", dir=scratch_dir))
        try:
            tarball = directory / config.name
            if identities is not None:
                tarball = tmp / config.name
                with PRIVATE.open(tarball) as out:
                    hashed = HashingWriter(out)
                    crypt.decrypt_into(directory / (config.name + suffix), hashed, identities)
                if hashed.sha256.hexdigest() != config.sha256:
                    raise DrillError(f"{config.name}: sha256 differs from the manifest")
            root = tmp / "root"
            root.mkdir()
            extract_config_tarball(tarball, root)
            problems = check_config(root, manifest)
            report.config_files = len(manifest.config) - len(problems)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if problems:
            raise DrillError("; ".join(problems))


@contextmanager
def _restore_target(bset: BackupSet, scratch_dir: Path | None) -> Iterator[tuple]:
    """(connection, client option file, shared?) of the server the dumps are restored into."""
    target = bset.drill
    if target.server == "shared":
        password = target.password()
        conn = _connect(target.address, target.user, password)
        try:
            with credentials_file(target.user, password, target.address) as options:
                yield conn, options, True
        finally:
            conn.close()
        return
    with throwaway_mariadb(scratch_dir) as server:
        conn = server.connect()
        try:
            with credentials_file(server.user, None, None, socket=server.socket) as options:
                yield conn, options, False
        finally:
            conn.close()


def _check_events_disabled(conn, scratch: str) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT event_name FROM information_schema.events"
            " WHERE event_schema = %s AND status <> 'DISABLED'",
            (scratch,),
        )
        enabled = [row[0] for row in cur.fetchall()]
    if enabled:
        raise DrillError(f"events restored enabled on the shared server: {', '.join(enabled)}")
