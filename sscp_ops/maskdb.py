"""Copy a MySQL/MariaDB database into a test database with per-column masking rules, and scan a
database for personal data left unmasked (``sscp-ops mask db``).

The copy:

1. refuses to run when the target is the source database (same server by ``@@hostname`` and
   ``@@port``, same database name), before anything is written;
2. checks every rule against the source schema (unknown tables or columns, ``null`` on a
   NOT NULL column, ``mask`` / ``fake_name`` on a non-text column) and stops on any problem;
3. creates the target database if it does not exist (utf8mb4) and recreates every base table
   in it from ``SHOW CREATE TABLE`` (views, triggers and routines are not copied: a view's
   text names the source database and would read from it);
4. reads every table from one consistent snapshot of the source (as ``mysqldump
   --single-transaction`` does), streaming with an unbuffered cursor, and writes batches of
   ``batch_size`` rows (one multi-row INSERT and one commit per batch), with a progress bar on a
   terminal.

The scan (``--check``) reads every text and integer column of the target database and reports
columns holding mobile / landline numbers, valid ID numbers, bank cards or e-mail addresses,
except columns whose rule replaces the value (``null``, ``fixed``, ``fake_name``) or makes it
look real on purpose (``pseudonym``). Pseudonym columns are checked against the source instead:
a value that also appears in the same column of the source was not pseudonymised.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import pymysql
import pymysql.cursors

from sscp_ops.config.mask import DbEndpoint, FixedRule, MaskRules
from sscp_ops.masking import find_personal_data, mask_value
from sscp_ops.pseudonym import Pseudonymizer

log = logging.getLogger("mask")

TEXT_TYPES = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext"})
INT_TYPES = frozenset({"bigint", "int", "decimal"})
SCAN_TYPES = TEXT_TYPES | {"bigint", "decimal", "json"}


class MaskError(Exception):
    """The copy or the scan cannot go ahead; ``str()`` is shown to the user."""


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    nullable: bool
    generated: bool


@dataclass(frozen=True)
class Finding:
    table: str
    column: str
    kind: str  # id_number, bank_card, mobile, landline, email, unchanged
    rows: int
    example: str  # masked


@dataclass
class CopyResult:
    rows: dict[str, int] = field(default_factory=dict)
    skipped_views: list[str] = field(default_factory=list)


ER_BAD_DB = 1049  # unknown database


def connect(
    endpoint: DbEndpoint, timeout: float = 10.0, create: bool = False
) -> pymysql.Connection:
    """Connect to the endpoint's database; with ``create``, create it (utf8mb4) if missing."""
    host, _, port = endpoint.address.rpartition(":")
    args = {
        "host": host.strip("[]"),
        "port": int(port),
        "user": endpoint.user,
        "charset": "utf8mb4",
        "connect_timeout": timeout,
        "autocommit": False,
    }
    try:
        args["password"] = endpoint.password() or ""
        try:
            return pymysql.connect(database=endpoint.database, **args)
        except pymysql.err.OperationalError as exc:
            if not (create and exc.args and exc.args[0] == ER_BAD_DB):
                raise
        with closing(pymysql.connect(**args)) as server, server.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS {_q(endpoint.database)} CHARACTER SET utf8mb4"
            )
        log.info("target database created", extra={"kv": {"database": endpoint.database}})
        return pymysql.connect(database=endpoint.database, **args)
    except pymysql.MySQLError as exc:
        raise MaskError(
            f"cannot connect to {endpoint.user}@{endpoint.address}/{endpoint.database}: "
            f"{exc.args[-1] if exc.args else exc}"
        ) from None
    except OSError as exc:
        raise MaskError(f"cannot read the password of {endpoint.user}: {exc}") from None


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def server_identity(conn: pymysql.Connection) -> tuple[str, int]:
    with conn.cursor() as cur:
        cur.execute("SELECT @@hostname, @@port")
        host, port = cur.fetchone()
    return str(host), int(port)


def refuse_same_database(rules: MaskRules, src: pymysql.Connection, dst: pymysql.Connection):
    same_name = rules.source.database.lower() == rules.target.database.lower()
    if same_name and (
        rules.source.address == rules.target.address or server_identity(src) == server_identity(dst)
    ):
        raise MaskError(
            f"target database {rules.target.database!r} is the source database: "
            "refusing to write into the source"
        )


