"""Shared set-up for the members' tests: bound members, published wishes, outbox rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot import messages
from bot.clock import FrozenClock
from bot.config import Settings
from bot.lifecycle import Action, Party, Tier
from bot.services import members, publishing
from storage.db import Database, UnitOfWork
from storage.models import Outbox, Wish
from tests.support import ADMIN, RESIDENT, ChatClient


def member_openid(i: int) -> str:
    return f"o_member_{i:020d}"


def make_invites(database: Database, clock: FrozenClock, settings: Settings, *, branch: str, count: int = 1) -> list[str]:
    return database.run_sync(lambda uow: members.issue_invites(uow, branch=branch, count=count, settings=settings),
                             clock.now())


def place_member(database: Database, clock: FrozenClock, openid: str, *, community: str | None = None,
                 grid: str | None = None, skills: str = "") -> None:
    """Put an already bound member in a community / grid and give them skills (as an import would)."""
    def job(uow: UnitOfWork) -> None:
        person = uow.people.by_openid(openid)
        assert person is not None
        community_unit = uow.org.ensure("community", community) if community else None
        grid_unit = uow.org.ensure("grid", grid, community_unit) if grid else None
        person.community_id = community_unit.id if community_unit else None
        person.grid_id = grid_unit.id if grid_unit else None
        person.skills = skills

    database.run_sync(job, clock.now())


async def bind_members(bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings, n: int, *,
                       branch: str = "第一支部", start: int = 1) -> list[str]:
    """`n` members bound through the bot with `绑定 <code> <name>`; their openids."""
    codes = make_invites(database, clock, settings, branch=branch, count=n)
    openids = []
    for i, code in enumerate(codes, start=start):
        openid = member_openid(i)
        reply = await bot.send_text(openid, f"绑定 {code} 党员{i}")
        assert reply == messages.BIND_OK.format(name=f"党员{i}", branch=branch), reply
        openids.append(openid)
    return openids


def publish(database: Database, clock: FrozenClock, settings: Settings, wish_id: int) -> None:
    """Register and publish a submitted wish as an admin would (通过 <编号> 个性)."""
    def job(uow: UnitOfWork) -> None:
        admin = uow.people.ensure(ADMIN, now=uow.now, admin_openids=settings.admin_openids)
        try:
            from bot.services.registration import approve_wish
        except ImportError:
            wish = uow.wishes.get(wish_id)
            uow.wishes.move(wish, Action.APPROVE, parties={Party.ADMIN}, actor=admin, actor_role="admin", now=uow.now,
                            changes={"published_at": uow.now, "tier": Tier.PERSONAL.value})
            publishing.on_published(uow, wish, settings)
        else:
            approve_wish(uow, wish_id=wish_id, admin=admin, tier=Tier.PERSONAL, settings=settings)

    database.run_sync(job, clock.now())


async def submit_and_publish(bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings, text: str,
                             *, resident: str = RESIDENT, community: str | None = None, grid: str | None = None,
                             category: str | None = None) -> int:
    """A resident's wish, submitted through the bot and published; its number."""
    reply = await bot.send_text(resident, f"许愿 {text}")
    assert reply is not None
    wish_id = rows(database, Wish)[-1].id
    if community or grid or category:
        def job(uow: UnitOfWork) -> None:
            wish = uow.wishes.get(wish_id)
            c = uow.org.ensure("community", community) if community else None
            g = uow.org.ensure("grid", grid, c) if grid else None
            wish.community_id = c.id if c else wish.community_id
            wish.grid_id = g.id if g else wish.grid_id
            wish.category = category or wish.category

        database.run_sync(job, clock.now())
    publish(database, clock, settings, wish_id)
    return wish_id


def rows(database: Database, model: Any, *where: Any) -> list[Any]:
    with database.engine.connect() as conn:
        return list(conn.execute(select(model.__table__).where(*where).order_by(*model.__table__.primary_key.columns)).all())


def outbox_texts(database: Database, recipient: str) -> list[str]:
    return [r.payload.get("text", "") for r in rows(database, Outbox, Outbox.recipient == recipient)]


def channel_posts(database: Database) -> list[str]:
    return [r.payload["content"] for r in rows(database, Outbox, Outbox.channel == "claim_webhook")]
