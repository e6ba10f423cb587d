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


def test_a_urls_own_options_are_kept_and_nothing_is_prepared(fresh_pg: str) -> None:
    from urllib.parse import quote

    from storage.db import make_engine

    engine = make_engine(f"{fresh_pg}?options={quote('-c statement_timeout=12345')}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "12345ms"
            assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "auto"  # foreign-key checks keep their cached plans
            for _ in range(12):
                conn.execute(select(W.c.id).where(W.c.resident_id == 1)).all()
            assert conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar() == 0
    finally:
        engine.dispose()


def test_foreign_key_checks_use_the_index_after_the_table_grew(fresh_pg: str) -> None:
    """The checks' cached plans turn generic after five runs; made while `wish` was tiny, they must
    still be index lookups once it is large (an ANALYZE of the empty table in a migration made
    them sequential scans: two thirds of PostgreSQL's CPU under 许愿 load)."""
    from storage.models import WishEvent

    db = Database(fresh_pg)
    try:
        now = datetime.now(timezone.utc)
        wish = {"status": "submitted", "version": 0, "tier": "personal", "category": "维修", "content": "心愿", "masked": "心愿",
                "private_details": {}, "source": "text", "concerns_minor": False, "public": True, "created_at": now}
        event = {"at": now, "actor_role": "resident", "action": "submit", "to_status": "submitted"}
        with db.engine.connect() as conn:  # one connection: the checks' cached plans live in its backend
            rid = conn.execute(insert(Person).values(openid="oPlanFk", role="resident", created_at=now, skills="",
                                                     subscribed=True, window_sent=0)).inserted_primary_key[0]
            first = conn.execute(insert(Wish).values(resident_id=rid, **wish)).inserted_primary_key[0]
            conn.commit()
            for _ in range(8):  # past the plan cache's five custom plans, one statement each
                conn.execute(insert(WishEvent).values(wish_id=first, **event))
                conn.commit()
            conn.execute(insert(Wish), [dict(wish, resident_id=rid) for _ in range(20_000)])
            conn.commit()
            for k in range(12):
                conn.execute(insert(WishEvent).values(wish_id=first + 1 + k, **event))
            seq = conn.execute(text("SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'wish'")).scalar()
            conn.commit()
        assert seq == 0, f"{seq} sequential scans of the grown wish table for 12 foreign-key checks"
    finally:
        db.close()


def test_an_idle_connection_whose_server_side_died_is_replaced_at_checkout(fresh_pg: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ping for a connection just returned (a round trip per write batch); one that sat idle is
    pinged, and a dead one replaced before anyone uses it."""
    import storage.db
    from storage.db import make_engine

    engine = make_engine(fresh_pg, pool_size=1)
    admin = create_engine(fresh_pg, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with admin.connect() as a:
            assert a.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        monkeypatch.setattr(storage.db, "PING_IDLE_SECONDS", 0.0)  # "idle for a while" is now
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()
        admin.dispose()
