"""``backup run``: dump, archive, manifest, copies to every location, retention, catalogue.

The first local location is the primary: the run is staged there (write, then rename) and
copied from there to the other locations. A failing location is recorded with its reason and
the run marked failed, but every copy that succeeded is kept.
"""

from __future__ import annotations

import fcntl
import logging
import platform
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import pymysql
import zstandard

from sscp_ops import __version__
from sscp_ops.backup import copy as copying
from sscp_ops.backup import crypt
from sscp_ops.backup.archive import build_config_tarball
from sscp_ops.backup.catalogue import Catalogue
from sscp_ops.backup.dump import (
    DumpError,
    credentials_file,
    dump_database,
    dump_program,
    program_version,
    split_address,
)
from sscp_ops.backup.manifest import (
    MANIFEST,
    RUN_ID,
    FileEntry,
    Manifest,
    new_run_id,
    sha256_bytes,
)
from sscp_ops.backup.progress import Progress, no_progress
from sscp_ops.backup.retention import runs_to_keep
from sscp_ops.config.backup import BackupSet, Location
from sscp_ops.filemode import PRIVATE, Private
from sscp_ops.masking import mask_text

log = logging.getLogger("backup")

CONFIG_TARBALL = "config.tar.zst"


@dataclass
class CopyOutcome:
    location: str
    kind: str
    result: str  # ok / failed / skipped
    error: str | None = None
    dest: str | None = None


@dataclass
class RunReport:
    set: str
    run_id: str
    ok: bool = False
    error: str | None = None
    size: int = 0
    copies: list[CopyOutcome] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


class RunLocked(Exception):
    """Another run of the same set holds the lock."""


@contextmanager
def run_lock(catalog: Path, set_name: str, private: Private = PRIVATE) -> Iterator[None]:
    """One run per set at a time: an exclusive ``flock`` beside the catalogue."""
    path = catalog.with_name(f"{catalog.name}.{set_name}.lock")
    with private.open(path, "ab") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(set_name) from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def dump_file_name(database: str) -> str:
    return f"mysql-{database}.sql.zst"


