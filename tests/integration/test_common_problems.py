"""Issue 9 item 5 through the HTTP gateway (SQLite and PostgreSQL): similar wishes proposed as one
common problem in `待审`, and `合并 <编号,…> <单位>` handing them to a unit with every resident told."""

from __future__ import annotations

from datetime import timedelta

from bot import messages
from bot.services.common_problems import parse_codes
from storage.db import Database, UnitOfWork
from tests.support import ADMIN, MEMBER, RESIDENT, RESIDENT2, ChatClient
from tests.wishflow import claim_and_fulfil, events, make_member, texts_to, wish_row

RESIDENT3 = "o_resident_00000000000000003"
LAMP_1 = "楼道里的路灯坏了好几天，晚上很黑看不见"
LAMP_2 = "我们楼道的路灯坏了，晚上上下楼很黑"
LAMP_3 = "小区的路灯坏了很多天了，晚上看不见路"
DOCTOR = "想请人陪我去医院复查身体"


def live_in(database: Database, bot: ChatClient, openid: str, community: str) -> None:
    def job(uow: UnitOfWork) -> None:
        person = uow.people.ensure(openid, now=uow.now)
        person.community_id = uow.org.ensure("community", community).id
    database.run_sync(job, bot.clock.now())


async def wish(bot: ChatClient, openid: str, text: str) -> None:
    reply = await bot.send_text(openid, f"许愿 {text}")
    if reply is not None and reply.startswith(messages.WISH_SIMILAR.split("{")[0]):
        reply = await bot.send_text(openid, "确认")  # the same resident again: submit anyway
    assert reply is not None and reply.startswith(messages.WISH_OK.split("{")[0]), reply


def proposal(codes: str, n: int, text: str, community: str = "幸福社区", category: str = "环境设施") -> str:
    return messages.COMMON_LINE.format(codes=codes, community=community, category=category, n=n, text=text)


async def test_similar_wishes_of_different_residents_are_proposed_in_pending(bot: ChatClient, database: Database) -> None:
    for who in (RESIDENT, RESIDENT2, RESIDENT3):
        live_in(database, bot, who, "幸福社区")
    await wish(bot, RESIDENT, LAMP_1)
    await wish(bot, RESIDENT2, DOCTOR)
    await wish(bot, RESIDENT2, LAMP_2)
    await wish(bot, RESIDENT3, LAMP_3)
    reply = await bot.send_text(ADMIN, "待审") or ""
    assert reply.endswith("\n".join([messages.COMMON_HEADER, proposal("1,3,4", 3, LAMP_1), messages.COMMON_HINT]))
    assert reply.startswith(messages.PENDING_HEADER.format(n=4))


async def test_no_proposal_across_communities_categories_one_resident_or_months(bot: ChatClient, database: Database) -> None:
    live_in(database, bot, RESIDENT, "幸福社区")
    live_in(database, bot, RESIDENT2, "光明社区")
    await wish(bot, RESIDENT, LAMP_1)
    await wish(bot, RESIDENT, LAMP_2)  # the same resident twice is not a common problem
    await wish(bot, RESIDENT2, LAMP_3)  # another community
    assert messages.COMMON_HEADER not in (await bot.send_text(ADMIN, "待审") or "")
    live_in(database, bot, RESIDENT3, "光明社区")
    bot.clock.advance(timedelta(weeks=5))  # older than common_problem_weeks (4)
    await wish(bot, RESIDENT3, LAMP_1)
    assert messages.COMMON_HEADER not in (await bot.send_text(ADMIN, "待审") or "")
    bot.clock.advance(timedelta(weeks=3))
    live_in(database, bot, RESIDENT2, "光明社区")
    await wish(bot, RESIDENT2, LAMP_2)  # within four weeks of RESIDENT3's
    assert proposal("4,5", 2, LAMP_1, community="光明社区") in (await bot.send_text(ADMIN, "待审") or "")


async def test_merge_hands_the_group_to_a_unit_and_tells_each_resident(bot: ChatClient, database: Database) -> None:
    for who in (RESIDENT, RESIDENT2, RESIDENT3):
        live_in(database, bot, who, "幸福社区")
    await wish(bot, RESIDENT, LAMP_1)
    await wish(bot, RESIDENT2, LAMP_2)
    await wish(bot, RESIDENT3, LAMP_3)
    assert await bot.send_text(ADMIN, "通过 3") == messages.APPROVE_OK.format(code=3, tier="个性")  # published: still mergeable
    reply = await bot.send_text(ADMIN, "合并 1，2,3 街道城管科")
    assert reply == messages.MERGE_OK.format(codes="1,2,3", unit="街道城管科", n=3)
    for code, who in ((1, RESIDENT), (2, RESIDENT2), (3, RESIDENT3)):
        row = wish_row(database, bot.clock.now(), code)
        assert (row.status, row.tier, row.assigned_unit) == ("assigned", "common", "街道城管科")
        timeline = events(database, bot.clock.now(), code)
        assert [e.action for e in timeline][-2:] == ["assign", "merge"]
        others = ",".join(str(c) for c in (1, 2, 3) if c != code)
        assert timeline[-1].note == messages.MERGE_NOTE.format(codes=others, unit="街道城管科")
        assert texts_to(database, bot.clock.now(), who)[-1] == messages.NOTICE_MERGED.format(code=code, unit="街道城管科")
    assert await bot.send_text(ADMIN, "待审") == messages.PENDING_EMPTY
    assert "街道城管科" in (await bot.send_text(RESIDENT, "进度 1") or "")


async def test_merge_refusals(bot: ChatClient, database: Database) -> None:
    await wish(bot, RESIDENT, LAMP_1)
    await wish(bot, RESIDENT2, LAMP_2)
    member = make_member(database, bot.clock.now(), MEMBER)
    await bot.send_text(ADMIN, "通过 2")
    claim_and_fulfil(database, bot.clock.now(), 2, member, fulfil=False)
    assert await bot.send_text(RESIDENT, "合并 1,2 城管") == messages.NEED_ADMIN
    assert await bot.send_text(ADMIN, "合并 1,2") == messages.MERGE_USAGE
    assert await bot.send_text(ADMIN, "合并 1,1 城管") == messages.MERGE_TOO_FEW
    assert await bot.send_text(ADMIN, "合并 1,9 城管") == messages.UNKNOWN_NUMBER.format(code=9)
    assert await bot.send_text(ADMIN, "合并 1,2 城管") == messages.MERGE_NOT_OPEN.format(code=2, status="已认领")
    assert wish_row(database, bot.clock.now(), 1).status == "submitted"  # nothing moved
    assert (await bot.send_text(ADMIN, "合并 1,x 城管") or "").startswith("“x”")


def test_codes_are_read_with_any_common_separator() -> None:
    assert parse_codes("12,#15，W18、12") == [12, 15, 18]
