"""``sscp-ops report monthly|quarterly|annual``: the operations report and SLA accounting.

    sscp-ops report monthly --config.file F --month 2026-10 --prometheus-url URL --out DIR

writes DIR/report.html, DIR/report.pdf and DIR/report.json (every figure, ratios 0–1).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sscp_ops.commands import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, add_log_level, load

log = logging.getLogger("report")

PERIOD_ARGS = {
    "monthly": ("--month", "YYYY-MM", "the month, e.g. 2026-10 (default: last month)"),
    "quarterly": ("--quarter", "YYYYQn", "the quarter, e.g. 2026Q4 (default: last quarter)"),
    "annual": ("--year", "YYYY", "the year, e.g. 2026 (default: last year)"),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="operations report (月度运维执行报告) and SLA accounting")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, (flag, metavar, helptext) in PERIOD_ARGS.items():
        k = kinds.add_parser(kind, help=f"{kind} report")
        k.add_argument(flag, dest="period", metavar=metavar, help=helptext)
        k.add_argument("--config.file", dest="config_file", metavar="FILE", help="YAML config")
        k.add_argument(
            "--prometheus-url",
            dest="prometheus_url",
            metavar="URL",
            help="Prometheus base URL (default: report.prometheus_url)",
        )
        k.add_argument("--out", required=True, metavar="DIR", help="output directory")
        add_log_level(k)
        k.set_defaults(func=_run_report)


def previous_period(kind: str, now: datetime) -> str:
    """The last complete month / quarter / year before ``now`` (local time)."""
    if kind == "monthly":
        y, m = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
        return f"{y}-{m:02d}"
    if kind == "quarterly":
        q = (now.month - 1) // 3
        return f"{now.year}Q{q}" if q else f"{now.year - 1}Q4"
    return str(now.year - 1)  # annual: see _run_report (the contract year before ``now``)


def _token(cfg) -> str | None:
    if cfg.token_file is not None:
        return cfg.token_file.read_text("utf-8").strip()
    if cfg.token_env is not None:
        return os.environ.get(cfg.token_env)
    return None


def _event_source(events, config, config_file, command_source, store_source):
    """The configured command, else the event store read in process (``events.db``, else
    ``logs.events_db``); None when disabled."""
    if not events.enabled:
        return None
    if events.command:
        return command_source(events.command, config_file=config_file)
    db = events.db or (config.logs.events_db if config.logs is not None else None)
    return None if db is None else store_source(db)


def _run_report(args: argparse.Namespace) -> int:
    from sscp_ops.report import period as periods
    from sscp_ops.report.build import Sources, build_report
    from sscp_ops.report.render import write_all
    from sscp_ops.report.sources import (
        CommandEventSource,
        HttpPrometheus,
        HttpTicketSource,
        SqliteBackupCatalogue,
        StoreEventSource,
    )

    config = load(args.config_file)
    calendar = config.calendar.build()
    rc = config.report
    tz = calendar.tz
    now = datetime.now(tz)
    label = args.period or previous_period(args.kind, now)
    if args.kind == "annual" and not args.period:
        label = str(periods.contract_year(now, rc.contract_start, tz).start.year - 1)
    try:
        if args.kind == "annual":
            period = periods.year(label, tz, rc.contract_start)
        else:
            period = {"monthly": periods.month, "quarterly": periods.quarter}[args.kind](label, tz)
    except ValueError as exc:
        print(f"sscp-ops report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        token = _token(rc.tickets)
    except OSError as exc:
        print(f"sscp-ops report: cannot read the ticket token: {exc}", file=sys.stderr)
        return EXIT_USAGE
    catalogue = rc.backups.catalogue or (config.backup.catalog if config.backup else None)
    sources = Sources(
        prometheus=HttpPrometheus(args.prometheus_url or rc.prometheus_url),
        tickets=HttpTicketSource(rc.tickets.url, token, rc.tickets.timeout)
        if rc.tickets.url
        else None,
        backups=SqliteBackupCatalogue(catalogue) if catalogue else None,
        events=_event_source(
            rc.events, config, args.config_file, CommandEventSource, StoreEventSource
        ),
    )
    began = time.monotonic()
    report = build_report(period, rc, calendar, sources, datetime.now(UTC).astimezone(tz))
    for section in ("availability", "tickets", "backups", "security", "resources"):
        err = (report.get(section) or {}).get("error")
        if err:
            log.warning("section missing", extra={"kv": {"section": section, "reason": err}})
    built = time.monotonic()
    try:
        paths = write_all(report, Path(args.out), tz)
    except OSError as exc:
        print(f"sscp-ops report: cannot write {args.out}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    log.info(
        "report written",
        extra={
            "kv": {
                "period": period.label,
                "out": args.out,
                "deduction_percent": report["deductions"]["total_percent"],
                "build_seconds": f"{built - began:.1f}",
                "render_seconds": f"{time.monotonic() - built:.1f}",
            }
        },
    )
    for path in paths.values():
        print(path)
    return EXIT_OK
