"""The configuration tarball (zstd-compressed tar) and its per-file sha256 list."""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard

from sscp_ops.backup.dump import HashingWriter
from sscp_ops.backup.manifest import ConfigEntry


class _HashingReader:
    def __init__(self, raw) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha256.update(data)
        return data


@dataclass(frozen=True)
class ArchiveResult:
    size: int
    sha256: str
    entries: tuple[ConfigEntry, ...]
    missing: tuple[str, ...]


def _walk(paths: Iterable[Path]) -> Iterator[Path]:
    for root in paths:
        if root.is_dir() and not root.is_symlink():
            yield root
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                for name in [*sorted(dirnames), *sorted(filenames)]:
                    yield Path(dirpath) / name
        else:
            yield root


def member_name(path: Path) -> str:
    return str(path.absolute()).lstrip("/")


def build_config_tarball(paths: Iterable[Path], dest: Path, level: int = 3) -> ArchiveResult:
    """Write the files under ``paths`` into ``dest``; absent paths are listed, not fatal."""
    entries: list[ConfigEntry] = []
    missing: list[str] = []
    with open(dest, "wb") as out:
        sink = HashingWriter(out)
        cctx = zstandard.ZstdCompressor(level=level)
        with (
            cctx.stream_writer(sink, closefd=False) as zw,
            tarfile.open(fileobj=zw, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for path in _walk(paths):
                if not path.exists() and not path.is_symlink():
                    missing.append(str(path))
                    continue
                info = tar.gettarinfo(str(path), arcname=member_name(path))
                if info.isfile():
                    with open(path, "rb") as f:
                        reader = _HashingReader(f)
                        tar.addfile(info, reader)
                    entries.append(ConfigEntry(info.name, info.size, reader.sha256.hexdigest()))
                else:
                    tar.addfile(info)
        sink.flush()
        os.fsync(out.fileno())
    return ArchiveResult(sink.size, sink.sha256.hexdigest(), tuple(entries), tuple(missing))


def extract_config_tarball(src: Path, dest: Path) -> None:
    """Unpack into ``dest`` with tarfile's ``data`` filter (no absolute paths, no escapes)."""
    dctx = zstandard.ZstdDecompressor()
    with (
        open(src, "rb") as f,
        dctx.stream_reader(f) as zr,
        tarfile.open(fileobj=zr, mode="r|") as tar,
    ):
        tar.extractall(dest, filter="data")