def server_version(address: str, user: str, password: str | None) -> str:
    host, port = split_address(address)
    conn = pymysql.connect(
        host=host, port=port, user=user, password=password or "", connect_timeout=10
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            return str(cur.fetchone()[0])
    finally:
        conn.close()


def _primary(bset: BackupSet) -> Location:
    return next(loc for loc in bset.locations if loc.kind == "local" and loc.path is not None)


def _stage(
    bset: BackupSet,
    partial: Path,
    run_id: str,
    config_file: Path | None,
    progress: Progress,
) -> Manifest:
    files: list[FileEntry] = []
    databases: dict[str, dict[str, int]] = {}
    tools = {
        "sscp-ops": __version__,
        "python": platform.python_version(),
        "zstd": ".".join(map(str, zstandard.ZSTD_VERSION)),
    }
    if bset.mysql is not None:
        my = bset.mysql
        password = my.password()
        tools["mariadb-dump"] = program_version(dump_program())
        try:
            tools["server"] = server_version(my.address, my.user, password)
        except pymysql.MySQLError as exc:
            raise DumpError(f"cannot connect to {my.address}: {exc.args[-1]}") from None
        with credentials_file(my.user, password, my.address) as options:
            for database in my.databases:
                name = dump_file_name(database)
                with progress(f"{bset.name}: dump {database}", None) as update:
                    res = dump_database(
                        database,
                        options,
                        partial / name,
                        bset.compression_level,
                        my.timeout,
                        update,
                    )
                files.append(FileEntry(name, res.size, res.sha256, "mysql", database, res.raw_size))
                databases[database] = res.tables
    config_paths = list(bset.config_paths) + ([config_file] if config_file else [])
    archive = build_config_tarball(config_paths, partial / CONFIG_TARBALL, bset.compression_level)
    files.append(FileEntry(CONFIG_TARBALL, archive.size, archive.sha256, "config"))
    return Manifest(
        set=bset.name,
        run_id=run_id,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        files=tuple(files),
        databases=databases,
        config=archive.entries,
        config_missing=archive.missing,
        tools=tools,
    )


@dataclass(frozen=True)
class _Source:
    """What a kind of copy is made from: a directory ``.../<set>/<run_id>`` and its files,
    the manifest last, with their sha256."""

    directory: Path
    names: list[str]
    expected: dict[str, str]
    manifest_sha: str  # what the catalogue records for the copy
    encrypted: bool

    @property
    def total(self) -> int:
        return sum(f.stat().st_size for f in (self.directory / n for n in self.names))


def _encrypt(
    bset: BackupSet, manifest: Manifest, partial: Path, age_dir: Path, private: Private
) -> tuple[Manifest, bytes, dict[str, tuple[int, str]]]:
    """Encrypt the staged files into ``age_dir``; the manifest gets each ciphertext's size and
    sha256, and is encrypted last. Returns it, its plaintext and the ciphertexts' list."""
    assert bset.encryption is not None
    recipients = crypt.parse_recipients(bset.encryption.public_keys())
    sealed: dict[str, tuple[int, str]] = {}
    files = []
    for f in manifest.files:
        name = f.name + crypt.SUFFIX
        sealed[name] = crypt.encrypt_file(partial / f.name, age_dir / name, recipients, private)
        files.append(replace(f, age_size=sealed[name][0], age_sha256=sealed[name][1]))
    manifest = replace(manifest, files=tuple(files))
    data = manifest.to_json()
    name = MANIFEST + crypt.SUFFIX
    sealed[name] = crypt.encrypt_bytes(data, age_dir / name, recipients, private)
    return manifest, data, sealed


def run_set(
    bset: BackupSet,
    catalogue: Catalogue,
    config_file: Path | None = None,
    clock: Callable[[], float] = time.time,
    copier: copying.Copier = copying.copy_file,
    progress: Progress = no_progress,
) -> RunReport:
    started = clock()
    run_id = new_run_id(started)
    bump = 1
    while catalogue.has_run(bset.name, run_id):
        run_id = new_run_id(started + bump)  # a second run within the same second
        bump += 1
    report = RunReport(bset.name, run_id)
    run = catalogue.start_run(bset.name, run_id, started)
    primary = _primary(bset)
    private = Private(bset.group)
    sealed_kinds = bset.encryption.kinds if bset.encryption else set()
    assert primary.path is not None
    set_dir = primary.path / bset.name
    partial = copying.partial_dir(set_dir, run_id)
    # Encrypted files are staged as .<run_id>.age.partial/<set>/<run_id>/ (the layout rsync
    # sends); with every kind encrypted, that directory becomes the primary copy.
    age_root = set_dir / f".{run_id}.age.partial"
    age_dir = age_root / bset.name / run_id
    final = set_dir / run_id
    log.info("backup started", extra={"kv": {"set": bset.name, "run": run_id}})
    sources: dict[bool, _Source] = {}
    try:
        if not primary.path.is_dir():
            raise copying.CopyError(f"location root {primary.path} does not exist")
        private.mkdir(set_dir, exist_ok=True)
        private.mkdir(partial)
        manifest = _stage(bset, partial, run_id, config_file, progress)
        sealed: dict[str, tuple[int, str]] = {}
        if sealed_kinds:
            for d in (age_root, age_root / bset.name, age_dir):
                private.mkdir(d)
            with progress(f"{bset.name}: encrypt", None):
                manifest, data, sealed = _encrypt(bset, manifest, partial, age_dir, private)
        else:
            data = manifest.to_json()
        manifest_sha = sha256_bytes(data)
        (partial / MANIFEST).write_bytes(data)
        plain = _Source(
            final,
            [f.name for f in manifest.files] + [MANIFEST],
            {f.name: f.sha256 for f in manifest.files} | {MANIFEST: manifest_sha},
            manifest_sha,
            False,
        )
        if sealed:
            age_names = [f.name + crypt.SUFFIX for f in manifest.files] + [MANIFEST + ".age"]
            age_source = _Source(
                age_dir,
                age_names,
                {n: sealed[n][1] for n in age_names},
                sealed[MANIFEST + ".age"][1],
                True,
            )
            catalogue.record_encrypted_files(run, sealed)
        if "local" in sealed_kinds:  # every copy encrypted: the plaintext is never published
            copying.publish(age_dir, final, private)
            shutil.rmtree(partial)
            shutil.rmtree(age_root)
            sources[True] = replace(age_source, directory=final)
        else:
            copying.publish(partial, final, private)
            sources[False] = plain
            if sealed:
                sources[True] = age_source
    except Exception as exc:  # any failure is recorded; the run must never stay "running"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(age_root, ignore_errors=True)
        if not isinstance(exc, DumpError | copying.CopyError | crypt.CryptError | OSError):
            log.exception("unexpected error while staging", extra={"kv": {"set": bset.name}})
        reason = mask_text(_reason(exc))
        catalogue.record_copy(run, primary.name, "local", str(final), "failed", reason)
        report.copies.append(CopyOutcome(primary.name, "local", "failed", reason))
        report.error = f"{primary.name}: {reason}"
        catalogue.finish_run(run, False, report.error, None, None)
        log.error("backup failed", extra={"kv": {"set": bset.name, "err": report.error}})
        return report

    report.size = manifest.size
    first = sources["local" in sealed_kinds]
    catalogue.record_copy(
        run,
        primary.name,
        "local",
        str(final),
        "ok",
        None,
        manifest.size,
        first.manifest_sha,
        first.encrypted,
    )
    report.copies.append(CopyOutcome(primary.name, "local", "ok", None, str(final)))

    try:
        for loc in bset.locations:
            if loc is primary:
                continue
            source = sources[loc.kind in sealed_kinds]
            outcome = _copy_to(loc, source, bset.name, run_id, copier, progress, private)
            report.copies.append(outcome)
            ok = outcome.result == "ok"
            catalogue.record_copy(
                run,
                loc.name,
                loc.kind,
                outcome.dest or loc.name,
                outcome.result,
                outcome.error,
                manifest.size if ok else None,
                source.manifest_sha if ok else None,
                source.encrypted,
            )
            level = logging.INFO if outcome.result != "failed" else logging.ERROR
            log.log(
                level,
                f"copy {outcome.result}",
                extra={"kv": {"set": bset.name, "location": loc.name, "err": outcome.error or ""}},
            )
    finally:
        shutil.rmtree(age_root, ignore_errors=True)

    failures = [f"{c.location}: {c.error}" for c in report.copies if c.result == "failed"]
    for loc in bset.locations:
        done = any(c.location == loc.name and c.result == "ok" for c in report.copies)
        if done and loc.path is not None:
            try:
                report.removed += apply_retention(catalogue, bset, loc, run_id)
            except OSError as exc:
                failures.append(f"{loc.name}: retention: {mask_text(_reason(exc))}")
    report.ok = not failures
    report.error = "; ".join(failures) or None
    catalogue.finish_run(run, report.ok, report.error, manifest.size, manifest_sha)
    log.info(
        "backup finished",
        extra={"kv": {"set": bset.name, "run": run_id, "ok": report.ok, "bytes": report.size}},
    )
    return report


def _copy_to(
    loc: Location,
    source: _Source,
    set_name: str,
    run_id: str,
    copier: copying.Copier,
    progress: Progress,
    private: Private,
) -> CopyOutcome:
    try:
        if loc.rsync is not None:
            dest = copying.rsync_run(
                source.directory, source.names, loc.rsync, set_name, run_id, private=private
            )
            return CopyOutcome(loc.name, loc.kind, "ok", None, dest)
        assert loc.path is not None
        if loc.kind == "offline" and not loc.path.is_dir():
            return CopyOutcome(loc.name, loc.kind, "skipped", "offline medium not attached")
        with progress(f"{set_name}: copy to {loc.name}", source.total) as update:
            dest_dir = copying.copy_run(
                source.directory,
                source.names,
                source.expected,
                loc.path,
                set_name,
                run_id,
                copier,
                update,
                private,
            )
        return CopyOutcome(loc.name, loc.kind, "ok", None, str(dest_dir))
    except Exception as exc:  # recorded as this location's failure; the others go on
        if not isinstance(exc, copying.CopyError | OSError):
            log.exception("unexpected error while copying", extra={"kv": {"location": loc.name}})
        return CopyOutcome(loc.name, loc.kind, "failed", mask_text(_reason(exc)))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    if isinstance(exc, DumpError | copying.CopyError | crypt.CryptError | ValueError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def apply_retention(
    catalogue: Catalogue, bset: BackupSet, loc: Location, current: str
) -> list[str]:
    """Delete the runs this location no longer keeps, and stale partial copies."""
    assert loc.path is not None
    set_dir = loc.path / bset.name
    runs = [p.name for p in set_dir.iterdir() if p.is_dir() and RUN_ID.match(p.name)]
    keep = runs_to_keep(runs, bset.retention) | {current}
    removed: list[str] = []
    rows = {row.run_id: row for row in catalogue.copies(bset.name) if row.location == loc.name}
    for run_id in sorted(set(runs) - keep):
        shutil.rmtree(set_dir / run_id)
        removed.append(str(set_dir / run_id))
        if run_id in rows:
            catalogue.mark_removed(rows[run_id].id)
    for stale in set_dir.glob(".*.partial"):
        if stale.name != f".{current}.partial":
            shutil.rmtree(stale, ignore_errors=True)
    return removed
