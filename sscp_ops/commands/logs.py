"""``sscp-ops logs``: log analysis by hand.

    sscp-ops logs slow-digest FILE... [--top N] [--format table|json] [--dsn mysql://...]
    sscp-ops logs events [--since T] [--until T] [--type T] [--format json|table]
                         [--config.file FILE | --db FILE]

``slow-digest`` groups a MySQL/MariaDB slow query log by fingerprint (pt-query-digest's) and
prints the top classes by total time; with ``--dsn`` it runs EXPLAIN on the sample of each
index candidate. ``events`` prints the stored security events of a period, for the monthly
report. Times are ISO 8601 (``2026-11-01``, ``2026-11-01T08:00:00+08:00``) or Unix seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from sscp_ops.commands import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, load


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("logs", help="slow-query digest and security events from logs")
    logs_sub = p.add_subparsers(dest="logs_command", metavar="ACTION", required=True)

    d = logs_sub.add_parser("slow-digest", help="top statements of MySQL/MariaDB slow logs")
    d.add_argument("files", nargs="+", metavar="FILE", help="slow query log(s); - for stdin")
    d.add_argument("--top", type=int, default=10, metavar="N", help="classes shown (10)")
    d.add_argument("--format", choices=["table", "json"], default="table")
    d.add_argument(
        "--dsn",
        metavar="URL",
        help="mysql://user@host:port/db (password from MYSQL_PWD or --password-file): "
        "EXPLAIN the sample of each index candidate",
    )
    d.add_argument("--password-file", type=Path, metavar="FILE")
    d.set_defaults(func=_slow_digest)

    e = logs_sub.add_parser("events", help="stored security events of a period, as JSON")
    e.add_argument("--since", metavar="TIME", help="start (inclusive)")
    e.add_argument("--until", metavar="TIME", help="end (exclusive)")
    e.add_argument("--type", action="append", default=[], metavar="TYPE", help="repeatable")
    e.add_argument("--format", choices=["json", "table"], default="json")
    e.add_argument("--config.file", dest="config_file", metavar="FILE")
    e.add_argument("--db", type=Path, metavar="FILE", help="events database (default: config)")
    e.set_defaults(func=_events)


# -- slow-digest ---------------------------------------------------------------------------


def _slow_digest(args: argparse.Namespace) -> int:
    from sscp_ops.loganalysis.slowlog import Digest, parse_slow_log

    if args.top < 1:
        print("sscp-ops logs slow-digest: --top must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    digest = Digest()
    for name in args.files:
        try:
            if name == "-":
                for q in parse_slow_log(sys.stdin):
                    digest.add(q)
                continue
            with open(name, encoding="utf-8", errors="replace") as f:
                for q in parse_slow_log(f):
                    digest.add(q)
        except OSError as exc:
            print(f"sscp-ops logs slow-digest: {name}: {exc.strerror}", file=sys.stderr)
            return EXIT_FAILURE
    top = digest.top(args.top)
    rows = [c.as_dict() for c in top]
    if args.dsn:
        try:
            explain_candidates(rows, args.dsn, _password(args))
        except Exception as exc:  # report, keep the digest
            print(f"sscp-ops logs slow-digest: EXPLAIN failed: {exc}", file=sys.stderr)
    if args.format == "json":
        out = {
            "queries": digest.queries,
            "classes": len(digest.classes),
            "total_time": round(digest.total_time, 6),
            "top": rows,
        }
        json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(rows, digest.queries, len(digest.classes), digest.total_time)
    return EXIT_OK


def _password(args: argparse.Namespace) -> str | None:
    if args.password_file:
        return args.password_file.read_text(encoding="utf-8").rstrip("\r\n")
    return os.environ.get("MYSQL_PWD")


def explain_candidates(rows: list[dict], dsn: str, password: str | None) -> None:
    """Run EXPLAIN on the sample of each index candidate (SELECTs only); adds ``explain``
    (the plan rows) and ``confirmed`` (a table read by full scan without a usable key)."""
    import pymysql
    import pymysql.cursors

    url = urlsplit(dsn)
    if url.scheme not in ("mysql", "mariadb"):
        raise ValueError("DSN must look like mysql://user@host:port/db")
    query = parse_qs(url.query)
    kwargs: dict = {
        "user": unquote(url.username or "root"),
        "password": password or "",
        "connect_timeout": 5,
        "cursorclass": pymysql.cursors.DictCursor,
    }
    if "unix_socket" in query:
        kwargs["unix_socket"] = query["unix_socket"][0]
    else:
        kwargs["host"] = url.hostname or "127.0.0.1"
        kwargs["port"] = url.port or 3306
    default_db = url.path.lstrip("/") or None
    conn = pymysql.connect(**kwargs)
    try:
        with conn.cursor() as cur:
            for row in rows:
                sample = row["sample"].strip()
                if not row["index_candidate"] or not sample.lower().startswith("select"):
                    continue
                db = row.get("db") or default_db
                if db:
                    cur.execute(f"USE `{db.strip('`')}`")
                try:
                    cur.execute("EXPLAIN " + sample)
                except pymysql.MySQLError as exc:
                    row["explain_error"] = str(exc.args[-1]) if exc.args else str(exc)
                    continue
                plan = [{k: v for k, v in r.items() if v is not None} for r in cur.fetchall()]
                row["explain"] = plan
                row["confirmed"] = any(
                    str(r.get("type", "")).upper() == "ALL" and not r.get("key") for r in plan
                )
    finally:
        conn.close()


def _print_table(rows: list[dict], queries: int, classes: int, total: float) -> None:
    print(f"# {queries} queries, {classes} classes, {total:.3f} s total")
    head = (
        f"{'rank':>4} {'checksum':<16} {'count':>7} {'total_s':>9} {'avg_s':>8} {'p95_s':>8} "
        f"{'max_s':>8} {'lock_s':>8} {'examined':>10} {'sent':>8}  fingerprint"
    )
    print(head)
    for i, r in enumerate(rows, 1):
        fp = r["fingerprint"]
        fp = fp if len(fp) <= 100 else fp[:99] + "…"
        flag = f"  [index candidate: {r['index_candidate']}]" if r["index_candidate"] else ""
        if r.get("confirmed"):
            flag += " [EXPLAIN: full scan]"
        print(
            f"{i:>4} {r['checksum'][-16:]:<16} {r['count']:>7} {r['total_time']:>9.3f} "
            f"{r['avg_time']:>8.4f} {r['p95_time']:>8.4f} {r['max_time']:>8.4f} "
            f"{r['lock_time']:>8.4f} {r['rows_examined']:>10} {r['rows_sent']:>8}  {fp}{flag}"
        )


# -- events --------------------------------------------------------------------------------


def parse_when(text: str | None) -> float | None:
    """ISO 8601 date / date-time (local time when no zone is given) or Unix seconds."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    return datetime.fromisoformat(text).timestamp()


