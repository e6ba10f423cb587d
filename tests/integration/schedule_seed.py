"""Seeding for the schedule tests: rows written directly, with known timestamps and events."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from storage.db import Database, UnitOfWork
from storage.models import Claim, OrgUnit, Outbox, Person, Wish, WishEvent

TZ = ZoneInfo("Asia/Shanghai")
SEED_NOW = datetime(2026, 1, 1, tzinfo=TZ)


def at(text: str) -> datetime:
    """A local time written `2026-03-05 10:00`."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def add_person(db: Database, openid: str | None, *, role: str = "resident", name: str | None = None,
               branch: str | None = None, last_inbound_at: datetime | None = None) -> int:
    def job(uow: UnitOfWork) -> int:
        branch_id = uow.org.ensure("branch", branch).id if branch else None
        p = uow.people.add(Person(openid=openid, role=role, name=name, branch_id=branch_id, created_at=SEED_NOW,
                                  last_inbound_at=last_inbound_at))
        assert p.id is not None
        return p.id
    return db.run_sync(job, SEED_NOW)


def _event(uow: UnitOfWork, wish_id: int, action: str, when: datetime, to: str, actor: int | None = None,
           role: str = "system") -> None:
    uow.session.add(WishEvent(wish_id=wish_id, at=when, actor_id=actor, actor_role=role, action=action, to_status=to))


def add_wish(db: Database, resident_id: int, *, status: str, text: str = "想请人帮忙修一下家里的水龙头",
             created: datetime | None = None, published: datetime | None = None, claimed: datetime | None = None,
             fulfilled: datetime | None = None, rated: datetime | None = None, rating: int | None = None,
             community: str | None = None, member_id: int | None = None, masked: str | None = None,
             **columns: Any) -> int:
    """A wish with the timeline events its timestamps imply (submit, approve, claim, fulfil, rate)."""
    created = created or published or SEED_NOW

    def job(uow: UnitOfWork) -> int:
        community_id = uow.org.ensure("community", community).id if community else None
        wish = Wish(resident_id=resident_id, status=status, content=text, masked=masked or text, created_at=created,
                    published_at=published, claimed_at=claimed, fulfilled_at=fulfilled, rated_at=rated, rating=rating,
                    community_id=community_id, claimer_id=member_id if claimed else None, **columns)
        uow.session.add(wish)
        uow.session.flush()
        assert wish.id is not None
        _event(uow, wish.id, "submit", created, "submitted", resident_id, "resident")
        if published:
            _event(uow, wish.id, "approve", published, "published", None, "admin")
        if claimed:
            _event(uow, wish.id, "claim", claimed, "claimed", member_id, "member")
        if fulfilled:
            _event(uow, wish.id, "fulfil", fulfilled, "fulfilled", member_id, "member")
        if rated:
            _event(uow, wish.id, "rate", rated, "rated", resident_id, "resident")
        return wish.id
    return db.run_sync(job, SEED_NOW)


def add_event(db: Database, wish_id: int, action: str, when: datetime, to: str) -> None:
    db.run_sync(lambda uow: _event(uow, wish_id, action, when, to), SEED_NOW)


def add_claim(db: Database, wish_id: int, member_id: int, *, claimed: datetime, due: datetime,
              ended: datetime | None = None, outcome: str | None = None, branch: str | None = None) -> int:
    def job(uow: UnitOfWork) -> int:
        branch_id = uow.org.ensure("branch", branch).id if branch else None
        c = uow.claims.add(Claim(wish_id=wish_id, member_id=member_id, claimed_at=claimed, due_at=due, ended_at=ended,
                                 outcome=outcome, branch_id=branch_id))
        wish = uow.wishes.get(wish_id)
        if ended is None:
            wish.claim_id = c.id
        assert c.id is not None
        return c.id
    return db.run_sync(job, SEED_NOW)


def outbox_rows(db: Database, **where: Any) -> list[Outbox]:
    def job(uow: UnitOfWork) -> list[Outbox]:
        q = select(Outbox).order_by(Outbox.id)
        for name, value in where.items():
            q = q.where(getattr(Outbox, name) == value)
        return list(uow.session.execute(q).scalars())
    return db.run_sync(job, SEED_NOW, write=False)


def wish_row(db: Database, wish_id: int) -> Wish:
    return db.run_sync(lambda uow: uow.wishes.get(wish_id), SEED_NOW, write=False)


def events_of(db: Database, wish_id: int) -> list[str]:
    return db.run_sync(lambda uow: [e.action for e in uow.wishes.events(wish_id)], SEED_NOW, write=False)


def units(db: Database) -> dict[str, int]:
    return db.run_sync(lambda uow: {u.name: u.id for u in uow.session.execute(select(OrgUnit)).scalars()}, SEED_NOW,
                       write=False)


def later(dt: datetime, **kw: float) -> datetime:
    return dt + timedelta(**kw)