def base_tables(conn: pymysql.Connection) -> tuple[list[str], list[str]]:
    with conn.cursor() as cur:
        cur.execute("SHOW FULL TABLES")
        rows = cur.fetchall()
    tables = sorted(name for name, kind in rows if kind == "BASE TABLE")
    views = sorted(name for name, kind in rows if kind != "BASE TABLE")
    return tables, views


def columns(conn: pymysql.Connection, table: str) -> list[Column]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME, DATA_TYPE, IS_NULLABLE, EXTRA FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (table,),
        )
        return [
            Column(name, dtype.lower(), nullable == "YES", "GENERATED" in (extra or "").upper())
            for name, dtype, nullable, extra in cur.fetchall()
        ]


def check_rules(rules: MaskRules, schema: dict[str, list[Column]]) -> None:
    problems: list[str] = []
    for table, cols in rules.tables.items():
        if table not in schema:
            problems.append(f"tables.{table}: no such table in {rules.source.database}")
            continue
        by_name = {c.name: c for c in schema[table]}
        for name, rule in cols.items():
            col = by_name.get(name)
            where = f"tables.{table}.{name}"
            if col is None:
                problems.append(f"{where}: no such column")
            elif col.generated:
                problems.append(f"{where}: generated column, computed by the server")
            elif rule == "null" and not col.nullable:
                problems.append(f"{where}: null on a NOT NULL column")
            elif rule in ("mask", "fake_name") and col.data_type not in TEXT_TYPES:
                problems.append(f"{where}: {rule} needs a text column, not {col.data_type}")
            elif rule == "pseudonym" and col.data_type not in TEXT_TYPES | INT_TYPES:
                problems.append(f"{where}: pseudonym needs a text or integer column")
    if problems:
        raise MaskError("rules do not fit the source schema:\n  " + "\n  ".join(problems))


def _rule_function(rule: Any, pseudo: Pseudonymizer) -> Callable[[Any], Any]:
    if isinstance(rule, FixedRule):
        return lambda _v: rule.fixed
    if rule == "null":
        return lambda _v: None

    def text_rule(fn: Callable[[str], str]) -> Callable[[Any], Any]:
        def apply(value: Any) -> Any:
            if value is None:
                return None
            if isinstance(value, bytes | bytearray):
                return fn(bytes(value).decode("utf-8", "replace"))
            if isinstance(value, str):
                return fn(value)
            new = fn(str(value))  # integer / decimal column: digits stay digits
            if not new.isdigit():
                raise ValueError(f"numeric value {rule} gives {new!r}: needs 6 or more digits")
            return type(value)(new)

        return apply

    if rule == "mask":
        return text_rule(mask_value)
    if rule == "fake_name":
        return text_rule(pseudo.fake_name)
    return text_rule(pseudo.pseudonym)


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(
        total=total or None,
        desc=desc,
        unit="rows",
        file=sys.stderr,
        disable=not sys.stderr.isatty(),
        leave=False,
    )


def _estimated_rows(conn: pymysql.Connection, table: str) -> int:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_ROWS FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (table,),
        )
        row = cur.fetchone()
    return int(row[0] or 0) if row else 0


def copy_database(rules: MaskRules, key: bytes) -> CopyResult:
    """Copy ``rules.source`` into ``rules.target`` applying the rules; see the module doc."""
    pseudo = Pseudonymizer(key)
    result = CopyResult()
    with (
        closing(connect(rules.source)) as src,
        closing(connect(rules.target, create=True)) as dst,
    ):
        refuse_same_database(rules, src, dst)
        with src.cursor() as cur:  # every table from one snapshot, like mysqldump's
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        tables, result.skipped_views = base_tables(src)
        schema = {t: columns(src, t) for t in tables}
        check_rules(rules, schema)
        if result.skipped_views:
            log.warning("views not copied", extra={"kv": {"views": ",".join(result.skipped_views)}})
        with dst.cursor() as cur:
            cur.execute("SET SESSION foreign_key_checks = 0")
            for table in tables:
                with src.cursor() as scur:
                    scur.execute(f"SHOW CREATE TABLE {_q(table)}")
                    ddl = scur.fetchone()[1]
                cur.execute(f"DROP TABLE IF EXISTS {_q(table)}")
                cur.execute(ddl)
        dst.commit()
        for table in tables:
            result.rows[table] = _copy_table(
                src, dst, table, schema[table], rules.tables.get(table, {}), pseudo, rules
            )
            log.info("table copied", extra={"kv": {"table": table, "rows": result.rows[table]}})
    return result


