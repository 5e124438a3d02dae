"""Follow a growing log file across rotation, truncation and restarts, a bounded chunk at a time.

A :class:`LogFollower` remembers where it stopped in a small JSON *position file*::

    {"path": "/var/log/nginx/access.log", "inode": 1234, "offset": 56789,
     "head": "9f86d081884c7d65"}

``head`` is a hash of the file's first line: it tells the same file from a new one that got the
same inode, or from the same file truncated and written again past the old offset.

At each :meth:`LogFollower.read` it finds the file the position refers to:

- the live path, same inode, first line unchanged, not shorter than the offset: read on;
- otherwise a *rotated sibling* in the same directory (``access.log.1``, ``access.log-20261128``;
  compressed ones are skipped) whose first line hash matches: that is the old file renamed away
  (same inode) or its copy (copytruncate, new inode). The rest of it is read first, then the
  follower moves to the start of the live file;
- neither: the file was truncated in place or replaced while nothing kept it; the live file is
  read from its start.

So lines written while the follower was down, or between its last read and a rotation, are read
once. Only complete lines are returned (a partial last line waits for its newline, except at the
end of a rotated file). One read returns at most ``max_bytes`` of data, and the file is never
read whole into memory. The position advances in memory at each read and is written to disk by
:meth:`LogFollower.commit`, after the caller has handled the lines: a crash in between re-reads
them (at least once); callers that store events deduplicate on :attr:`Line.key`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import accumulate
from pathlib import Path

from sscp_ops.filemode import PRIVATE

log = logging.getLogger("tailer")

#: Bytes of the first line that identify a file.
HEAD_BYTES = 1024
BLOCK = 64 * 1024
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip")


@dataclass(frozen=True)
class Position:
    path: str
    inode: int | None = None
    offset: int = 0
    head: str | None = None


@dataclass(frozen=True)
class Chunk:
    """Lines read from one file: ``file_id`` (its head hash) and the byte offset of each line."""

    file_id: str
    offsets: list[int]
    lines: list[str]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """(dedup key, line) pairs; the key is stable across re-reads of the same bytes."""
        for offset, line in zip(self.offsets, self.lines, strict=True):
            yield f"{self.file_id}:{offset}", line


def head_hash(path: str | os.PathLike, fd: int | None = None) -> str | None:
    """Hash of the first line (its first ``HEAD_BYTES`` bytes); None while it is incomplete."""
    try:
        if fd is None:
            with open(path, "rb") as f:
                data = f.read(HEAD_BYTES)
        else:
            data = os.pread(fd, HEAD_BYTES, 0)
    except OSError:
        return None
    end = data.find(b"\n")
    if end < 0:
        if len(data) < HEAD_BYTES:
            return None
        end = len(data)
    return hashlib.blake2b(data[:end], digest_size=8).hexdigest()


class LogFollower:
    def __init__(
        self, path: str | os.PathLike, position_file: str | os.PathLike, max_bytes: int = 8 << 20
    ) -> None:
        self.path = Path(path)
        self.position_file = Path(position_file)
        self.max_bytes = max_bytes
        self.position = self._load()
        self._committed = self.position

    # -- position file --------------------------------------------------------------------
    def _load(self) -> Position:
        try:
            data = json.loads(self.position_file.read_text(encoding="utf-8"))
            pos = Position(
                path=str(data["path"]),
                inode=int(data["inode"]) if data.get("inode") is not None else None,
                offset=int(data["offset"]),
                head=data.get("head"),
            )
        except FileNotFoundError:
            return Position(str(self.path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "unreadable position file, starting at the beginning",
                extra={"kv": {"file": str(self.position_file), "err": str(exc)}},
            )
            return Position(str(self.path))
        return pos

    def commit(self) -> None:
        """Write the in-memory position to the position file (atomically)."""
        if self.position == self._committed:
            return
        # 0600 in a 0700 directory: the offsets say what was read of logs others may not read
        PRIVATE.makedirs(self.position_file.parent)
        PRIVATE.write_atomic(self.position_file, json.dumps(asdict(self.position)).encode())
        self._committed = self.position

    # -- finding the file ---------------------------------------------------------------
    def _siblings(self) -> list[Path]:
        base = self.path.name
        try:
            names = os.listdir(self.path.parent)
        except OSError:
            return []
        out = [
            self.path.parent / n
            for n in names
            if n != base and n.startswith(base) and not n.endswith(_COMPRESSED)
        ]
        # Most recently modified first: the last rotation is the likely one.
        return sorted(out, key=lambda p: _mtime(p), reverse=True)

    def _matches(self, path: Path, st: os.stat_result) -> bool:
        pos = self.position
        return st.st_size >= pos.offset and head_hash(path) == pos.head

    def _locate(self) -> tuple[Path, bool] | None:
        """(path, is_live) of the file the position refers to, or None when it is gone."""
        pos = self.position
        if pos.inode is None or pos.head is None:
            return None
        live = _stat(self.path)
        if live is not None and live.st_ino == pos.inode and self._matches(self.path, live):
            return self.path, True
        for sib in self._siblings():
            st = _stat(sib)
            if st is not None and self._matches(sib, st):
                return sib, False
        return None

    # -- reading ------------------------------------------------------------------------
    def read(self) -> list[Chunk]:
        """New complete lines since the last read, at most ``max_bytes`` of them."""
        budget = self.max_bytes
        chunks: list[Chunk] = []
        found = self._locate()
        if found is not None and not found[1]:
            path, _ = found
            before = self.position.offset
            chunk, done = self._read_from(path, budget, final=True)
            if chunk.lines:
                chunks.append(chunk)
            budget -= self.position.offset - before
            if not done:
                return chunks
            log.info("finished rotated file", extra={"kv": {"path": str(path)}})
            found = None
            self._restart()
        elif found is None:
            if self.position.offset > 0:
                log.warning(
                    "log file truncated or replaced, reading it from the start",
                    extra={"kv": {"path": str(self.path), "offset": self.position.offset}},
                )
            self._restart()
        if budget > 0:
            chunk, _ = self._read_from(self.path, budget, final=False)
            if chunk.lines:
                chunks.append(chunk)
        return chunks

    def _restart(self) -> None:
        self.position = Position(str(self.path))

    def _read_from(self, path: Path, budget: int, final: bool) -> tuple[Chunk, bool]:
        """Read complete lines from ``path`` at the position; (chunk, reached end of file)."""
        pos = self.position
        offsets: list[int] = []
        lines: list[str] = []
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return Chunk(pos.head or "", offsets, lines), True
        try:
            st = os.fstat(fd)
            if pos.inode is None or pos.inode != st.st_ino or pos.head is None:
                head = head_hash(path, fd)
                if head is None:  # empty file or first line still incomplete
                    return Chunk("", offsets, lines), True
                pos = Position(str(path), st.st_ino, 0 if pos.inode is None else pos.offset, head)
            offset = pos.offset
            end = min(st.st_size, offset + budget)
            carry = b""
            at_eof = False
            while offset + len(carry) < end:
                want = min(BLOCK, end - offset - len(carry))
                data = os.pread(fd, want, offset + len(carry))
                if not data:
                    at_eof = True
                    break
                buf = carry + data
                last = buf.rfind(b"\n")
                if last >= 0:
                    _split_lines(buf[:last], offset, offsets, lines)
                    offset += last + 1
                    carry = buf[last + 1 :]
                else:
                    carry = buf
                if len(carry) > budget:  # one line longer than the budget: cut it
                    offsets.append(offset)
                    lines.append(carry.decode("utf-8", "replace"))
                    offset += len(carry)
                    carry = b""
            reached_end = offset + len(carry) >= st.st_size or at_eof
            if final and reached_end and carry:
                offsets.append(offset)
                lines.append(carry.decode("utf-8", "replace"))
                offset += len(carry)
            self.position = Position(str(path), pos.inode, offset, pos.head)
            return Chunk(pos.head, offsets, lines), reached_end
        finally:
            os.close(fd)


def _split_lines(block: bytes, offset: int, offsets: list[int], lines: list[str]) -> None:
    """Append the lines of ``block`` (complete lines, the last newline cut off) and the byte
    offset where each starts."""
    parts = block.split(b"\n")
    offsets.extend(accumulate([len(p) + 1 for p in parts[:-1]], initial=offset))
    if block.isascii():
        lines.extend(block.decode("ascii").split("\n"))
    else:
        lines.extend([p.decode("utf-8", "replace") for p in parts])


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _mtime(path: Path) -> float:
    st = _stat(path)
    return st.st_mtime if st else 0.0
