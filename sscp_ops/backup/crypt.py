"""age encryption of copies (X25519, through the ``pyrage`` binding), streamed in both ways.

An encrypted copy holds ``<file>.age`` for every file of the run, the manifest included, each
an age file (``age-encryption.org/v1``) readable with the ``age`` tool too. Encryption needs
only the public keys; decryption (the drill, a restore) needs an identity file with the
private key. pyrage reads and writes file objects in chunks, so a 1 GB dump is never held in
memory.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

from sscp_ops.backup.dump import HashingWriter
from sscp_ops.filemode import Private

SUFFIX = ".age"
MAGIC = b"age-encryption.org/v1"


class CryptError(Exception):
    """Encryption or decryption failed; the message is one line for the operator."""


def _pyrage():
    try:
        import pyrage
    except ImportError:  # pragma: no cover - installed with the backup-encryption extra
        raise CryptError(
            "encryption needs pyrage: pip install 'sscp-ops[backup-encryption]'"
        ) from None
    return pyrage


def parse_recipients(keys: list[str]) -> list:
    pyrage = _pyrage()
    out = []
    for key in keys:
        try:
            out.append(pyrage.x25519.Recipient.from_str(key))
        except pyrage.RecipientError as exc:
            raise CryptError(f"bad age public key {key[:12]}…: {exc}") from None
    return out


def load_identities(path: Path | None) -> list:
    """The age X25519 identities in ``path`` (``AGE-SECRET-KEY-1...`` lines)."""
    if path is None:
        raise CryptError(
            "the copy is encrypted: give the age identity file with --identity-file"
            " or drill.identity_file"
        )
    pyrage = _pyrage()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CryptError(f"cannot read identity file {path}: {exc}") from None
    out = []
    for line in lines:
        line = line.strip()
        if line.startswith("AGE-SECRET-KEY-1"):
            try:
                out.append(pyrage.x25519.Identity.from_str(line))
            except pyrage.IdentityError as exc:
                raise CryptError(f"identity file {path}: bad age identity: {exc}") from None
    if not out:
        raise CryptError(f"identity file {path}: no age identity (AGE-SECRET-KEY-1...) in it")
    return out


def encrypt_file(src: Path, dst: Path, recipients: list, private: Private) -> tuple[int, str]:
    """Encrypt ``src`` into ``dst`` (fsynced); returns the ciphertext's size and sha256."""
    pyrage = _pyrage()
    with open(src, "rb") as fin, private.open(dst, "wb") as fout:
        sink = HashingWriter(fout)
        try:
            pyrage.encrypt_io(fin, sink, recipients)
        except pyrage.EncryptError as exc:
            raise CryptError(f"cannot encrypt {src.name}: {exc}") from None
        fout.flush()
        os.fsync(fout.fileno())
    return sink.size, sink.sha256.hexdigest()


def encrypt_bytes(data: bytes, dst: Path, recipients: list, private: Private) -> tuple[int, str]:
    pyrage = _pyrage()
    blob = pyrage.encrypt(data, recipients)
    with private.open(dst, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    return len(blob), hashlib.sha256(blob).hexdigest()


def decrypt_into(src: Path, writer: BinaryIO, identities: list) -> None:
    """Stream the plaintext of ``src`` into ``writer``."""
    pyrage = _pyrage()
    with open(src, "rb") as f:
        try:
            pyrage.decrypt_io(f, writer, identities)
        except pyrage.DecryptError as exc:
            raise CryptError(f"cannot decrypt {src.name} with the identity file: {exc}") from None


def decrypt_bytes(src: Path, identities: list) -> bytes:
    pyrage = _pyrage()
    try:
        return pyrage.decrypt(src.read_bytes(), identities)
    except pyrage.DecryptError as exc:
        raise CryptError(f"cannot decrypt {src.name} with the identity file: {exc}") from None
