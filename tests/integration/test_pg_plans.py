"""PostgreSQL keeps using the indexes as tables grow after their statements were prepared.

psycopg prepares a statement after five runs; PostgreSQL then may switch to a generic plan made
from the statistics of that moment. A new database's tables have "empty" statistics until they
are analyzed (migrations build the indexes on empty tables; autovacuum may be off or late), so
that generic plan was a sequential scan, and the 许愿 batch's `= ANY(...)` reads scanned the
whole wish table on every batch as it grew (0.5 ms of PostgreSQL CPU per message at 10k wishes).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Iterator

import pytest
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

from storage.bulk import among
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Person, Wish
from tests.conftest import pg_admin_url

W = Wish.__table__  # type: ignore[attr-defined]


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    """A database of its own, migrated and never analyzed (as a new deployment's is)."""
    admin = pg_admin_url()
    if admin is None:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"mw_plans_{uuid.uuid4().hex[:8]}"
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with eng.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        eng.dispose()


def _lookups(conn, rid: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(12):  # past psycopg's prepare threshold (5) and PostgreSQL's generic-plan trial (5)
        found = conn.execute(select(W.c.id).where(among("postgresql", W.c.resident_id, [rid + 1 + i, rid + 100 + i]))).all()
        assert found == []


def test_batch_reads_use_the_index_after_the_table_grew(fresh_pg: str) -> None:
    db = Database(fresh_pg)
    try:
        now = datetime.now(timezone.utc)
        with db.engine.connect() as conn:  # one connection: its prepared statements outlive the growth
            rid = conn.execute(insert(Person).values(openid="oPlanResident", role="resident", created_at=now, skills="",
                                                     subscribed=True, window_sent=0)).inserted_primary_key[0]
            conn.commit()
            _lookups(conn, rid)  # prepared while the table is empty
            conn.commit()
            conn.execute(insert(Wish), [{"resident_id": rid, "status": "submitted", "version": 0, "tier": "personal",
                                         "category": "维修", "content": f"心愿{i}", "masked": f"心愿{i}", "private_details": {},
                                         "source": "text", "concerns_minor": False, "public": True, "created_at": now}
                                        for i in range(20_000)])
            conn.commit()
            _lookups(conn, rid)
            seq, idx = conn.execute(text(
                "SELECT seq_scan, coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables WHERE relname = 'wish'")).one()
            conn.commit()
        assert seq == 0, f"{seq} sequential scans of the grown wish table for 12 indexed lookups"
        assert idx >= 12
    finally:
        db.close()


def test_a_urls_own_options_are_kept_beside_custom_plans(fresh_pg: str) -> None:
    from urllib.parse import quote

    from storage.db import make_engine

    engine = make_engine(f"{fresh_pg}?options={quote('-c statement_timeout=12345')}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "12345ms"
    finally:
        engine.dispose()
