"""``sscp-ops backup run|verify|drill|offline-confirm [SET]``: backups and restore drills.

Every action works on all configured sets, or on the one named. Exit 0 only when everything
asked for succeeded; 1 when a run, a copy, a check or a drill failed; 2 for a bad config.
A progress bar is drawn only when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sscp_ops.commands import EXIT_FAILURE, EXIT_OK, add_log_level, load
from sscp_ops.config import ConfigError
from sscp_ops.config.backup import BackupConfig, BackupSet


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backup", help="make, verify and drill backups (3-2-1 + offline)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    specs = {
        "run": "dump the databases and config files, copy to every location",
        "verify": "re-hash every copy against its manifest, check the 3-2-1 + offline rule",
        "drill": "restore a run into a throwaway MariaDB server and check it",
        "offline-confirm": "record that the offline medium holding the newest copy is detached",
    }
    for action, help_text in specs.items():
        a = actions.add_parser(action, help=help_text)
        a.add_argument(
            "set",
            nargs="?" if action != "offline-confirm" else None,
            metavar="SET",
            help="backup set name (default: every set)",
        )
        a.add_argument(
            "--config.file",
            dest="config_file",
            metavar="FILE",
            required=True,
            help="YAML config file with a backup: section",
        )
        add_log_level(a)
        if action == "drill":
            a.add_argument("--run", dest="run_id", metavar="RUN_ID", help="default: the newest")
            a.add_argument(
                "--identity-file",
                type=Path,
                metavar="FILE",
                help="age private key of encrypted copies (default: drill.identity_file)",
            )
        if action == "offline-confirm":
            a.add_argument("--location", metavar="PATH", help="default: every offline location")
        a.set_defaults(func=_main)


def _sets(config: BackupConfig, name: str | None, source: str) -> list[BackupSet]:
    if name is None:
        return list(config.sets)
    try:
        return [config.get(name)]
    except KeyError:
        known = ", ".join(s.name for s in config.sets)
        raise ConfigError(
            f"{source}: backup.sets: no set named {name!r} (known: {known})"
        ) from None


@contextmanager
def _bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    from tqdm import tqdm

    with tqdm(
        total=total,
        desc=description,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        leave=False,
        file=sys.stderr,
    ) as bar:
        yield bar.update


def _main(args: argparse.Namespace) -> int:
    from sscp_ops.backup import progress as prog
    from sscp_ops.backup.catalogue import Catalogue

    config = load(args.config_file)
    if config.backup is None:
        raise ConfigError(f"{args.config_file}: backup: section missing")
    sets = _sets(config.backup, args.set, args.config_file)
    progress = _bar if sys.stderr.isatty() else prog.no_progress
    catalogue = Catalogue(config.backup.catalog, group=config.backup.catalog_group)
    try:
        handler = {
            "run": _run,
            "verify": _verify,
            "drill": _drill,
            "offline-confirm": _offline_confirm,
        }[args.action]
        ok = all([handler(s, catalogue, args, progress) for s in sets])
    finally:
        catalogue.close()
    return EXIT_OK if ok else EXIT_FAILURE


def _run(bset: BackupSet, catalogue, args: argparse.Namespace, progress) -> bool:
    from sscp_ops.backup.run import RunLocked, run_lock, run_set

    try:
        with run_lock(catalogue.path, bset.name, catalogue.private):
            report = run_set(bset, catalogue, Path(args.config_file).absolute(), progress=progress)
    except RunLocked:
        print(f"{bset.name}: another backup run of this set is in progress", file=sys.stderr)
        return False
    print(
        f"{bset.name}: run {report.run_id} {'succeeded' if report.ok else 'FAILED'}"
        f" ({report.size} bytes)"
    )
    for c in report.copies:
        print(f"  {c.kind:8} {c.location}: {c.result}{' - ' + c.error if c.error else ''}")
    for path in report.removed:
        print(f"  retention removed {path}")
    return report.ok


def _verify(bset: BackupSet, catalogue, args: argparse.Namespace, progress) -> bool:
    from sscp_ops.backup.verify import verify_set

    report = verify_set(bset, catalogue)
    s = report.summary
    assert s is not None
    sealed = sorted(loc for loc, enc in s.copy_encrypted.items() if enc)
    print(
        f"{bset.name}: {report.checked} copies checked, {len(report.problems)} problems;"
        f" copies local={s.copies['local']} offsite={s.copies['offsite']}"
        f" offline={s.copies['offline']}: 3-2-1+offline "
        f"{'compliant' if s.compliant_321 else 'VIOLATED'};"
        f" encrypted: {', '.join(sealed) if sealed else 'none'}"
    )
    for problem in report.problems:
        print(f"  {problem}")
    for note in report.notes:
        print(f"  note: {note}")
    return report.ok


def _drill(bset: BackupSet, catalogue, args: argparse.Namespace, progress) -> bool:
    from sscp_ops.backup.drill import drill_set

    report = drill_set(
        bset, catalogue, args.run_id, progress=progress, identity_file=args.identity_file
    )
    if report.ok:
        print(
            f"{bset.name}: drill of {report.run_id} from {report.location} succeeded in"
            f" {report.duration:.1f}s: {report.tables} tables, {report.rows} rows,"
            f" {report.config_files} config files"
        )
    else:
        print(
            f"\n*** RESTORE DRILL FAILED: set {bset.name}, run {report.run_id or '-'} ***\n"
            f"*** {report.error} ***\n",
            file=sys.stderr,
        )
    for note in report.notes:
        print(f"  note: {note}")
    return report.ok


def _offline_confirm(bset: BackupSet, catalogue, args: argparse.Namespace, progress) -> bool:
    rows = catalogue.confirm_offline(bset.name, args.location)
    if not rows:
        print(f"{bset.name}: no good offline copy to confirm", file=sys.stderr)
        return False
    for row in rows:
        print(f"{bset.name}: offline copy {row.run_id} on {row.location} confirmed detached")
    return True
