"""The MySQL/MariaDB logical dump: credentials file, the dump stream, and row counts read from it.

``mariadb-dump --single-transaction --routines --events --triggers`` runs per database with its
credentials in a temporary ``--defaults-extra-file`` (mode 0600, deleted afterwards), never on
the command line. Its output is compressed with zstd and hashed in one pass, and the rows per
table are counted from the dump text itself (:class:`RowCounter`), so the manifest's counts are
exactly those of the consistent snapshot that was dumped, not of a later ``COUNT(*)``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import zstandard

CHUNK = 1 << 20
DUMP_FLAGS = (
    "--single-transaction",
    "--routines",
    "--events",
    "--triggers",
    "--hex-blob",
    "--default-character-set=utf8mb4",
)

# mariadb-dump writes each INSERT as one statement ending in ");" at the end of a line; string
# literals never hold a raw newline (it is escaped), so "^INSERT" and ");$" cannot be in data.
_INSERT_HEAD = re.compile(rb"^INSERT INTO `((?:[^`]|``)+)` VALUES\s", re.M)
_INSERT_START = re.compile(rb"^INSERT INTO `", re.M)
_CREATE = re.compile(rb"^CREATE TABLE `((?:[^`]|``)+)` \(", re.M)
_STRING = re.compile(rb"'[^'\\]*(?:\\.[^'\\]*)*'")


class DumpError(Exception):
    """The dump program failed; the message holds its exit code and (masked) stderr tail."""


def _table(raw: bytes) -> str:
    return raw.replace(b"``", b"`").decode("utf-8", "replace")


def count_rows(buf: bytes, start: int = 0, end: int | None = None) -> int:
    """Rows in ``buf[start:end]``, the VALUES part of one INSERT statement.

    MariaDB 10.11+ writes one row per line: a raw newline never occurs inside a literal, so each
    ``\\n(`` starts a row. Older dumps put all rows on one line: there, one ``(`` per row
    outside string literals.
    """
    end = len(buf) if end is None else end
    if buf.find(b"\n", start, end) >= 0:
        return buf.count(b"\n(", start, end) + 1
    values = buf[start:end]
    if b"'" in values:
        values = _STRING.sub(b"", values)
    return values.count(b"(")


@dataclass
class RowCounter:
    """Counts rows per table in a mariadb-dump stream fed in arbitrary chunks."""

    tables: dict[str, int] = field(default_factory=dict)
    _buf: bytes = b""

    def feed(self, chunk: bytes) -> None:
        buf = self._buf + chunk
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            self._buf = buf
            return
        work, tail = buf[:cut], buf[cut:]
        pos = 0
        while True:
            m = _INSERT_HEAD.search(work, pos)
            gap_end = m.start() if m else len(work)
            for c in _CREATE.finditer(work, pos, gap_end):
                self.tables.setdefault(_table(c.group(1)), 0)
            if m is None:
                pending = _INSERT_START.search(work, pos)
                self._buf = (work[pending.start() :] if pending else b"") + tail
                return
            end = work.find(b");\n", m.end())
            if end < 0:
                self._buf = work[m.start() :] + tail
                return
            name = _table(m.group(1))
            self.tables[name] = self.tables.get(name, 0) + count_rows(work, m.end(), end + 1)
            pos = end + 3

    def close(self) -> dict[str, int]:
        self.feed(b"\n")
        if _INSERT_START.search(self._buf):
            raise DumpError("dump ends inside an INSERT statement (truncated dump)")
        return dict(sorted(self.tables.items()))


def option_file_text(
    user: str, password: str | None, host: str, port: int, socket: Path | None = None
) -> str:
    """A ``[client]`` option file; values are quoted and escaped the way MariaDB reads them.
    With ``socket``, the client connects through that Unix socket instead of host and port."""

    def q(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["[client]", f"user={q(user)}"]
    if socket is not None:
        lines += ["host=localhost", f"socket={q(str(socket))}"]
    else:
        lines += [f"host={q(host)}", f"port={port}"]
    if password is not None:
        lines.append(f"password={q(password)}")
    return "\n".join(lines) + "\n"


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


@contextmanager
def credentials_file(
    user: str, password: str | None, address: str | None, socket: Path | None = None
) -> Iterator[Path]:
    """A private temporary option file for ``--defaults-extra-file``; removed on exit."""
    host, port = split_address(address) if address else ("localhost", 0)
    fd, name = tempfile.mkstemp(prefix="sscp-ops-my-", suffix=".cnf")  # created 0600
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(option_file_text(user, password, host, port, socket))
        yield Path(name)
    finally:
        os.unlink(name)


def dump_program() -> str:
    for name in ("mariadb-dump", "mysqldump"):
        path = shutil.which(name)
        if path:
            return path
    raise DumpError("neither mariadb-dump nor mysqldump is installed")


def client_program() -> str:
    for name in ("mariadb", "mysql"):
        path = shutil.which(name)
        if path:
            return path
    raise DumpError("neither mariadb nor mysql client is installed")


def program_version(program: str) -> str:
    out = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def dump_command(program: str, options: Path, database: str) -> list[str]:
    # --defaults-extra-file must come first on the command line.
    return [program, f"--defaults-extra-file={options}", *DUMP_FLAGS, database]


class HashingWriter:
    """File-like sink that hashes and counts what is written before passing it on."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


@dataclass(frozen=True)
class DumpResult:
    database: str
    size: int  # compressed bytes on disk
    raw_size: int  # bytes of SQL
    sha256: str
    tables: dict[str, int]


def compress_stream(
    source: BinaryIO,
    dest: BinaryIO,
    level: int,
    on_chunk: Callable[[bytes], None] | None = None,
) -> tuple[int, int, str]:
    """zstd-compress ``source`` into ``dest``; returns (raw bytes, compressed bytes, sha256)."""
    sink = HashingWriter(dest)
    raw = 0
    # threads=1: libzstd compresses in its own thread, outside the GIL, while this thread
    # reads the next chunk and counts rows.
    cctx = zstandard.ZstdCompressor(level=level, threads=1)
    with cctx.stream_writer(sink, closefd=False) as writer:
        while True:
            chunk = source.read(CHUNK)
            if not chunk:
                break
            raw += len(chunk)
            if on_chunk is not None:
                on_chunk(chunk)
            writer.write(chunk)
    sink.flush()
    return raw, sink.size, sink.sha256.hexdigest()


def _widen_pipe(pipe: BinaryIO) -> None:
    """Let the dump run ahead of us by up to 1 MiB (the default pipe holds 64 KiB)."""
    try:
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, CHUNK)
    except (OSError, AttributeError):
        pass


def dump_database(
    database: str,
    options: Path,
    dest: Path,
    level: int = 3,
    timeout: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> DumpResult:
    """Dump one database into ``dest`` (zstd), counting rows; raise :class:`DumpError`."""
    counter = RowCounter()

    def on_chunk(chunk: bytes) -> None:
        counter.feed(chunk)
        if progress is not None:
            progress(len(chunk))

    with tempfile.TemporaryFile() as err, open(dest, "wb") as out:
        proc = subprocess.Popen(
            dump_command(dump_program(), options, database),
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
        _widen_pipe(proc.stdout)
        try:
            raw, size, digest = compress_stream(proc.stdout, out, level, on_chunk)
            out.flush()
            os.fsync(out.fileno())
        finally:
            proc.stdout.close()
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise DumpError(f"dump of {database} timed out after {timeout}s") from None
        if code != 0:
            err.seek(0)
            tail = err.read()[-2000:].decode("utf-8", "replace").strip()
            raise DumpError(f"{Path(dump_program()).name} exited {code}: {tail}")
    return DumpResult(database, size, raw, digest, counter.close())
