"""Helpers for the lifecycle tests (issue 3): people, moves done directly, rows and outbox texts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.lifecycle import Action, Party
from storage.db import Database, UnitOfWork
from storage.models import Outbox, Person, Wish, WishEvent


def make_member(database: Database, now: datetime, openid: str, *, name: str = "王芳", branch: str = "幸福社区第一支部") -> int:
    def job(uow: UnitOfWork) -> int:
        unit = uow.org.ensure("branch", branch)
        person = uow.people.ensure(openid, now=uow.now)
        person.role, person.name, person.branch_id = "member", name, unit.id
        uow.flush()
        return person.id or 0
    return database.run_sync(job, now)


def make_person(database: Database, now: datetime, openid: str, role: str = "resident") -> int:
    def job(uow: UnitOfWork) -> int:
        person = uow.people.ensure(openid, now=uow.now)
        person.role = role
        uow.flush()
        return person.id or 0
    return database.run_sync(job, now)


def wish_row(database: Database, now: datetime, wish_id: int) -> Wish:
    return database.run_sync(lambda uow: uow.wishes.get(wish_id), now, False)


def events(database: Database, now: datetime, wish_id: int) -> list[WishEvent]:
    return list(database.run_sync(lambda uow: uow.wishes.events(wish_id), now, False))


def texts_to(database: Database, now: datetime, openid: str) -> list[str]:
    def job(uow: UnitOfWork) -> list[str]:
        rows = uow.session.execute(select(Outbox).where(Outbox.recipient == openid).order_by(Outbox.id)).scalars()
        return [r.payload.get("text", "") for r in rows]
    return database.run_sync(job, now, False)


def outbox_rows(database: Database, now: datetime, **where: Any) -> list[Outbox]:
    def job(uow: UnitOfWork) -> list[Outbox]:
        q = select(Outbox).order_by(Outbox.id)
        for k, v in where.items():
            q = q.where(getattr(Outbox, k) == v)
        return list(uow.session.execute(q).scalars())
    return database.run_sync(job, now, False)


def claim_and_fulfil(database: Database, now: datetime, wish_id: int, member_id: int, *, fulfil: bool = True) -> None:
    """A member claims (and fulfils) a published wish, straight through the state machine."""
    def job(uow: UnitOfWork) -> None:
        wish = uow.wishes.get(wish_id)
        member = uow.people.get(member_id)
        uow.wishes.move(wish, Action.CLAIM, parties={Party.MEMBER}, actor=member, actor_role="member", now=uow.now,
                        changes={"claimer_id": member_id, "claimed_at": uow.now})
        if fulfil:
            uow.wishes.move(wish, Action.FULFIL, parties={Party.MEMBER, Party.CLAIMER}, actor=member,
                            actor_role="member", now=uow.now, note="done", changes={"fulfilled_at": uow.now})
    database.run_sync(job, now)


def person_id(database: Database, now: datetime, openid: str) -> int:
    return database.run_sync(lambda uow: (uow.people.by_openid(openid) or Person()).id or 0, now, False)
