"""Copies of a staged run to a location, written then renamed, and hashing of files."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from sscp_ops.filemode import PRIVATE, Private

CHUNK = 1 << 20

#: Copies one file; the default is :func:`copy_file`. Tests inject failures through it.
Copier = Callable[[Path, Path, Callable[[int], None] | None], None]


class CopyError(Exception):
    """A copy to a location failed; the message is the reason recorded in the catalogue."""


def hash_file(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_file(src: Path, dst: Path, progress: Callable[[int], None] | None = None) -> None:
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(CHUNK):
            fout.write(chunk)
            if progress is not None:
                progress(len(chunk))
        fout.flush()
        os.fsync(fout.fileno())


def partial_dir(set_dir: Path, run_id: str) -> Path:
    return set_dir / f".{run_id}.partial"


def publish(partial: Path, final: Path, private: Private) -> None:
    """Give the files of ``partial`` their private mode, fsync them and rename ``partial`` to
    ``final`` (the commit point)."""
    private.apply(partial)
    for entry in partial.iterdir():
        private.apply(entry)
        fd = os.open(entry, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fsync_dir(partial)
    os.rename(partial, final)
    fsync_dir(final.parent)


def copy_run(
    staged: Path,
    names: Sequence[str],
    expected: dict[str, str],
    root: Path,
    set_name: str,
    run_id: str,
    copier: Copier = copy_file,
    progress: Callable[[int], None] | None = None,
    private: Private = PRIVATE,
) -> Path:
    """Copy ``names`` in their order (data files, the manifest last) from ``staged`` to
    ``root/set/run_id``.

    Every written file is read back and compared with ``expected`` sha256. On any failure the
    partial directory is removed and :class:`CopyError` raised with the reason.
    """
    if not root.is_dir():
        raise CopyError(f"location root {root} does not exist or is not a directory")
    set_dir = root / set_name
    final = set_dir / run_id
    partial = partial_dir(set_dir, run_id)
    try:
        private.mkdir(set_dir, exist_ok=True)
        if partial.exists():
            shutil.rmtree(partial)
        private.mkdir(partial)
        for name in names:
            copier(staged / name, partial / name, progress)
            _, digest = hash_file(partial / name)
            if digest != expected[name]:
                raise CopyError(f"{name}: read-back sha256 differs from the staged file")
        publish(partial, final, private)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise CopyError(_reason(exc)) from exc
    except CopyError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def _reason(exc: OSError) -> str:
    text = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{text}{where}"


def _rsync(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["rsync", *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise CopyError(f"rsync exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc


def rsync_run(
    staged: Path,
    names: Sequence[str],
    target: str,
    set_name: str,
    run_id: str,
    timeout: float = 4 * 3600,
    private: Private = PRIVATE,
) -> str:
    """rsync ``names`` (data files, the manifest last) of ``staged`` (a directory
    ``.../<set>/<run_id>``) to ``target/set/run_id/``.

    rsync writes each file under a temporary name and renames it, so the manifest appears
    only after every data file is complete. The set and run directories are sent as implied
    directories of a ``--relative`` path, so they get the private mode like the files, whatever
    the umask on the other side. Returns the destination.
    """
    assert (staged.parent.name, staged.name) == (set_name, run_id), staged
    root = f"{target.rstrip('/')}/"
    base = staged.parent.parent
    chmod = f"--chmod=D{private.dir_mode:o},F{private.file_mode:o}"
    options = ["--mkpath", "--checksum", "--times", "--relative", "--perms", chmod]
    paths = [f"{base}/./{set_name}/{run_id}/{n}" for n in names]
    for batch in (paths[:-1], paths[-1:]):
        _rsync([*options, *batch, root], timeout)
    return f"{root}{set_name}/{run_id}/"


def rsync_fetch(dest: str, into: Path, timeout: float = 4 * 3600) -> None:
    """Fetch the copy at ``dest`` into the local directory ``into`` (to hash it)."""
    _rsync(["--recursive", "--times", f"{dest.rstrip('/')}/", f"{into}/"], timeout)


def rsync_differences(staged: Path, dest: str, timeout: float = 4 * 3600) -> list[str]:
    """Files of ``staged`` that differ from or are missing at ``dest`` (by checksum)."""
    options = ["--dry-run", "--checksum", "--recursive", "--itemize-changes"]
    proc = _rsync([*options, f"{staged}/", dest], timeout)
    return [line.split(None, 1)[1] for line in proc.stdout.splitlines() if line[:1] in "<>c"]
