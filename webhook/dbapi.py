"""Hot-path statements: compiled once by SQLAlchemy, executed on the DB-API cursor.

SQLAlchemy Core spends about 100 µs of Python per execution (parameter and result processing,
execution context) even for a cached statement; filing one Alertmanager notification takes some
30 small statements, so on SQLite that overhead was most of the write lock's hold time and the
throughput ceiling. :class:`Prepared` keeps everything SQLAlchemy is good at (the SQL text for
the engine's dialect, the parameter order, the column types' bind and result conversions, so
rows are stored exactly as the Core path stores them) and leaves only the cursor call per
execution. It runs inside the transaction SQLAlchemy opened (same connection, same
``BEGIN IMMEDIATE`` on SQLite); DB-API errors are wrapped into SQLAlchemy's exceptions so the
store maps them as before (``OperationalError`` → 503, ``IntegrityError``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.types import TypeDecorator

_MISSING = object()


def _memo(type_, dialect) -> Callable | None:
    """The type's bind conversion, remembering its last input: one notification binds the same
    ``now`` into the rows of each statement, and the SQLite datetime conversion is string
    formatting. The
    (input, output) pair is swapped in as one tuple, so threads never see a torn pair; the
    pair holds its input, so an ``is`` match can't be a recycled id."""
    proc = type_.dialect_impl(dialect).bind_processor(dialect)
    if proc is None or not isinstance(type_, sa.DateTime | TypeDecorator):
        return proc
    last = [(_MISSING, None)]

    def convert(value):
        seen, out = last[0]
        if seen is value:
            return out
        out = proc(value)
        last[0] = (value, out)
        return out

    return convert


def cursor(conn):
    """A DB-API cursor of a SQLAlchemy ``Connection`` or of a (pooled) DB-API connection."""
    if isinstance(conn, Connection):
        return conn.connection.cursor()
    return conn.cursor()


class Prepared:
    """One statement for one dialect and its DB-API paramstyle."""

    def __init__(self, stmt: ClauseElement, dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self._dbapi_error = dialect.loaded_dbapi.Error
        # Positional (SQLite ``?``, ``%s``): a tuple in this order; named (PyMySQL's default
        # ``%(name)s``): a dict.
        self._positional = compiled.positiontup is not None
        names = compiled.positiontup if self._positional else compiled.bind_names.values()
        self._slots: list[tuple[str, Any, Callable | None]] = []
        for name in dict.fromkeys(names):
            bind = compiled.binds[name]
            default = bind.value if bind.value is not None or not bind.required else _MISSING
            self._slots.append((name, default, _memo(bind.type, dialect)))
        if "POSTCOMPILE" in self.sql:
            raise ValueError(f"expanding IN is not supported (use PreparedIn): {self.sql}")
        self._columns: list[Callable | None] = []
        self._keys: list[str] = []
        if getattr(stmt, "is_select", False):
            for col in stmt.selected_columns:
                self._keys.append(col.key)
                self._columns.append(col.type.dialect_impl(dialect).result_processor(dialect, None))

    def args(self, values: Mapping[str, Any]) -> tuple | dict:
        out = []
        for name, default, proc in self._slots:
            value = values.get(name, default)
            if value is _MISSING:
                raise KeyError(f"missing parameter {name!r} for: {self.sql}")
            out.append(proc(value) if proc is not None and value is not None else value)
        if self._positional:
            return tuple(out)
        return {slot[0]: v for slot, v in zip(self._slots, out, strict=True)}

    def _wrap(self, exc: Exception, params: Any) -> DBAPIError:
        return DBAPIError.instance(self.sql, params, exc, self._dbapi_error)

    def execute(self, conn: Connection, values: Mapping[str, Any] | None = None):
        """Run once; returns the DB-API cursor (``rowcount``, ``lastrowid``)."""
        params = self.args(values or {})
        cur = cursor(conn)
        try:
            cur.execute(self.sql, params)
        except self._dbapi_error as exc:
            raise self._wrap(exc, params) from exc
        return cur

    def write(self, conn: Connection, values: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        """Run an INSERT / UPDATE once: (rows affected, the new row's id where there is one)."""
        cur = self.execute(conn, values)
        try:
            return cur.rowcount, cur.lastrowid
        finally:
            cur.close()

    def executemany(self, conn: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        params = [self.args(r) for r in rows]
        if not params:
            return
        cur = cursor(conn)
        try:
            cur.executemany(self.sql, params)
        except self._dbapi_error as exc:
            raise self._wrap(exc, params[:3]) from exc
        finally:
            cur.close()

    def rows(self, conn: Connection, values: Mapping[str, Any] | None = None) -> list[tuple]:
        """A SELECT's rows as tuples, each column converted by its type."""
        cur = self.execute(conn, values)
        try:
            fetched = cur.fetchall()
        finally:
            cur.close()
        procs = self._columns
        if not any(procs):
            return [tuple(r) for r in fetched]
        return [
            tuple(p(v) if p is not None else v for p, v in zip(procs, r, strict=True))
            for r in fetched
        ]

    def dicts(self, conn: Connection, values: Mapping[str, Any] | None = None) -> list[dict]:
        keys = self._keys
        return [dict(zip(keys, r, strict=True)) for r in self.rows(conn, values)]

    def first(self, conn: Connection, values: Mapping[str, Any] | None = None) -> dict | None:
        found = self.dicts(conn, values)
        return found[0] if found else None

    def scalar(self, conn: Connection, values: Mapping[str, Any] | None = None) -> Any:
        found = self.rows(conn, values)
        return found[0][0] if found else None


class PreparedIn:
    """A statement with one ``IN`` list, compiled once per list length (``build(n)``)."""

    def __init__(self, build: Callable[[int], ClauseElement], dialect: Dialect) -> None:
        self._build = build
        self._dialect = dialect
        self._by_size: dict[int, Prepared] = {}

    def rows(self, conn: Connection, name: str, items: Sequence, **values) -> list[tuple]:
        n = len(items)
        prepared = self._by_size.get(n)
        if prepared is None:
            prepared = self._by_size[n] = Prepared(self._build(n), self._dialect)
        values.update({f"{name}{i}": v for i, v in enumerate(items)})
        return prepared.rows(conn, values)
