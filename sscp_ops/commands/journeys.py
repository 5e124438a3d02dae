"""``sscp-ops journeys run``: the release gate after an upgrade (docs/journeys.md).

Runs the journeys of the config once, prints a table (step, status, time), writes JUnit XML
with ``--junit``, records the result on change ticket ``--change-id`` through the ticket API,
and exits 1 when a step failed (0 when every journey passed, 2 on a bad config or option).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from sscp_ops.commands import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, add_log_level, load

log = logging.getLogger("journeys")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("journeys", help="scripted user journeys: the post-upgrade check")
    jsub = p.add_subparsers(dest="journeys_command", metavar="WHAT", required=True)
    r = jsub.add_parser("run", help="run the journeys once; exit 1 when a step fails")
    r.add_argument("--config.file", dest="config_file", metavar="FILE", required=True)
    r.add_argument("--journey", action="append", metavar="NAME", help="only this journey (repeat)")
    r.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML to FILE")
    r.add_argument(
        "--change-id",
        type=int,
        metavar="N",
        help="record the result on change N through the ticket API (operator token)",
    )
    r.add_argument(
        "--api-url", metavar="URL", help="ticket API base URL (default: report.tickets.url)"
    )
    r.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="file holding the API token (default: report.tickets.token_file / token_env)",
    )
    add_log_level(r)
    r.set_defaults(func=_run)


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"sscp-ops journeys run: {message}", file=sys.stderr)
    return code


def _ticket_api(args: argparse.Namespace, config):
    from sscp_ops.ticket_api import TicketApi

    cfg = config.report.tickets
    url = args.api_url or cfg.url
    if not url:
        raise ValueError("--change-id needs --api-url or report.tickets.url")
    token_file = args.token_file or cfg.token_file
    try:
        if token_file is not None:
            token = token_file.read_text(encoding="utf-8").strip()
        else:
            token = os.environ.get(cfg.token_env) if cfg.token_env else None
    except OSError as exc:
        raise ValueError(f"cannot read token file {token_file}: {exc.strerror}") from None
    if not token:
        raise ValueError("--change-id needs an API token (--token-file or report.tickets)")
    return TicketApi(url, token, timeout=cfg.timeout)


def _run(args: argparse.Namespace) -> int:
    from sscp_ops.change_checks import format_check
    from sscp_ops.journeys.gate import change_check, junit_xml, table
    from sscp_ops.journeys.runner import run_journey
    from sscp_ops.ticket_api import TicketApiError

    config = load(args.config_file)
    journeys = list(config.journeys)
    if not journeys:
        return _fail(f"{args.config_file}: no journeys in the config")
    if args.journey:
        known = {j.name for j in journeys}
        unknown = [n for n in args.journey if n not in known]
        if unknown:
            return _fail(f"unknown journey {unknown[0]!r}, expected one of: {', '.join(known)}")
        journeys = [j for j in journeys if j.name in args.journey]
    api = None
    if args.change_id is not None:
        try:
            api = _ticket_api(args, config)
        except ValueError as exc:
            return _fail(str(exc))

    results = [run_journey(j) for j in journeys]
    sys.stdout.write(table(results))
    sys.stdout.flush()
    ok = all(r.success for r in results)

    if args.junit is not None:
        try:
            args.junit.write_bytes(junit_xml(results))
        except OSError as exc:
            return _fail(f"cannot write {args.junit}: {exc.strerror}", EXIT_FAILURE)
    if api is not None:
        text = "\n".join(format_check(change_check(r)) for r in results)
        try:
            api.append_verification(args.change_id, text)
        except TicketApiError as exc:
            return _fail(f"result not recorded on change {args.change_id}: {exc}", EXIT_FAILURE)
        print(f"recorded on change {args.change_id}")
    return EXIT_OK if ok else EXIT_FAILURE
