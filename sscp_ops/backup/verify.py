"""``backup verify``: re-hash every copy against its manifest and check the 3-2-1 + offline rule.

A copy's own ``manifest.json`` must hash to the sha256 the catalogue recorded for the run, and
every file it lists must hash to the manifest's sha256. Problems are *missing* (a catalogued
copy or file is gone), *corrupt* (a hash or size differs) and *unexpected* (files or run
directories that no manifest or catalogue row accounts for).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sscp_ops.backup import copy as copying
from sscp_ops.backup.catalogue import Catalogue, CopyRow, SetSummary, summarise
from sscp_ops.backup.manifest import MANIFEST, RUN_ID, Manifest, sha256_bytes
from sscp_ops.config.backup import BackupSet


@dataclass(frozen=True)
class Problem:
    kind: str  # missing / corrupt / unexpected
    location: str
    path: str
    detail: str = ""

    def __str__(self) -> str:
        return (
            f"{self.kind}: {self.path} ({self.location}){': ' + self.detail if self.detail else ''}"
        )


@dataclass
class VerifyReport:
    set: str
    checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: SetSummary | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and self.summary is not None and self.summary.compliant_321


def check_copy(directory: Path, manifest_sha: str | None) -> list[tuple[str, str, str]]:
    """Problems of one copy directory as (kind, path, detail); empty when intact."""
    mpath = directory / MANIFEST
    if not directory.is_dir():
        return [("missing", str(directory), "copy directory is gone")]
    if not mpath.is_file():
        return [("missing", str(mpath), "no manifest")]
    data = mpath.read_bytes()
    if manifest_sha is not None and sha256_bytes(data) != manifest_sha:
        return [("corrupt", str(mpath), "manifest sha256 differs from the catalogue")]
    try:
        manifest = Manifest.from_json(data)
    except ValueError as exc:
        return [("corrupt", str(mpath), str(exc))]
    out: list[tuple[str, str, str]] = []
    listed = {f.name for f in manifest.files} | {MANIFEST}
    for entry in manifest.files:
        path = directory / entry.name
        if not path.is_file():
            out.append(("missing", str(path), "listed in the manifest"))
            continue
        size, digest = copying.hash_file(path)
        if size != entry.size or digest != entry.sha256:
            out.append(
                ("corrupt", str(path), f"sha256 {digest[:12]}…, expected {entry.sha256[:12]}…")
            )
    for extra in sorted(directory.iterdir()):
        if extra.name not in listed:
            out.append(("unexpected", str(extra), "not in the manifest"))
    return out


def check_sealed_copy(
    directory: Path, files: dict[str, tuple[int, str]]
) -> list[tuple[str, str, str]]:
    """Problems of one encrypted copy, checked without the key: every ``.age`` file the
    catalogue lists for the run, with its ciphertext's size and sha256, and nothing else."""
    if not directory.is_dir():
        return [("missing", str(directory), "copy directory is gone")]
    if not files:
        return [("missing", str(directory), "the catalogue lists no encrypted files for it")]
    out: list[tuple[str, str, str]] = []
    for name, (size, digest) in sorted(files.items()):
        path = directory / name
        if not path.is_file():
            out.append(("missing", str(path), "listed in the catalogue"))
            continue
        got_size, got = copying.hash_file(path)
        if got_size != size or got != digest:
            out.append(("corrupt", str(path), f"sha256 {got[:12]}…, expected {digest[:12]}…"))
    for extra in sorted(directory.iterdir()):
        if extra.name not in files:
            out.append(("unexpected", str(extra), "not in the catalogue"))
    return out


def check_row(catalogue: Catalogue, row: CopyRow) -> list[tuple[str, str, str]]:
    """Problems of the copy of a catalogue row at its path (plain or encrypted)."""
    if row.encrypted:
        return check_sealed_copy(Path(row.dest), catalogue.encrypted_files(row.run))
    return check_copy(Path(row.dest), row.manifest_sha256)


def verify_set(bset: BackupSet, catalogue: Catalogue) -> VerifyReport:
    report = VerifyReport(bset.name)
    rows = catalogue.copies(bset.name)
    intact: dict[str, Path] = {}  # run_id -> an intact local directory (for rsync comparison)
    for loc in sorted(bset.locations, key=lambda x: x.rsync is not None):
        at = [r for r in rows if r.location == loc.name]
        if loc.rsync is not None:
            for row in at:
                _verify_rsync(report, catalogue, row, intact.get(row.run_id))
            continue
        assert loc.path is not None
        if not loc.path.is_dir():
            if loc.kind == "offline":
                report.notes.append(f"{loc.name}: offline medium not attached, not checked")
                continue
        set_dir = loc.path / bset.name
        for row in at:
            report.checked += 1
            found = check_row(catalogue, row)
            # An unexpected extra file is reported, but the copy's own data is still intact.
            bad = [f for f in found if f[0] != "unexpected"]
            catalogue.record_verify(
                row.id, not bad, "; ".join(f"{k}: {p}: {d}" for k, p, d in bad) or None
            )
            report.problems += [Problem(k, loc.name, p, d) for k, p, d in found]
            if not bad and not row.encrypted:
                intact.setdefault(row.run_id, Path(row.dest))
        known = {Path(r.dest).name for r in at}
        if set_dir.is_dir():
            for entry in sorted(set_dir.iterdir()):
                if entry.name in known:
                    continue
                what = (
                    "leftover partial copy"
                    if entry.name.endswith(".partial")
                    else (
                        "run not in the catalogue" if RUN_ID.match(entry.name) else "unknown entry"
                    )
                )
                report.problems.append(Problem("unexpected", loc.name, str(entry), what))
    report.summary = summarise(catalogue.db, [bset.name])[0]
    return report


def _verify_rsync(
    report: VerifyReport, catalogue: Catalogue, row: CopyRow, source: Path | None
) -> None:
    if row.encrypted:
        _verify_rsync_sealed(report, catalogue, row)
        return
    if source is None:
        report.notes.append(f"{row.dest}: no intact local copy of {row.run_id} to compare with")
        return
    report.checked += 1
    try:
        diff = copying.rsync_differences(source, row.dest)
    except copying.CopyError as exc:
        catalogue.record_verify(row.id, False, str(exc))
        report.problems.append(Problem("missing", row.location, row.dest, str(exc)))
        return
    catalogue.record_verify(row.id, not diff, ", ".join(diff) or None)
    for name in diff:
        report.problems.append(Problem("corrupt", row.location, f"{row.dest}{name}", "differs"))


def _verify_rsync_sealed(report: VerifyReport, catalogue: Catalogue, row: CopyRow) -> None:
    """An encrypted rsync copy has no local twin to compare with: it is fetched back into a
    private temporary directory and hashed against the catalogue (this costs the transfer)."""
    report.checked += 1
    with tempfile.TemporaryDirectory(prefix="sscp-verify-") as tmp:
        try:
            copying.rsync_fetch(row.dest, Path(tmp))
        except copying.CopyError as exc:
            catalogue.record_verify(row.id, False, str(exc))
            report.problems.append(Problem("missing", row.location, row.dest, str(exc)))
            return
        found = check_sealed_copy(Path(tmp), catalogue.encrypted_files(row.run))
    bad = [f for f in found if f[0] != "unexpected"]
    catalogue.record_verify(row.id, not bad, "; ".join(f"{k}: {d}" for k, _, d in bad) or None)
    for kind, path, detail in found:
        where = row.dest.rstrip("/") + "/" + Path(path).name
        report.problems.append(Problem(kind, row.location, where, detail))
