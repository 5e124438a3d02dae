"""Files only the service's own user may read: 0600 files in 0700 directories, whatever the
umask of the process that creates them.

The webhook's SQLite store (database, WAL, shared memory, lock file), its session signing key
and the exporter's position files hold credentials or personal data; a umask of 022 (the
default of most shells and of systemd without ``UMask=``) would make them world-readable.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700 directories; an existing directory is
    left as it is (it may be shared, such as ``/var/lib``)."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(directory, DIR_MODE)  # mkdir's mode passes through the umask
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty as 0600 unless it exists; an existing file of ours is made 0600
    (a store created 0644 by an older version is tightened at start)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    try:
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return Path(path)


def tighten(path: Path) -> None:
    """Make an existing file of ours 0600; a missing one is fine."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if st.st_uid == os.geteuid() and st.st_mode & 0o777 != FILE_MODE:
        os.chmod(path, FILE_MODE)


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, the new file 0600 from its first byte."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def secret_once(path: Path, make: Callable[[], str] = lambda: secrets.token_hex(32)) -> str:
    """The secret kept in ``path``, created 0600 with ``make()`` by whoever comes first.

    The new file is written whole under another name and linked into place, so a process that
    starts at the same moment (a gunicorn worker, the CLI) reads either nothing or the whole
    secret, never half of it."""
    path = Path(path)
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        value = ""
    if value:
        tighten(path)
        return value
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, (make() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process was first: use its secret
    finally:
        os.unlink(tmp)
    return path.read_text(encoding="utf-8").strip()