def _copy_table(
    src: pymysql.Connection,
    dst: pymysql.Connection,
    table: str,
    cols: list[Column],
    table_rules: dict[str, Any],
    pseudo: Pseudonymizer,
    rules: MaskRules,
) -> int:
    cols = [c for c in cols if not c.generated]
    names = ", ".join(_q(c.name) for c in cols)
    funcs = [
        (i, c.name, _rule_function(table_rules[c.name], pseudo))
        for i, c in enumerate(cols)
        if c.name in table_rules
    ]
    insert = f"INSERT INTO {_q(table)} ({names}) VALUES ({', '.join(['%s'] * len(cols))})"
    copied = 0
    with (
        _progress(_estimated_rows(src, table), table) as bar,
        src.cursor(pymysql.cursors.SSCursor) as scur,
        dst.cursor() as dcur,
    ):
        dcur.execute("SET SESSION foreign_key_checks = 0")
        scur.execute(f"SELECT {names} FROM {_q(table)}")
        while True:
            batch = scur.fetchmany(rules.batch_size)
            if not batch:
                break
            out = []
            for row in batch:
                row = list(row)
                for i, name, fn in funcs:
                    try:
                        row[i] = fn(row[i])
                    except ValueError as exc:
                        raise MaskError(f"{table}.{name}: {exc}") from None
                out.append(row)
            dcur.executemany(insert, out)
            dst.commit()
            copied += len(out)
            bar.update(len(out))
    return copied


# --- the scan ----------------------------------------------------------------------------


def _digest(value: Any) -> bytes:
    return hashlib.blake2b(str(value).encode(), digest_size=12).digest()


def _stream_column(conn: pymysql.Connection, table: str, column: str) -> Iterator[Any]:
    with conn.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(f"SELECT {_q(column)} FROM {_q(table)} WHERE {_q(column)} IS NOT NULL")
        while True:
            rows = cur.fetchmany(5000)
            if not rows:
                return
            for (value,) in rows:
                yield value


def _as_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def scan_database(rules: MaskRules) -> list[Finding]:
    """Personal data left in the target database (see the module docstring)."""
    findings: list[Finding] = []
    with closing(connect(rules.target)) as dst:
        tables, _ = base_tables(dst)
        src: pymysql.Connection | None = None
        try:
            for table in tables:
                table_rules = rules.tables.get(table, {})
                for col in columns(dst, table):
                    rule = table_rules.get(col.name)
                    if col.data_type not in SCAN_TYPES or rule in ("null", "fake_name"):
                        continue
                    if isinstance(rule, FixedRule):
                        continue
                    if rule == "pseudonym":
                        if src is None:
                            src = connect(rules.source)
                        findings.extend(_unchanged(src, dst, table, col.name))
                    else:
                        findings.extend(_personal(dst, table, col.name))
        finally:
            if src is not None:
                src.close()
    return findings


def _personal(conn: pymysql.Connection, table: str, column: str) -> list[Finding]:
    counts: dict[str, int] = {}
    examples: dict[str, str] = {}
    for value in _stream_column(conn, table, column):
        text = _as_text(value)
        for kind in find_personal_data(text):
            counts[kind] = counts.get(kind, 0) + 1
            examples.setdefault(kind, mask_value(text)[:60])
    return [Finding(table, column, k, n, examples[k]) for k, n in sorted(counts.items())]


def _unchanged(
    src: pymysql.Connection, dst: pymysql.Connection, table: str, column: str
) -> list[Finding]:
    try:
        originals = {_digest(v) for v in _stream_column(src, table, column)}
    except pymysql.MySQLError as exc:
        raise MaskError(f"cannot read {table}.{column} from the source: {exc.args[-1]}") from None
    rows, example = 0, ""
    for value in _stream_column(dst, table, column):
        if _digest(value) in originals:
            rows += 1
            example = example or mask_value(_as_text(value))[:60]
    return [Finding(table, column, "unchanged", rows, example)] if rows else []
