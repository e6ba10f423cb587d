"""The whole lifecycle through the HTTP gateway: submit → 通过 → claim and fulfil → 评价 5 → closed, then 进度."""

from __future__ import annotations

from datetime import timedelta

from bot import messages
from bot.config import Settings
from bot.services.claims import claim_wish, fulfil_wish
from storage.db import Database, UnitOfWork
from tests.support import ADMIN, MEMBER, RESIDENT, ChatClient
from tests.wishflow import events, make_member, wish_row

TEXT = "想请人帮忙修一下家里漏水的水龙头"


async def test_submit_approve_claim_fulfil_rate_close_and_track(bot: ChatClient, database: Database,
                                                                settings: Settings) -> None:
    clock = bot.clock
    reply = await bot.send_text(RESIDENT, f"许愿 {TEXT}")
    assert reply == messages.WISH_OK.format(code=1) + messages.WISH_OK_WALL.format(code=1)
    clock.advance(minutes=30)
    assert await bot.send_text(ADMIN, "通过 1 个性") == messages.APPROVE_OK.format(code=1, tier="个性")
    member_id = make_member(database, clock.now(), MEMBER, name="王芳", branch="幸福社区第一支部")
    clock.advance(hours=2)

    def claim(uow: UnitOfWork) -> None:
        claim_wish(uow, wish_id=1, member=uow.people.get(member_id), days=3, settings=settings)
    database.run_sync(claim, clock.now())
    clock.advance(days=1)

    def fulfil(uow: UnitOfWork) -> None:
        fulfil_wish(uow, wish_id=1, member=uow.people.get(member_id), note="换了新的水龙头", settings=settings)
    database.run_sync(fulfil, clock.now())
    clock.advance(timedelta(hours=3))
    assert await bot.send_text(RESIDENT, "评价 1 5 谢谢王芳同志") == (
        messages.RATE_OK.format(code=1, stars="★★★★★") + messages.RATE_CLOSED_TAIL)
    wish = wish_row(database, clock.now(), 1)
    assert (wish.status, wish.rating, wish.version) == ("closed", 5, 5)
    assert [e.action for e in events(database, clock.now(), 1)] == ["submit", "approve", "claim", "fulfil", "rate", "close"]

    track = await bot.send_text(RESIDENT, "进度 1")
    who = messages.TRACK_WHO.format
    member = messages.TRACK_MEMBER.format(branch="幸福社区第一支部", name="王芳")
    assert track == "\n".join([
        messages.TRACK_HEADER.format(code=1, status="已销号", text=TEXT),
        messages.TRACK_LINE.format(time="3月2日 10:00", step="提交心愿", who=who(name=messages.TRACK_YOU)),
        messages.TRACK_LINE.format(time="3月2日 10:30", step="登记发布", who=who(name="管理员")) + messages.TRACK_NOTE.format(note="个性"),
        messages.TRACK_LINE.format(time="3月2日 12:30", step="党员认领", who=who(name=member)) + messages.TRACK_NOTE.format(note="3"),
        messages.TRACK_LINE.format(time="3月3日 12:30", step="心愿完成", who=who(name=member)) + messages.TRACK_NOTE.format(note="换了新的水龙头"),
        messages.TRACK_LINE.format(time="3月3日 15:30", step="群众评价", who=who(name=messages.TRACK_YOU)) + messages.TRACK_NOTE.format(note="谢谢王芳同志"),
        messages.TRACK_LINE.format(time="3月3日 15:30", step="销号", who=who(name="系统")),
    ])