def _events(args: argparse.Namespace) -> int:
    from sscp_ops.events import EVENT_TYPES, EventStore

    try:
        since, until = parse_when(args.since), parse_when(args.until)
    except ValueError as exc:
        print(f"sscp-ops logs events: bad time: {exc}", file=sys.stderr)
        return EXIT_USAGE
    unknown = [t for t in args.type if t not in EVENT_TYPES]
    if unknown:
        print(
            f"sscp-ops logs events: unknown type {unknown[0]!r}, expected one of: "
            f"{', '.join(EVENT_TYPES)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    path = args.db
    if path is None:
        config = load(args.config_file)
        if config.logs is None:
            print("sscp-ops logs events: the config has no logs section", file=sys.stderr)
            return EXIT_USAGE
        path = config.logs.events_db
    if not Path(path).exists():
        print(f"sscp-ops logs events: {path}: no events database", file=sys.stderr)
        return EXIT_FAILURE
    store = EventStore(path)
    try:
        events = store.query(since, until, args.type)
    finally:
        store.close()
    if args.format == "json":
        out = [
            {**e.as_dict(), "time_iso": datetime.fromtimestamp(e.time).astimezone().isoformat()}
            for e in events
        ]
        json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        for e in events:
            stamp = datetime.fromtimestamp(e.time).astimezone().isoformat(timespec="seconds")
            print(
                f"{stamp}  {e.type:<22} {e.rule:<28} {e.client_ip:<15} {e.account:<12} {e.detail}"
            )
    return EXIT_OK
