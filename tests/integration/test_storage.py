"""Storage on both backends: migrations match the models, SQLite pragmas, group commit, CAS moves."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, select, text
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from bot.clock import FrozenClock
from bot.lifecycle import Action, IllegalTransition, NotAllowed, Party, WishStatus
from storage.db import Database, UnitOfWork
from storage.models import Person, Wish, WishEvent
from storage.repositories import WishChanged


def test_migrations_build_exactly_the_models(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(ctx, SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_sqlite_runs_in_wal_with_foreign_keys(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        with db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    finally:
        db.close()


def _resident(uow: UnitOfWork) -> int:
    p = Person(openid="o1", created_at=uow.now)
    uow.session.add(p)
    uow.flush()
    return p.id or 0


async def test_group_commit_isolates_a_failing_job(database: Database, clock: FrozenClock) -> None:
    now = clock.now()
    rid = database.run_sync(_resident, now)

    def good(i: int):  # type: ignore[no-untyped-def]
        def job(uow: UnitOfWork) -> int:
            w = uow.wishes.add(Wish(resident_id=rid, content=f"w{i}", masked=f"w{i}", created_at=uow.now),
                               actor=None, actor_role="resident", now=uow.now)
            return w.id or 0
        return job

    def bad(uow: UnitOfWork) -> None:
        uow.wishes.add(Wish(resident_id=rid, content="bad", masked="bad", created_at=uow.now), actor=None, actor_role="resident", now=uow.now)
        raise ValueError("refused")

    results = await asyncio.gather(*(database.write(good(i), now=now) for i in range(20)), database.write(bad, now=now),
                                   return_exceptions=True)
    assert sum(isinstance(r, ValueError) for r in results) == 1
    with database.engine.connect() as conn:
        contents = sorted(conn.execute(select(Wish.content)).scalars())
        assert contents == sorted(f"w{i}" for i in range(20))
        assert conn.execute(select(WishEvent.id)).all().__len__() == 20


def _published(database: Database, now) -> int:  # type: ignore[no-untyped-def]
    def job(uow: UnitOfWork) -> int:
        rid = _resident(uow)
        w = uow.wishes.add(Wish(resident_id=rid, content="c", masked="c", created_at=uow.now), actor=None, actor_role="resident", now=uow.now)
        uow.wishes.move(w, Action.APPROVE, parties={Party.ADMIN}, actor=None, actor_role="admin", now=uow.now)
        return w.id or 0
    return database.run_sync(job, now)


def test_move_refuses_illegal_and_unauthorised_transitions_and_changes_nothing(database: Database, clock: FrozenClock) -> None:
    wid = _published(database, clock.now())

    def close(uow: UnitOfWork) -> None:
        uow.wishes.move(uow.wishes.get(wid), Action.CLOSE, parties={Party.ADMIN}, actor=None, actor_role="admin", now=uow.now)

    def claim_as_owner(uow: UnitOfWork) -> None:
        uow.wishes.move(uow.wishes.get(wid), Action.CLAIM, parties={Party.OWNER}, actor=None, actor_role="resident", now=uow.now)

    with pytest.raises(IllegalTransition):
        database.run_sync(close, clock.now())
    with pytest.raises(NotAllowed):
        database.run_sync(claim_as_owner, clock.now())
    wish = database.run_sync(lambda uow: uow.wishes.get(wid), clock.now())
    assert wish.status == WishStatus.PUBLISHED and wish.version == 1
    events = database.run_sync(lambda uow: [e.action for e in uow.wishes.events(wid)], clock.now())
    assert events == ["submit", "approve"]


async def test_two_simultaneous_claims_leave_one_winner(db_url: str, clock: FrozenClock) -> None:
    """Two processes' worth of writers (separate Database objects) race on one wish."""
    a, b = Database(db_url, writers=2), Database(db_url, writers=2)
    try:
        wid = _published(a, clock.now())

        def claim(uow: UnitOfWork) -> str:
            wish = uow.wishes.get(wid)
            uow.wishes.move(wish, Action.CLAIM, parties={Party.MEMBER}, actor=None, actor_role="member", now=uow.now)
            return "won"

        results = await asyncio.gather(*(db.write(claim, now=clock.now()) for db in (a, b, a, b, a, b)), return_exceptions=True)
        assert results.count("won") == 1
        assert all(isinstance(r, (WishChanged, IllegalTransition)) for r in results if r != "won"), results
        events = a.run_sync(lambda uow: [e.action for e in uow.wishes.events(wid)], clock.now())
        assert events.count("claim") == 1
    finally:
        a.close()
        b.close()


def test_times_come_back_aware_utc(database: Database, clock: FrozenClock) -> None:
    wid = _published(database, clock.now() + timedelta(hours=1))
    wish = database.run_sync(lambda uow: uow.wishes.get(wid), clock.now())
    assert wish.created_at == clock.now() + timedelta(hours=1) and wish.created_at.utcoffset() == timedelta(0)
