"""The manifest: what one backup run holds, with sizes, sha256 and row counts (pure)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

MANIFEST = "manifest.json"
FORMAT = 1
RUN_ID = re.compile(r"^\d{8}T\d{6}Z$")


def new_run_id(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")


def run_time(run_id: str) -> datetime:
    return datetime.strptime(run_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class FileEntry:
    name: str
    size: int
    sha256: str
    kind: str  # "mysql" or "config"
    database: str | None = None
    raw_size: int | None = None
    #: Size and sha256 of ``<name>.age`` where the run has encrypted copies (the ciphertext
    #: is the same in every encrypted copy of the run).
    age_size: int | None = None
    age_sha256: str | None = None


@dataclass(frozen=True)
class ConfigEntry:
    path: str  # archive member name (absolute path without the leading "/")
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    set: str
    run_id: str
    created: str
    files: tuple[FileEntry, ...]
    #: database -> table -> rows at dump time
    databases: dict[str, dict[str, int]] = field(default_factory=dict)
    config: tuple[ConfigEntry, ...] = ()
    config_missing: tuple[str, ...] = ()
    tools: dict[str, str] = field(default_factory=dict)
    format: int = FORMAT

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> bytes:
        return (
            json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        try:
            d = json.loads(data)
            if d.get("format") != FORMAT:
                raise ValueError(f"unknown manifest format {d.get('format')!r}")
            return cls(
                set=d["set"],
                run_id=d["run_id"],
                created=d["created"],
                files=tuple(FileEntry(**f) for f in d["files"]),
                databases={db: dict(t) for db, t in d["databases"].items()},
                config=tuple(ConfigEntry(**c) for c in d["config"]),
                config_missing=tuple(d["config_missing"]),
                tools=dict(d["tools"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"unreadable manifest: {exc}") from None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
