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
from typing import Any, Callable

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


class Bulk:
    """One Core statement whose bind parameters all come from each row's dict.

    An INSERT goes as one multi-row statement per `CHUNK` rows: each call into SQLite lets go of
    the GIL and must win it back from the event loop, so one call beats one per row.
    """

    CHUNK = 64  # rows per INSERT statement (at most ~20 columns: far below SQLite's 32,766 parameters)

    def __init__(self, stmt: ClauseElement) -> None:
        self.stmt = stmt
        self._prepared: dict[str, tuple[str, list[tuple[str, Callable[[Any], Any] | None]]]] = {}
        self._values: tuple[str, str] | None = None  # an INSERT's "… VALUES " and its "(?, …)"

    def _prepare(self, conn: Connection) -> tuple[str, list[tuple[str, Callable[[Any], Any] | None]]]:
        dialect = conn.dialect
        hit = self._prepared.get(dialect.name)
        if hit is None:
            if dialect.paramstyle != "qmark":
                raise NotImplementedError(f"Bulk runs on positional qmark drivers (SQLite), not {dialect.paramstyle}")
            compiled = self.stmt.compile(dialect=dialect)
            order = [(name, _processor(compiled.binds[name].type, dialect)) for name in compiled.positiontup or []]
            hit = self._prepared[dialect.name] = (str(compiled), order)
            sql = hit[0]
            at = sql.rfind(" VALUES (")
            self._values = (sql[:at + 8], sql[at + 8:]) if sql.startswith("INSERT") and sql.endswith(")") else None
        return hit

    def run(self, conn: Connection, rows: list[dict[str, Any]]) -> int:
        """Execute once per row; returns the last inserted rowid (SQLite), so an INSERT's ids are
        the `len(rows)` consecutive numbers ending there (the writer holds the write lock)."""
        sql, order = self._prepare(conn)
        missing = [name for name, _ in order if name not in rows[0]]
        if missing:  # a column with a Python-side default must be given: nothing is filled in silently
            raise KeyError(f"Bulk rows lack {missing}")
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if self._values is not None:  # an INSERT: one statement for all rows, one call into SQLite
                head, one = self._values
                for start in range(0, len(rows), self.CHUNK):
                    part = rows[start:start + self.CHUNK]
                    flat = [proc(row[name]) if proc else row[name] for row in part for name, proc in order]
                    cursor.execute(head + ",".join([one] * len(part)), flat)
            else:
                cursor.executemany(sql, [tuple(proc(row[name]) if proc else row[name] for name, proc in order) for row in rows])
            return int(cursor.execute("SELECT last_insert_rowid()").fetchone()[0])
        finally:
            cursor.close()


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
