"""Private files and directories: 0600 / 0700, or 0640 / 0750 with a named group, whatever the
umask of the process (a umask only ever takes bits away, and 0077 would take the group's).

The one home for file modes: backups (dumps, copies, the catalogue), the webhook's SQLite
store and session key, the exporter's position files.

    private = Private()                 # or Private("sscp-ops")
    private.mkdir(path, exist_ok=True)  # created 0700 (0750), an existing one is tightened
    private.makedirs(path)              # missing parents too; existing ones left as they are
    with private.open(path) as f: ...   # created or truncated 0600 (0640)
    private.write_atomic(path, data)    # replaced whole, private from its first byte
    private.apply(path)                 # fix an existing file or directory
    secret_once(path)                   # a 0600 secret file, made by whoever comes first
"""

from __future__ import annotations

import grp
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True)
class Private:
    group: str | None = None

    @property
    def file_mode(self) -> int:
        return 0o640 if self.group else 0o600

    @property
    def dir_mode(self) -> int:
        return 0o750 if self.group else 0o700

    @cached_property
    def gid(self) -> int:
        """The group's id (-1: keep the group); an unknown group is an OSError."""
        if self.group is None:
            return -1
        try:
            return grp.getgrnam(self.group).gr_gid
        except KeyError:
            raise FileNotFoundError(f"group {self.group!r} does not exist") from None

    def apply(self, path: Path | str) -> None:
        """Set the mode (and group) of an existing file or directory; symlinks are left alone."""
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            return
        if self.gid != -1 and st.st_gid != self.gid:
            os.chown(path, -1, self.gid, follow_symlinks=False)
        mode = self.dir_mode if stat.S_ISDIR(st.st_mode) else self.file_mode
        if stat.S_IMODE(st.st_mode) != mode:
            os.chmod(path, mode)

    def apply_tree(self, root: Path) -> None:
        """:meth:`apply` to ``root`` and everything below it."""
        self.apply(root)
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                self.apply(os.path.join(dirpath, name))

    def mkdir(self, path: Path, exist_ok: bool = False) -> None:
        try:
            os.mkdir(path, self.dir_mode)
        except FileExistsError:
            if not exist_ok or not path.is_dir():
                raise
        self.apply(path)

    def open(self, path: Path, mode: str = "wb") -> BinaryIO:
        """Open for writing (``wb`` truncates, ``ab`` appends), created with the private mode."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
        flags |= os.O_APPEND if mode.startswith("a") else os.O_TRUNC
        fd = os.open(path, flags, self.file_mode)
        try:
            if self.gid != -1:
                os.fchown(fd, -1, self.gid)
            os.fchmod(fd, self.file_mode)
            return os.fdopen(fd, mode)
        except BaseException:
            os.close(fd)
            raise

    def touch(self, path: Path) -> None:
        """Create ``path`` empty if it is missing; in any case give it the private mode."""
        self.open(path, "ab").close()

    def makedirs(self, path: Path) -> Path:
        """Create ``path`` and its missing parents with the private mode; directories that
        exist are left as they are (they may be shared, such as ``/var/lib``)."""
        path = Path(path)
        missing = []
        probe = path
        while not probe.exists():
            missing.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
        for directory in reversed(missing):
            self.mkdir(directory, exist_ok=True)
        return path

    def tighten(self, path: Path) -> None:
        """Give an existing file or directory of this user the private mode; a missing one,
        or one another user owns, is left alone."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if st.st_uid == os.geteuid():
            self.apply(path)

    def write_atomic(self, path: Path, data: bytes) -> None:
        """Replace ``path`` with ``data`` (written under another name, fsynced, renamed), the
        new file private from its first byte."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        with self.open(tmp) as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


#: Files 0600, directories 0700.
PRIVATE = Private()


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
        PRIVATE.tighten(path)
        return value
    PRIVATE.makedirs(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with PRIVATE.open(tmp) as fh:
        fh.write((make() + "\n").encode())
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process was first: use its secret
    finally:
        os.unlink(tmp)
    return path.read_text(encoding="utf-8").strip()
