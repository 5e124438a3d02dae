"""The ``backup:`` section: backup sets, where their copies go, and where drills restore.

Shape (kept stable: the backup command, the exporter and the operations manual rely on it)::

    backup:
      catalog: /var/lib/sscp-ops/backup.db
      sets:
        - name: platform
          mysql: {address: "127.0.0.1:3306", user: backup,
                  password_file: /etc/sscp-ops/backup.pass, databases: [platform]}
          config_paths: [/etc/nginx, /etc/redis]
          locations:
            - {kind: local, path: /backup/a}
            - {kind: local, path: /backup/b}
            - {kind: offsite, path: /mnt/offsite}      # or rsync: "user@host:/path"
            - {kind: offline, path: /media/offline}
          retention: {daily: 7, weekly: 5, monthly: 12}
          encryption: {recipients: [age1...], locations: [offsite, offline]}
          drill: {identity_file: /root/backup-identity.txt}   # throwaway server by default

A location's root directory must already exist (a mounted disk, share or medium); the backup
writes under ``<root>/<set>/``. A missing offline medium is skipped, any other missing root is
a failed copy.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from sscp_ops.config.base import Model, Name, SecretRef, unique_names
from sscp_ops.config.targets import HostPort

DatabaseName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_$]+$")]
#: rsync/SSH destination ``[user@]host:/path`` or a local path given to rsync.
RsyncTarget = Annotated[str, Field(min_length=1, pattern=r"^\S+$")]


class MysqlSource(SecretRef):
    address: HostPort = "127.0.0.1:3306"
    user: str = "backup"
    databases: Annotated[list[DatabaseName], Field(min_length=1)]
    #: Dump and compression run with this timeout (seconds) per database.
    timeout: Annotated[float, Field(gt=0)] = 4 * 3600.0


class DrillTarget(SecretRef):
    """Where a drill restores the dumps. By default into a throwaway MariaDB server that the
    drill starts itself (own data directory and socket, no TCP port, stopped and removed
    afterwards), so production is never written; address, user and password are then unused.
    ``shared`` restores into scratch databases on the server at ``address`` instead, with the
    dump's EVENTs restored disabled (triggers and routines are restored as they are)."""

    server: Literal["throwaway", "shared"] = "throwaway"
    address: HostPort = "127.0.0.1:3306"
    user: str = "drill"
    #: age identity file (``AGE-SECRET-KEY-1...``) for encrypted copies; the command line's
    #: ``--identity-file`` overrides it.
    identity_file: Path | None = None
    #: Where the throwaway server's data directory and the unpacked config files go
    #: (default: the temp directory); it needs room for the restored databases.
    scratch_dir: Path | None = None


#: An age X25519 public key (bech32, ``age1`` and 58 characters).
AgeRecipient = Annotated[str, Field(pattern=r"^age1[02-9ac-hj-np-z]{58}$")]
EncryptedKind = Literal["local", "offsite", "offline", "all"]


class Encryption(Model):
    """Copies encrypted to age X25519 public keys; the private key is needed only by the drill
    (and by a restore), never by the backup itself."""

    recipients: list[AgeRecipient] = []
    #: A file of age public keys, one per line (``#`` comments and blank lines ignored).
    recipients_file: Path | None = None
    #: The location kinds whose copies are encrypted, or ``[all]``.
    locations: Annotated[list[EncryptedKind], Field(min_length=1)] = ["offsite", "offline"]

    @model_validator(mode="after")
    def _some_recipient(self):
        if not self.recipients and self.recipients_file is None:
            raise ValueError("give recipients or recipients_file")
        kinds = self.kinds
        if "local" in kinds and kinds != {"local", "offsite", "offline"}:
            raise ValueError(
                "local copies encrypted but not every copy: use [all], so no copy that leaves"
                " the machine is weaker than the ones that stay"
            )
        return self

    @property
    def kinds(self) -> set[str]:
        if "all" in self.locations:
            return {"local", "offsite", "offline"}
        return set(self.locations)

    def public_keys(self) -> list[str]:
        """The recipients, with those of ``recipients_file`` (read when called)."""
        keys = list(self.recipients)
        if self.recipients_file is not None:
            for n, line in enumerate(self.recipients_file.read_text().splitlines(), 1):
                line = line.strip()
                if line and not line.startswith("#"):
                    if not re.fullmatch(r"age1[02-9ac-hj-np-z]{58}", line):
                        raise ValueError(f"{self.recipients_file}:{n}: not an age public key")
                    keys.append(line)
        if not keys:
            raise ValueError(f"{self.recipients_file}: no age public key in it")
        return keys


class Location(Model):
    kind: Literal["local", "offsite", "offline"]
    path: Path | None = None
    rsync: RsyncTarget | None = None

    @model_validator(mode="after")
    def _one_target(self):
        if (self.path is None) == (self.rsync is None):
            raise ValueError("give exactly one of path or rsync")
        if self.rsync is not None and self.kind != "offsite":
            raise ValueError("rsync is only for an offsite location")
        return self

    @property
    def name(self) -> str:
        """The location's label in the catalogue and the metrics: its path or rsync target."""
        return str(self.path) if self.path is not None else f"rsync:{self.rsync}"


class Retention(Model):
    """How many runs each location keeps: the newest of each of the last N days/weeks/months."""

    daily: Annotated[int, Field(ge=1)] = 7
    weekly: Annotated[int, Field(ge=0)] = 5
    monthly: Annotated[int, Field(ge=0)] = 12


class BackupSet(Model):
    name: Name
    mysql: MysqlSource | None = None
    config_paths: list[Path] = []
    locations: Annotated[
        list[Location], Field(min_length=1), AfterValidator(lambda s: unique_names(s, "location"))
    ]
    retention: Retention = Retention()
    drill: DrillTarget = DrillTarget()
    #: age encryption of the copies of some or all location kinds.
    encryption: Encryption | None = None
    #: zstd level of the dump and the config tarball (3: fast, see docs/performance.md).
    compression_level: Annotated[int, Field(ge=1, le=19)] = 3
    #: Group given read access to the set's copies (files 0640, directories 0750); without
    #: it, files are 0600 and directories 0700.
    group: str | None = None

    @model_validator(mode="after")
    def _something_to_back_up(self):
        if self.mysql is None and not self.config_paths:
            raise ValueError("a backup set needs mysql or config_paths")
        if not any(loc.kind == "local" and loc.path is not None for loc in self.locations):
            raise ValueError("a backup set needs at least one local location")
        return self


class BackupConfig(Model):
    catalog: Path
    #: Group that may read the catalogue (0640), e.g. the exporter's; without it, 0600.
    catalog_group: str | None = None
    sets: Annotated[
        list[BackupSet], Field(min_length=1), AfterValidator(lambda s: unique_names(s, "set"))
    ]

    def get(self, name: str) -> BackupSet:
        for s in self.sets:
            if s.name == name:
                return s
        raise KeyError(name)
