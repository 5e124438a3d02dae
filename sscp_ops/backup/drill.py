"""``backup drill``: restore a run into scratch databases and a scratch directory, check, drop.

Checks: every file of the chosen copy hashes to its manifest; every table of the manifest is
present after the restore with the row count the dump held; every config file comes back with
its size and sha256. The duration from start to the end of the checks is the measured recovery
time (the objective is 4 h). The scratch databases and directory are always removed.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
import zstandard

from sscp_ops.backup import copy as copying
from sscp_ops.backup.archive import extract_config_tarball
from sscp_ops.backup.catalogue import Catalogue, CopyRow
from sscp_ops.backup.dump import (
    CHUNK,
    HashingWriter,
    client_program,
    credentials_file,
    split_address,
)
from sscp_ops.backup.manifest import MANIFEST, FileEntry, Manifest
from sscp_ops.backup.progress import Progress, no_progress
from sscp_ops.backup.verify import check_copy
from sscp_ops.config.backup import BackupSet
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


def restore_dump(path: Path, entry: FileEntry, options: Path, database: str) -> None:
    """Stream-decompress ``path`` into the ``mariadb`` client; check its sha256 on the way."""
    sink_hash = HashingWriter(_Null())
    dctx = zstandard.ZstdDecompressor()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [client_program(), f"--defaults-extra-file={options}", "--batch", database],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        broken = None
        try:
            with open(path, "rb") as f:
                reader = dctx.stream_reader(_Tee(f, sink_hash))
                while chunk := reader.read(CHUNK):
                    proc.stdin.write(chunk)
        except BrokenPipeError:
            broken = "the client stopped reading"
        except zstandard.ZstdError as exc:
            broken = f"cannot decompress {entry.name}: {exc}"
        finally:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
            code = proc.wait()
        err.seek(0)
        tail = err.read()[-1500:].decode("utf-8", "replace").strip()
    if code != 0:
        raise DrillError(f"restore of {entry.name} failed (exit {code}): {mask_text(tail)}")
    if broken:
        raise DrillError(broken)
    if sink_hash.sha256.hexdigest() != entry.sha256:
        raise DrillError(f"{entry.name}: sha256 differs from the manifest while restoring")


class _Null:
    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


class _Tee:
    def __init__(self, raw, sink: HashingWriter) -> None:
        self.raw, self.sink = raw, sink

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sink.write(data)
        return data


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
) -> DrillReport:
    report = DrillReport(bset.name)
    started = clock()
    try:
        _drill(bset, catalogue, run_id, report, scratch_dir, progress)
        report.ok = True
    except (DrillError, OSError, pymysql.MySQLError) as exc:
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
) -> None:
    run_id, copies = choose_copy(catalogue.copies(bset.name), run_id)
    report.run_id = run_id
    chosen = None
    for row in copies:
        found = [f for f in check_copy(Path(row.dest), row.manifest_sha256) if f[0] != "unexpected"]
        if not found:
            chosen = row
            break
        report.notes.append(f"{row.location}: " + "; ".join(f"{k} {p}" for k, p, _ in found))
    if chosen is None:
        raise DrillError(f"no intact copy of run {run_id}: " + " | ".join(report.notes))
    report.location = chosen.location
    directory = Path(chosen.dest)
    manifest = Manifest.from_json((directory / MANIFEST).read_bytes())

    dumps = [f for f in manifest.files if f.kind == "mysql"]
    if dumps:
        if bset.drill is None:
            raise DrillError("the set has MySQL dumps but no drill: target")
        target = bset.drill
        password = target.password()
        conn = _connect(target.address, target.user, password)
        problems: list[str] = []
        try:
            with credentials_file(target.user, password, target.address) as options:
                for entry in dumps:
                    scratch = f"{SCRATCH_PREFIX}{secrets.token_hex(6)}"
                    with conn.cursor() as cur:
                        cur.execute(f"CREATE DATABASE `{scratch}` CHARACTER SET utf8mb4")
                    try:
                        with progress(f"{bset.name}: restore {entry.database}", None):
                            restore_dump(directory / entry.name, entry, options, scratch)
                        expected = manifest.databases.get(entry.database or "", {})
                        rows, found = check_tables(conn, scratch, expected)
                        report.tables += len(expected)
                        report.rows += rows
                        problems += [f"{entry.database}: {p}" for p in found]
                    finally:
                        with conn.cursor() as cur:
                            cur.execute(f"DROP DATABASE IF EXISTS `{scratch}`")
        finally:
            conn.close()
        if problems:
            raise DrillError("; ".join(problems))

    config = next((f for f in manifest.files if f.kind == "config"), None)
    if config is not None:
        tmp = Path(tempfile.mkdtemp(prefix="sscp-drill-", dir=scratch_dir))
        try:
            extract_config_tarball(directory / config.name, tmp)
            problems = check_config(tmp, manifest)
            report.config_files = len(manifest.config) - len(problems)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if problems:
            raise DrillError("; ".join(problems))
