"""``sscp-ops vulns import FILE``: file and update vulnerability tickets from a scan report.

Reads an OWASP ZAP Traditional JSON report or the generic findings CSV, compares it with the
vulnerability tickets of the ticket service (the webhook's ``/api/v1/vulnerabilities``) and
creates, updates, closes (gone: fixed at the scan time) and reopens (came back) tickets.
The API token comes from ``--token-file`` or the ``SSCP_OPS_API_TOKEN`` environment variable.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from sscp_ops.commands import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, LOG_LEVELS, add_log_level

log = logging.getLogger("vulns")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("vulns", help="vulnerability tickets from scan reports")
    add_log_level(p, LOG_LEVELS[:3])
    vsub = p.add_subparsers(dest="vulns_command", metavar="WHAT", required=True)
    i = vsub.add_parser("import", help="import a ZAP JSON report or a findings CSV")
    i.add_argument("file", metavar="FILE")
    i.add_argument("--format", choices=["auto", "zap", "csv"], default="auto")
    i.add_argument(
        "--api-url",
        default="http://127.0.0.1:9811",
        help="base URL of the ticket service (default: %(default)s)",
    )
    i.add_argument("--token-file", type=Path, help="file holding the API token (operator role)")
    i.add_argument("--scan-time", help="ISO 8601 time of the scan (CSV: default latest found_at)")
    i.add_argument("--dry-run", action="store_true", help="print the actions, change nothing")
    i.set_defaults(func=_run_import)


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file is not None:
        return args.token_file.read_text(encoding="utf-8").strip()
    return os.environ.get("SSCP_OPS_API_TOKEN")


def _run_import(args: argparse.Namespace) -> int:
    from sscp_ops.vulns import (
        HttpVulnTicketClient,
        ReportError,
        TicketServiceError,
        apply_actions,
        parse_findings_csv,
        parse_time,
        parse_zap_json,
        reconcile,
    )

    fmt = args.format
    if fmt == "auto":
        fmt = "csv" if args.file.lower().endswith(".csv") else "zap"
    try:
        text = Path(args.file).read_text(encoding="utf-8")
        scan_time = parse_time(args.scan_time) if args.scan_time else None
        if fmt == "csv":
            scan = parse_findings_csv(text, scan_time)
        else:
            scan = parse_zap_json(text)
            if scan_time is not None:
                scan = type(scan)(scan.source, scan_time, scan.sites, scan.findings)
    except OSError as exc:
        print(f"sscp-ops vulns import: {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except ReportError as exc:
        print(f"sscp-ops vulns import: {args.file}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        token = _token(args)
    except OSError as exc:
        print(f"sscp-ops vulns import: cannot read token file: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    if not token:
        print(
            "sscp-ops vulns import: no API token (--token-file or SSCP_OPS_API_TOKEN)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    client = HttpVulnTicketClient(args.api_url, token)
    try:
        actions = reconcile(scan, client.list(scan.source))
        if args.dry_run:
            for a in actions:
                f = a.finding
                what = f"{f.risk:<6} {f.url} {f.param}" if f else a.ticket.key  # type: ignore[union-attr]
                print(f"{a.kind:<7} {what}".rstrip())
            if not actions:
                print("no changes")
            return EXIT_OK
        done = apply_actions(client, actions)
    except TicketServiceError as exc:
        print(f"sscp-ops vulns import: ticket service: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    summary = {
        "source": scan.source,
        "scanned_at": scan.scanned_at.isoformat(),
        "findings": len(scan.findings),
        "created": done["create"],
        "updated": done["update"],
        "closed": done["close"],
        "reopened": done["reopen"],
    }
    log.info("imported", extra={"kv": summary})
    print(json.dumps(summary, ensure_ascii=False))
    return EXIT_OK
