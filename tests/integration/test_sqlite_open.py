"""Several connections opening one SQLite file at once all get it into WAL mode.

A file migrated but never opened by the bot is in rollback-journal mode; the first connection
switches it to WAL, and while it does, SQLite answers another connection's own
`PRAGMA journal_mode=WAL` with "database is locked" at once, without its busy handler (CI saw
this when two Databases opened one test database together). `make_engine` retries it.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import text

from storage.db import make_engine


def test_connections_opening_a_new_file_together_all_succeed(tmp_path: Path) -> None:
    template = tmp_path / "template.db"
    with sqlite3.connect(template) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    assert sqlite3.connect(template).execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    errors: list[str] = []
    for i in range(40):  # without the retry about one round in twelve failed here
        path = tmp_path / f"copy{i}.db"
        shutil.copy(template, path)
        engines = [make_engine(f"sqlite:///{path}") for _ in range(4)]

        def write(engine) -> None:  # type: ignore[no-untyped-def]
            try:
                with engine.begin() as conn:
                    conn.execute(text("INSERT INTO t VALUES (1)"))
            except Exception as exc:
                errors.append(str(exc))

        threads = [threading.Thread(target=write, args=(e,)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for e in engines:
            e.dispose()
        assert sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone()[0] == 4 - len(errors)
    assert errors == []
