"""``sscp-ops mask``: mask personal data in text, or copy a database into a masked test copy.

``sscp-ops mask text`` masks standard input to standard output (whole lines, in blocks).
``sscp-ops mask db --rules FILE`` copies the source database into the target with the rules;
``--check`` scans the target for personal data left unmasked and exits 1 when any is found.
"""

from __future__ import annotations

import argparse
import logging
import sys

from sscp_ops.commands import EXIT_FAILURE, EXIT_OK, LOG_LEVELS, add_log_level

log = logging.getLogger("mask")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mask", help="mask personal data in text or in a copy of a database")
    add_log_level(p, LOG_LEVELS[:3])
    msub = p.add_subparsers(dest="mask_command", metavar="WHAT", required=True)
    t = msub.add_parser("text", help="mask phones, ID numbers, bank cards, e-mail: stdin -> stdout")
    t.set_defaults(func=_run_text)
    d = msub.add_parser("db", help="copy a MySQL database into a test database with masking rules")
    d.add_argument("--rules", required=True, metavar="FILE", help="YAML rules file")
    d.add_argument(
        "--check",
        action="store_true",
        help="do not copy: scan the target database and exit 1 if personal data is left",
    )
    d.set_defaults(func=_run_db)


def _run_text(args: argparse.Namespace) -> int:
    from sscp_ops.masking import mask_text

    stdin = open(sys.stdin.fileno(), encoding="utf-8", errors="surrogateescape", closefd=False)
    stdout = open(
        sys.stdout.fileno(), "w", encoding="utf-8", errors="surrogateescape", closefd=False
    )
    with stdin, stdout:
        # Whole lines in blocks of about 64 KiB: nothing personal spans a line break.
        for lines in iter(lambda: stdin.readlines(1 << 16), []):
            stdout.write(mask_text("".join(lines)))
    return EXIT_OK


def _run_db(args: argparse.Namespace) -> int:
    from sscp_ops.config.mask import load_mask_rules
    from sscp_ops.maskdb import MaskError, copy_database, scan_database

    rules = load_mask_rules(args.rules)
    try:
        if args.check:
            findings = scan_database(rules)
            if not findings:
                print(f"{rules.target.database}: no unmasked personal data found")
                return EXIT_OK
            print(f"{rules.target.database}: unmasked personal data found:")
            print(f"  {'table.column':<40} {'kind':<10} {'rows':>8}  example")
            for f in findings:
                print(f"  {f.table + '.' + f.column:<40} {f.kind:<10} {f.rows:>8}  {f.example}")
            return EXIT_FAILURE
        try:
            key = rules.key_file.read_bytes()
        except OSError as exc:
            print(f"sscp-ops mask db: cannot read key file: {exc.strerror}", file=sys.stderr)
            return EXIT_FAILURE
        result = copy_database(rules, key)
    except (MaskError, ValueError) as exc:
        print(f"sscp-ops mask db: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    total = sum(result.rows.values())
    print(
        f"copied {len(result.rows)} tables, {total} rows: "
        f"{rules.source.database} -> {rules.target.database}"
    )
    if result.skipped_views:
        print(f"views not copied: {', '.join(result.skipped_views)}")
    return EXIT_OK
