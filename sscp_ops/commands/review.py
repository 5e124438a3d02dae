"""``sscp-ops review accounts``: the quarterly account review (least privilege).

Reviews the MySQL / MariaDB accounts of ``targets.mysql`` (the target's user needs SELECT on
``mysql.*``), the OS accounts of this host and the webhook's API tokens (read from
``webhook.database``; names, roles and dates only, never the hashes) against
``account_review`` in the config, and prints a Chinese review table (Markdown, for the
quarterly report) or JSON. ``--metrics-file`` writes ``sscp_account_review_findings{kind}``
in the Prometheus text format, atomically, for the exporter's textfile collector
(``exporter.textfile_directory``, default /var/lib/prometheus/node-exporter).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from sscp_ops.commands import EXIT_FAILURE, EXIT_OK, LOG_LEVELS, add_log_level, load
from sscp_ops.config import Config, ConfigError

log = logging.getLogger("review")

ROLE_CN = {
    "staff": "在册人员",
    "service": "服务账号",
    "privileged": "特权（已批准）",
    "builtin": "系统内置",
    "locked": "已锁定",
    "revoked": "已吊销",
    "unknown": "未登记",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("review", help="security reviews (accounts)")
    add_log_level(p, LOG_LEVELS[:3])
    rsub = p.add_subparsers(dest="review_command", metavar="WHAT", required=True)
    a = rsub.add_parser("accounts", help="review MySQL and OS accounts against the roster")
    a.add_argument("--config.file", dest="config_file", metavar="FILE", help="YAML config file")
    a.add_argument("--format", choices=["table", "json"], default="table")
    a.add_argument("--metrics-file", type=Path, help="write the findings as Prometheus metrics")
    a.add_argument(
        "--root",
        type=Path,
        default=Path("/"),
        help="read OS account files under this directory (default: /)",
    )
    a.add_argument("--no-os", dest="os", action="store_false", help="skip OS accounts")
    a.add_argument("--no-mysql", dest="mysql", action="store_false", help="skip MySQL accounts")
    a.add_argument(
        "--no-tokens", dest="tokens", action="store_false", help="skip the webhook's API tokens"
    )
    a.set_defaults(func=_run_accounts)


def _mysql_rows(config: Config, source: str) -> list:
    import pymysql

    from sscp_ops.accounts import (
        AccountParseError,
        parse_create_user,
        parse_grants,
        review_mysql,
    )

    wanted = config.account_review.mysql
    names = {t.name for t in config.targets.mysql}
    for name in wanted or []:
        if name not in names:
            raise ConfigError(f"{source}: account_review.mysql: no mysql target named {name!r}")
    rows = []
    for target in config.targets.mysql:
        if wanted is not None and target.name not in wanted:
            continue
        host, _, port = target.address.rpartition(":")
        conn = pymysql.connect(
            host=host.strip("[]"),
            port=int(port),
            user=target.user,
            password=target.password() or "",
            connect_timeout=target.timeout,
            charset="utf8mb4",
        )
        accounts = []
        try:
            with conn.cursor() as cur:
                try:
                    cur.execute("SELECT User, Host FROM mysql.user WHERE is_role <> 'Y'")
                except pymysql.err.OperationalError:  # MySQL: no is_role column
                    cur.execute("SELECT User, Host FROM mysql.user")
                users = sorted(cur.fetchall())
                for user, host in users:
                    try:
                        cur.execute("SHOW CREATE USER %s@%s", (user, host))
                        auth = parse_create_user(cur.fetchone()[0])
                        cur.execute("SHOW GRANTS FOR %s@%s", (user, host))
                        privs = parse_grants(r[0] for r in cur.fetchall())
                    except pymysql.err.MySQLError as exc:  # dropped meanwhile
                        log.warning(
                            "account skipped",
                            extra={"kv": {"target": target.name, "err": exc.args[-1]}},
                        )
                        continue
                    except AccountParseError as exc:
                        log.warning(
                            "account not understood",
                            extra={"kv": {"target": target.name, "err": str(exc)}},
                        )
                        continue
                    accounts.append((user, host, auth, privs))
        finally:
            conn.close()
        rows.extend(review_mysql(f"mysql:{target.name}", accounts, config.account_review))
    return rows


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _os_rows(config: Config, root: Path) -> list:
    from sscp_ops.accounts import (
        lastlog_time,
        parse_group,
        parse_passwd,
        parse_shadow,
        parse_sudoers,
        review_os,
    )

    etc = root / "etc"
    sudo_text = _read(etc / "sudoers")
    sudoers_d = etc / "sudoers.d"
    if sudoers_d.is_dir():
        for f in sorted(sudoers_d.iterdir()):
            # sudo skips files whose names end in ~ or contain a dot
            if f.is_file() and "." not in f.name and not f.name.endswith("~"):
                sudo_text += "\n" + _read(f)
    try:
        lastlog = (root / "var" / "log" / "lastlog").read_bytes()
    except OSError:
        lastlog = b""
    try:
        shadow = parse_shadow((etc / "shadow").read_text(encoding="utf-8"))
    except OSError:  # not root: empty passwords cannot be checked
        shadow = {}
        log.warning("cannot read shadow: empty passwords not checked")
    return review_os(
        parse_passwd(_read(etc / "passwd")),
        parse_group(_read(etc / "group")),
        parse_sudoers(sudo_text),
        shadow,
        lambda uid: lastlog_time(lastlog, uid),
        config.account_review,
        dt.datetime.now(dt.UTC),
    )


def _token_rows(config: Config) -> list:
    from sqlalchemy.engine import make_url

    from sscp_ops.accounts import read_tokens, review_tokens

    url = config.webhook.database_url()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        # no store yet (and SQLite would create an empty file): nothing to review
        log.warning("no webhook store: API tokens not reviewed",
                    extra={"kv": {"database": parsed.database}})  # fmt: skip
        return []
    tokens = read_tokens(url)
    if tokens and not tokens[0].use_recorded:
        log.warning("webhook store does not record token use: run the webhook once to migrate")
    return review_tokens(tokens, config.account_review, dt.datetime.now(dt.UTC))


def _table(rows: list, counts: dict[str, int], now: dt.datetime) -> str:
    from sscp_ops.accounts import KINDS

    out = [
        f"# 账号权限季度复核（{now:%Y-%m-%d}）",
        "",
        "| 系统 | 账号 | 人员 | 类别 | 权限 | 最近登录 | 问题 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        problems = "；".join(KINDS[k] for k in r.findings) or "无"
        cells = [r.system, r.account, r.person or "—", ROLE_CN.get(r.role, r.role),
                 r.rights or "—", r.last_login, problems]  # fmt: skip
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    total = sum(counts.values())
    out += ["", f"共复核账号 {len(rows)} 个，发现问题 {total} 项。"]
    for kind, n in counts.items():
        if n:
            system = {"mysql": "MySQL", "os": "操作系统", "token": "API 令牌"}[kind.split("_")[0]]
            out.append(f"- {system}：{KINDS[kind]} {n} 项")
    return "\n".join(out) + "\n"


def metrics_text(counts: dict[str, int], now: float) -> str:
    lines = [
        "# HELP sscp_account_review_findings Findings of the last account review, by kind.",
        "# TYPE sscp_account_review_findings gauge",
    ]
    lines += [f'sscp_account_review_findings{{kind="{k}"}} {n}' for k, n in counts.items()]
    lines += [
        "# HELP sscp_account_review_last_run_timestamp_seconds When the account review last ran.",
        "# TYPE sscp_account_review_last_run_timestamp_seconds gauge",
        f"sscp_account_review_last_run_timestamp_seconds {now:.3f}",
    ]
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _run_accounts(args: argparse.Namespace) -> int:
    import pymysql
    import sqlalchemy.exc

    from sscp_ops.accounts import AccountParseError, count_findings

    config = load(args.config_file)
    source = args.config_file or "<embedded defaults>"
    now = dt.datetime.now(dt.UTC)
    rows = []
    try:
        if args.mysql:
            rows += _mysql_rows(config, source)
        if args.os:
            rows += _os_rows(config, args.root)
        if args.tokens:
            rows += _token_rows(config)
    except pymysql.MySQLError as exc:
        print(f"sscp-ops review accounts: mysql: {exc.args[-1]}", file=sys.stderr)
        return EXIT_FAILURE
    except AccountParseError as exc:
        print(f"sscp-ops review accounts: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except sqlalchemy.exc.SQLAlchemyError as exc:  # the webhook store (message has no secret)
        reason = getattr(exc, "orig", None) or exc
        print(f"sscp-ops review accounts: webhook store: {reason}", file=sys.stderr)
        return EXIT_FAILURE
    counts = count_findings(rows)
    if args.format == "json":
        doc = {
            "generated_at": now.isoformat().replace("+00:00", "Z"),
            "findings": counts,
            "accounts": [r.__dict__ for r in rows],
        }
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(_table(rows, counts, now))
    if args.metrics_file is not None:
        _write_atomic(args.metrics_file, metrics_text(counts, now.timestamp()))
    log.info("account review", extra={"kv": {"accounts": len(rows), **counts}})
    return EXIT_OK
