"""Shared building blocks of the config models."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

PositiveSeconds = Annotated[float, Field(gt=0, le=300)]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class Model(BaseModel):
    """Immutable, strict about unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(Model):
    """A secret given by a file (``password_file``) or an environment variable (``password_env``).

    The secret itself never sits in the config, and is read when it is used (so a rotated file
    is picked up without a restart) by :meth:`password`.
    """

    password_file: Path | None = None
    password_env: str | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if self.password_file is not None and self.password_env is not None:
            raise ValueError("give password_file or password_env, not both")
        return self

    def password(self) -> str | None:
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        if self.password_env is not None:
            return os.environ.get(self.password_env)
        return None


class TlsConfig(Model):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_skip_verify: bool = False


def unique_names(items: list, what: str) -> list:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise ValueError(f"duplicate {what} name {item.name!r}")
        seen.add(item.name)
    return items
