"""Claims through the HTTP gateway on SQLite and PostgreSQL: one winner, notices, release, fulfil, evidence."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot import messages
from bot.clock import FrozenClock
from bot.config import Settings
from bot.timefmt import fmt_date, fmt_datetime
from storage.db import Database
from storage.models import Claim, Outbox, Person, Wish, WishEvent
from tests.integration.member_helpers import (bind_members, channel_posts, outbox_texts, rows, submit_and_publish)
from tests.support import RESIDENT, RESIDENT2, ChatClient

PRIVATE_WISH = "家住3号楼2单元501室，腿脚不便，想请人帮忙修水龙头，电话13812345678，身份证110101195001011234"


async def test_twenty_members_claim_at_once_and_exactly_one_wins(bot: ChatClient, database: Database,
                                                                clock: FrozenClock, settings: Settings) -> None:
    openids = await bind_members(bot, database, clock, settings, 20)
    first = await submit_and_publish(bot, database, clock, settings, "想请人帮忙修一下家里的水龙头")
    second = await submit_and_publish(bot, database, clock, settings, "想请人陪我去医院复查", resident=RESIDENT2)

    replies = await asyncio.gather(*(bot.send_text(o, f"认领 {first}") for o in openids))

    claims = rows(database, Claim, Claim.wish_id == first)
    assert len(claims) == 1
    winner = claims[0].member_id
    winner_name = rows(database, Person, Person.id == winner)[0].name
    wish = rows(database, Wish, Wish.id == first)[0]
    assert wish.status == "claimed" and wish.claimer_id == winner
    ok = [r for r in replies if r.startswith(messages.CLAIM_OK.split("！")[0])]
    faster = [r for r in replies if r.startswith(messages.CLAIM_FASTER.split("：")[0])]
    assert len(ok) == 1 and len(faster) == 19
    expected = messages.CLAIM_FASTER.format(code=first, name=winner_name, branch="第一支部")
    next_best = messages.CLAIM_NEXT_BEST.format(code=second, category=rows(database, Wish, Wish.id == second)[0].category,
                                                text=rows(database, Wish, Wish.id == second)[0].masked)
    assert all(r == expected + next_best for r in faster), faster[0]
    assert len(rows(database, WishEvent, WishEvent.wish_id == first, WishEvent.action == "claim")) == 1


async def test_claim_sends_details_to_the_claimer_and_tells_the_resident(bot: ChatClient, database: Database,
                                                                         clock: FrozenClock, settings: Settings) -> None:
    [member] = await bind_members(bot, database, clock, settings, 1)
    wish_id = await submit_and_publish(bot, database, clock, settings, PRIVATE_WISH)

    reply = await bot.send_text(member, f"认领 #{wish_id} 5")

    due = clock.now() + timedelta(days=5)
    contact_due = clock.now() + timedelta(days=settings.contact_default_days)
    assert reply == messages.CLAIM_OK.format(code=wish_id, due=fmt_datetime(due, settings)) + \
        messages.CLAIM_CONTACT_TAIL.format(code=wish_id, contact_due=fmt_datetime(contact_due, settings))
    details = "\n".join(outbox_texts(database, member))
    assert "13812345678" in details and "110101195001011234" in details and "501" in details
    safety = rows(database, Claim)[0].safety_code
    assert messages.NOTICE_CLAIMED.format(code=wish_id, name="党员1", branch="第一支部", due=fmt_date(due, settings)) \
        + messages.NOTICE_SAFETY_TAIL.format(safety_code=safety) in outbox_texts(database, RESIDENT)
    for post in channel_posts(database):
        assert "13812345678" not in post and "110101195001011234" not in post and "501" not in post
    claim = rows(database, Claim)[0]
    assert claim.due_at == due and claim.ended_at is None


async def test_days_are_checked_and_the_fourth_open_claim_is_refused(bot: ChatClient, database: Database,
                                                                    clock: FrozenClock, settings: Settings) -> None:
    [member] = await bind_members(bot, database, clock, settings, 1)
    ids = [await submit_and_publish(bot, database, clock, settings, f"想请人帮忙修第{i}个水龙头",
                                    resident=f"o_resident_x{i:018d}") for i in range(4)]
    assert await bot.send_text(member, f"认领 {ids[0]} 31") == messages.CLAIM_BAD_DAYS.format(max=30, code=ids[0])
    assert await bot.send_text(member, f"认领 {ids[0]} 0") == messages.CLAIM_BAD_DAYS.format(max=30, code=ids[0])
    for i in ids[:3]:
        assert (await bot.send_text(member, f"认领 {i}")).startswith(messages.CLAIM_OK.split("！")[0])
    refused = await bot.send_text(member, f"认领 {ids[3]}")
    assert refused == messages.CLAIM_TOO_MANY.format(n=3, codes="、".join(f"{i}号" for i in ids[:3]), max=3)
    assert len(rows(database, Claim)) == 3
    assert rows(database, Wish, Wish.id == ids[3])[0].status == "published"


async def test_release_returns_the_wish_to_the_hall_and_reposts_it(bot: ChatClient, database: Database,
                                                                   clock: FrozenClock, settings: Settings) -> None:
    member, other = await bind_members(bot, database, clock, settings, 2)
    wish_id = await submit_and_publish(bot, database, clock, settings, "想请人帮忙修一下家里的水龙头")
    await bot.send_text(member, f"认领 {wish_id}")
    assert await bot.send_text(other, f"放弃 {wish_id} 没空") == messages.NOT_YOUR_CLAIM.format(
        code=wish_id, action=messages.ACTION_NAMES["release"])
    assert await bot.send_text(member, f"放弃 {wish_id}") == messages.RELEASE_USAGE.format(code=wish_id)
    posts_before = len(channel_posts(database))

    assert await bot.send_text(member, f"放弃 {wish_id} 临时出差") == messages.RELEASE_OK.format(code=wish_id)

    wish = rows(database, Wish, Wish.id == wish_id)[0]
    assert wish.status == "published" and wish.claimer_id is None
    assert rows(database, Claim)[0].outcome == "released"
    posts = channel_posts(database)
    assert len(posts) == posts_before + 1 and f"{wish_id}号" in posts[-1]
    assert messages.NOTICE_RELEASED.format(code=wish_id) in outbox_texts(database, RESIDENT)
    assert (await bot.send_text(other, f"认领 {wish_id}")).startswith(messages.CLAIM_OK.split("！")[0])


async def test_fulfil_then_a_photo_is_kept_as_evidence(bot: ChatClient, database: Database, clock: FrozenClock,
                                                       settings: Settings) -> None:
    member, other = await bind_members(bot, database, clock, settings, 2)
    wish_id = await submit_and_publish(bot, database, clock, settings, "想请人帮忙修一下家里的水龙头")
    await bot.send_text(member, f"认领 {wish_id}")
    clock.advance(timedelta(days=1))
    assert await bot.send_text(other, f"完成 {wish_id} 修好了") == messages.NOT_YOUR_CLAIM.format(
        code=wish_id, action=messages.ACTION_NAMES["fulfil"])

    assert await bot.send_text(member, f"完成 {wish_id} 已上门换了新龙头") == messages.DONE_OK.format(code=wish_id)
    photo = await bot.send_message(member, "image", {"PicUrl": "http://127.0.0.1/p.jpg", "MediaId": "media-1"})

    assert photo == messages.EVIDENCE_OK.format(code=wish_id)
    wish = rows(database, Wish, Wish.id == wish_id)[0]
    assert wish.status == "fulfilled" and wish.fulfilled_at == clock.now()
    assert rows(database, Claim)[0].outcome == "fulfilled"
    evidence = rows(database, WishEvent, WishEvent.wish_id == wish_id, WishEvent.action == "evidence")
    assert [e.media_id for e in evidence] == ["media-1"]
    assert messages.NOTICE_FULFILLED.format(code=wish_id, note="已上门换了新龙头") in outbox_texts(database, RESIDENT)
    assert await bot.send_message(other, "image", {"PicUrl": "http://127.0.0.1/q.jpg", "MediaId": "m2"}) == messages.NOT_TEXT


async def test_my_claims_lists_open_and_finished_with_due_dates(bot: ChatClient, database: Database,
                                                                clock: FrozenClock, settings: Settings) -> None:
    [member] = await bind_members(bot, database, clock, settings, 1)
    assert await bot.send_text(member, "我的认领") == messages.MY_CLAIMS_EMPTY
    a = await submit_and_publish(bot, database, clock, settings, "想请人帮忙修一下家里的水龙头")
    b = await submit_and_publish(bot, database, clock, settings, "想请人陪我去医院复查", resident=RESIDENT2)
    await bot.send_text(member, f"认领 {a} 3")
    await bot.send_text(member, f"认领 {b}")
    await bot.send_text(member, f"完成 {a} 修好了")

    text = await bot.send_text(member, "/claims")

    assert text is not None
    lines = text.split("\n")
    assert lines[0] == messages.MY_CLAIMS_OPEN and lines[2] == messages.MY_CLAIMS_DONE
    assert messages.MY_CLAIMS_DUE.format(due=fmt_datetime(clock.now() + timedelta(days=7), settings)) in lines[1]
    assert lines[1].startswith(f"{b}号") and lines[3].startswith(f"{a}号")
    assert messages.CLAIM_OUTCOMES["fulfilled"] in lines[3]


async def test_channel_post_and_recommendations_for_each_publish_are_masked(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    openids = await bind_members(bot, database, clock, settings, 4)
    clock.advance(timedelta(hours=1))
    wish_id = await submit_and_publish(bot, database, clock, settings, PRIVATE_WISH)
    clock.advance(timedelta(hours=3))
    second = await submit_and_publish(bot, database, clock, settings, "想请人陪我去医院复查", resident=RESIDENT2)

    posts = rows(database, Outbox, Outbox.channel == "claim_webhook")
    assert [p.payload["msgtype"] for p in posts] == ["markdown", "markdown"]
    first_post = posts[0].payload["content"]
    assert f"认领 {wish_id}" in first_post and f"认领 {second}" in posts[1].payload["content"]
    for leak in ("13812345678", "110101195001011234", "3号楼", "501"):
        assert leak not in first_post
    assert messages.MASK_PHONE in first_post and messages.MASK_ID in first_post and messages.MASK_ADDRESS in first_post
    recs = [r for r in rows(database, Outbox, Outbox.channel == "cs") if r.payload["text"].startswith("【为您推荐】")]
    assert len(recs) == 2 * settings.recommend_top
    assert {r.recipient for r in recs} <= set(openids)
    for r in recs:
        assert "13812345678" not in r.payload["text"] and "110101195001011234" not in r.payload["text"]


async def test_the_hall_lists_unclaimed_wishes_best_match_first(bot: ChatClient, database: Database,
                                                                clock: FrozenClock, settings: Settings) -> None:
    member, other = await bind_members(bot, database, clock, settings, 2)
    assert await bot.send_text(member, "大厅") == messages.HALL_EMPTY
    assert await bot.send_text(member, "特长 医疗健康") == messages.SKILLS_OK.format(skills="医疗健康")
    repair = await submit_and_publish(bot, database, clock, settings, "想请人帮忙修一下家里的水龙头", category="维修")
    clinic = await submit_and_publish(bot, database, clock, settings, "想请人陪我去医院复查", resident=RESIDENT2,
                                      category="医疗健康")

    lines = (await bot.send_text(member, "/open") or "").split("\n")

    assert lines[0] == messages.HALL_HEADER
    assert lines[1].startswith(f"{clinic}号") and lines[2].startswith(f"{repair}号")  # the skill match first
    assert lines[-1] == messages.HALL_FOOTER.format(code=clinic)
    await bot.send_text(other, f"认领 {clinic}")
    lines = (await bot.send_text(member, "大厅") or "").split("\n")
    assert len(lines) == 3 and lines[1].startswith(f"{repair}号")


async def test_contacted_is_recorded_once_on_the_claimers_own_claim(bot: ChatClient, database: Database,
                                                                    clock: FrozenClock, settings: Settings) -> None:
    member, other = await bind_members(bot, database, clock, settings, 2)
    wish_id = await submit_and_publish(bot, database, clock, settings, "想请人帮忙修一下家里的水龙头")
    await bot.send_text(member, f"认领 {wish_id}")
    assert await bot.send_text(other, f"已联系 {wish_id}") == messages.NOT_YOUR_CLAIM.format(
        code=wish_id, action=messages.ACTION_NAMES["contacted"])
    clock.advance(timedelta(hours=2))
    assert await bot.send_text(member, f"已联系 {wish_id}") == messages.CONTACTED_OK.format(code=wish_id)
    assert await bot.send_text(member, f"已联系 {wish_id}") == messages.CONTACTED_OK.format(code=wish_id)
    assert rows(database, Claim)[0].contacted_at == clock.now()
    assert len(rows(database, WishEvent, WishEvent.action == "contacted")) == 1


async def test_a_due_time_in_quiet_hours_moves_to_the_morning(bot: ChatClient, database: Database,
                                                              clock: FrozenClock, settings: Settings) -> None:
    [member] = await bind_members(bot, database, clock, settings, 1)
    wish_id = await submit_and_publish(bot, database, clock, settings, "想请人帮忙修一下家里的水龙头")
    clock.advance(timedelta(hours=12))  # 22:00 local
    await bot.send_text(member, f"认领 {wish_id} 2")
    due = rows(database, Claim)[0].due_at.astimezone(settings.tz)
    assert (due.day, due.hour, due.minute) == (5, 8, 0)  # Wednesday 22:00 → Thursday 08:00
