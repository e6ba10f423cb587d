"""Many rows through the driver's executemany: for the batched hot paths on SQLite.

For a few dozen short rows SQLAlchemy's per-row parameter handling (construct_params, the
multi-VALUES rewrite, RETURNING) cost about twice what SQLite's own work did (measured on the
许愿 batch: ~100 µs a wish row through Core, ~45 µs this way). A `Bulk` compiles its Core
statement once per dialect and applies the columns' own bind processors, so what is stored is
exactly what Core would store; the differential test in tests/integration/test_wish_batch.py
reads the rows back and compares them with the ordinary ORM path's.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable, NamedTuple

from sqlalchemy import String, any_, bindparam, func, literal_column, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ClauseElement

from storage.types import UTCDateTime


_SAMPLE = datetime(2026, 3, 2, 10, 0, 0, 7, tzinfo=timezone(timedelta(hours=8)))


@lru_cache(maxsize=1024)  # one message's rows share one `now`: convert it once
def _utc_text(value: Any) -> Any:
    """An aware datetime as SQLite's DATETIME text in UTC, formatted in C (SQLAlchemy's own
    processor, a %-format over a dict, was a tenth of the batch's Python time)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTCDateTime column")
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


def _processor(type_: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """SQLAlchemy's bind processor for the type, or a faster one proven equal to it at start."""
    own = type_._cached_bind_processor(dialect)
    if isinstance(type_, UTCDateTime) and own is not None:
        if all(own(v) == _utc_text(v) for v in (_SAMPLE, _SAMPLE.replace(microsecond=0), _SAMPLE.replace(year=1999))):
            return _utc_text
    return own


_BIND: dict[tuple[Any, str], Callable[[Any], Any] | None] = {}


def bind(column: Any, dialect: Any, value: Any) -> Any:
    """`value` as the column's own bind processor stores it (for hand-written statements)."""
    key = (column.type, dialect.name)  # types compare by identity
    if key not in _BIND:
        _BIND[key] = _processor(column.type, dialect)
    proc = _BIND[key]
    return proc(value) if proc else value


class Bulk:
    """One Core statement whose bind parameters all come from each row's dict.

    On SQLite an INSERT goes as one multi-row statement per `CHUNK` rows: each call into SQLite
    lets go of the GIL and must win it back from the event loop, so one call beats one per row.
    Elsewhere (psycopg) the rows go to the driver's executemany as dicts.
    """

    CHUNK = 64  # rows per INSERT statement (at most ~20 columns: far below SQLite's 32,766 parameters)

    def __init__(self, stmt: ClauseElement) -> None:
        self.stmt = stmt
        self._prepared: dict[str, _Prepared] = {}

    def _prepare(self, conn: Connection) -> "_Prepared":
        dialect = conn.dialect
        hit = self._prepared.get(dialect.name)
        if hit is None:
            compiled = self.stmt.compile(dialect=dialect)
            names = list(compiled.positiontup or []) if compiled.positional else list(compiled.binds)
            order = [(name, _processor(compiled.binds[name].type, dialect)) for name in names]
            sql = str(compiled)
            at = sql.rfind(" VALUES (")
            values = (sql[:at + 8], sql[at + 8:]) if (dialect.name == "sqlite" and sql.startswith("INSERT")
                                                       and sql.endswith(")")) else None
            hit = self._prepared[dialect.name] = _Prepared(sql, order, bool(compiled.positional), values)
        return hit

    def run(self, conn: Connection, rows: list[dict[str, Any]]) -> int:
        """Execute once per row. On SQLite returns the last inserted rowid, so an INSERT's ids are
        the `len(rows)` consecutive numbers ending there (the writer holds the write lock); else 0."""
        p = self._prepare(conn)
        missing = [name for name, _ in p.order if name not in rows[0]]
        if missing:  # a column with a Python-side default must be given: nothing is filled in silently
            raise KeyError(f"Bulk rows lack {missing}")
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if p.values is not None:  # a SQLite INSERT: one statement for all rows, one call into SQLite
                head, one = p.values
                for start in range(0, len(rows), self.CHUNK):
                    part = rows[start:start + self.CHUNK]
                    flat = [proc(row[name]) if proc else row[name] for row in part for name, proc in p.order]
                    cursor.execute(head + ",".join([one] * len(part)), flat)
                return int(cursor.lastrowid or 0)  # the last row's: no extra statement (each is a GIL wait)
            elif p.positional:
                cursor.executemany(p.sql, [tuple(proc(row[n]) if proc else row[n] for n, proc in p.order) for row in rows])
            else:
                cursor.executemany(p.sql, [{n: proc(row[n]) if proc else row[n] for n, proc in p.order} for row in rows])
            if conn.dialect.name != "sqlite":
                return 0
            return int(cursor.execute("SELECT last_insert_rowid()").fetchone()[0])
        finally:
            cursor.close()


class _Prepared(NamedTuple):
    sql: str
    order: list[tuple[str, Callable[[Any], Any] | None]]
    positional: bool
    values: tuple[str, str] | None  # a SQLite INSERT's "… VALUES " and its "(?, …)"


def among(dialect: str, column: Any, values: list[Any]) -> Any:
    """`column IN (values)` with one bound parameter whatever the count: an array on PostgreSQL,
    a JSON list read by json_each on SQLite. An IN list of n parameters is a new statement for
    every n (rendered by SQLAlchemy, prepared by the database), and costs more to build than to run."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    if dialect == "sqlite":
        each = select(literal_column("value")).select_from(func.json_each(bindparam(None, json.dumps(list(values)), type_=String)))
        return column.in_(each.scalar_subquery())
    return column.in_(list(values))


class Unnest:
    """PostgreSQL: many rows as one statement, `INSERT … SELECT * FROM unnest($1::t1[], $2::t2[], …)`.

    One array parameter per column, so the statement's text is the same for any number of rows:
    psycopg parses it once and PostgreSQL plans one statement per batch. (A multi-row VALUES
    list is a new text for every row count, which psycopg re-parses in Python, and executemany
    is one execution, and with custom plans one planning, per row.) Values go through the
    columns' own bind processors, as in `Bulk`.
    """

    def __init__(self, table: Any, names: tuple[str, ...], suffix: str = "") -> None:
        self.table, self.names, self.suffix = table, names, suffix
        self._prepared: tuple[str, list[Callable[[Any], Any] | None]] | None = None

    def _prepare(self, dialect: Any) -> tuple[str, list[Callable[[Any], Any] | None]]:
        if self._prepared is None:
            quote = dialect.identifier_preparer.quote
            columns = [self.table.c[n] for n in self.names]
            arrays = ", ".join(f"%s::{c.type.compile(dialect=dialect)}[]" for c in columns)
            sql = (f"INSERT INTO {quote(self.table.name)} ({', '.join(quote(n) for n in self.names)}) "
                   f"SELECT * FROM unnest({arrays}) {self.suffix}").rstrip()
            self._prepared = (sql, [_processor(c.type, dialect) for c in columns])
        return self._prepared

    def run(self, conn: Connection, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """Insert `rows`; the rows of a RETURNING suffix (in no particular order), else []."""
        if conn.dialect.name != "postgresql":
            raise ValueError("Unnest is for PostgreSQL; on SQLite, Bulk runs one multi-row INSERT")
        sql, processors = self._prepare(conn.dialect)
        params = [[proc(row[n]) if proc else row[n] for row in rows] for n, proc in zip(self.names, processors)]
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if "RETURNING" in self.suffix else []
        finally:
            cursor.close()
