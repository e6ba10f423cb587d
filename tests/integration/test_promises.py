"""Issue 9: the claim's two clocks (contact, completion), lapses, and return visits nobody certifies alone.

Through the HTTP gateway and `microwish tick --at` with a frozen clock, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from bot import messages
from bot.cli import build_parser
from bot.clock import FrozenClock
from bot.config import Settings
from bot.timefmt import fmt_datetime
from storage.db import Database
from storage.models import Claim, Wish, WishEvent
from tests.admin_support import FAST_HASHER, ROOT, ROOT_PW, login
from tests.conftest import make_settings
from tests.integration.member_helpers import bind_members, channel_posts, outbox_texts, rows, submit_and_publish
from tests.support import ADMIN, RESIDENT, RESIDENT2, ChatClient
from tests.wishflow import claim_and_fulfil, person_id

TAP = "想请人帮忙修一下家里的水龙头"


async def tick(settings: Settings, at: datetime) -> None:
    """`microwish tick --at` as the command line runs it (on a thread: it runs its own event loop)."""
    args = build_parser().parse_args(["tick", "--at", at.isoformat()])
    assert int(await asyncio.to_thread(args.func, args, settings)) == 0


def wish(database: Database, wish_id: int) -> Wish:
    return rows(database, Wish, Wish.id == wish_id)[0]


async def test_contact_date_passing_without_contact_lapses_the_claim(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings,
        capsys: pytest.CaptureFixture[str]) -> None:
    member, other = await bind_members(bot, database, clock, settings, 2)
    wish_id = await submit_and_publish(bot, database, clock, settings, TAP)
    reply = await bot.send_text(member, f"认领 {wish_id} 5")
    contact_due = clock.now() + timedelta(days=2)
    assert reply and messages.CLAIM_CONTACT_TAIL.format(code=wish_id, contact_due=fmt_datetime(contact_due, settings)) in reply
    [claim] = rows(database, Claim)
    assert claim.contact_due_at == contact_due and claim.due_at == clock.now() + timedelta(days=5)
    mine = await bot.send_text(member, "我的认领") or ""
    assert messages.MY_CLAIMS_CONTACT.format(contact_due=fmt_datetime(contact_due, settings)) in mine

    await tick(settings, contact_due - timedelta(minutes=1))
    assert "contact_lapses: 0 claims lapsed" in capsys.readouterr().out
    assert wish(database, wish_id).status == "claimed"

    await tick(settings, contact_due)
    assert "contact_lapses: 1 claims lapsed" in capsys.readouterr().out
    lapsed = wish(database, wish_id)
    assert (lapsed.status, lapsed.claimer_id, lapsed.claim_id) == ("published", None, None)
    [claim] = rows(database, Claim)
    assert (claim.outcome, claim.ended_at) == ("lapsed", contact_due)
    assert [e.actor_role for e in rows(database, WishEvent, WishEvent.action == "lapse")] == ["system"]
    assert messages.NOTICE_LAPSED.format(code=wish_id) in outbox_texts(database, RESIDENT)
    assert any(t.startswith(messages.NOTICE_LAPSED_MEMBER.split("“")[0].format(code=wish_id))
               for t in outbox_texts(database, member))
    assert any(t.startswith("【认领失效】") for t in outbox_texts(database, ADMIN))
    posts = channel_posts(database)
    assert len(posts) == 3 and posts[-1].startswith(messages.CHANNEL_REPOST.split("{")[0])  # post, claimed, re-post

    await tick(settings, contact_due + timedelta(hours=1))  # a second tick changes nothing
    assert "contact_lapses: 0 claims lapsed" in capsys.readouterr().out
    assert len(channel_posts(database)) == 3

    clock.set(contact_due + timedelta(hours=1))
    mine = await bot.send_text(member, "我的认领") or ""
    assert messages.CLAIM_OUTCOMES["lapsed"] in mine and messages.MY_CLAIMS_LAPSES.format(n=1) in mine
    stats = await bot.send_text(ADMIN, "统计") or ""
    assert messages.STATS_LAPSES.format(n=1) + messages.STATS_LAPSE_NAMES.format(names="党员1" + "1次") in stats
    assert (await bot.send_text(other, f"认领 {wish_id}") or "").startswith("认领成功")  # back in the hall


async def test_contact_in_time_keeps_the_claim_and_fulfilment_counts_as_contact(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    [member] = await bind_members(bot, database, clock, settings, 1)
    first = await submit_and_publish(bot, database, clock, settings, TAP)
    second = await submit_and_publish(bot, database, clock, settings, "想请人陪我去医院复查", resident=RESIDENT2)
    await bot.send_text(member, f"认领 {first}")
    await bot.send_text(member, f"认领 {second}")
    clock.advance(timedelta(hours=3))
    assert await bot.send_text(member, f"/contacted {first}") == messages.CONTACTED_OK.format(code=first)
    assert await bot.send_text(member, f"完成 {second} 已陪同复查") == messages.DONE_OK.format(code=second)

    await tick(settings, clock.now() + timedelta(days=3))
    assert wish(database, first).status == "claimed"
    assert wish(database, second).status == "fulfilled"
    assert [c.outcome for c in rows(database, Claim)] == [None, "fulfilled"]

    clock.advance(timedelta(days=3))  # "partly" reopens the claim: its contact clock must not lapse it now
    assert (await bot.send_text(RESIDENT2, f"部分解决 {second}") or "").startswith("谢谢您告诉我们")
    assert wish(database, second).status == "claimed"
    await tick(settings, clock.now() + timedelta(hours=1))
    assert wish(database, second).status == "claimed"


class TestWorkingDays:
    @pytest.fixture
    def settings(self, db_url: str) -> Settings:
        return make_settings(db_url, working_days=True)

    async def test_both_clocks_count_working_days_on_the_holiday_calendar(
            self, bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
        [member] = await bind_members(bot, database, clock, settings, 1)
        wish_id = await submit_and_publish(bot, database, clock, settings, TAP)
        clock.set(datetime.fromisoformat("2026-09-30T10:00:00+08:00"))  # the day before the National Day week
        reply = await bot.send_text(member, f"认领 {wish_id} 3") or ""
        [claim] = rows(database, Claim)
        local = settings.tz
        assert claim.contact_due_at.astimezone(local) == datetime.fromisoformat("2026-10-09T10:00:00+08:00")
        assert claim.due_at.astimezone(local) == datetime.fromisoformat("2026-10-10T10:00:00+08:00")  # a 调休 Saturday
        assert fmt_datetime(claim.due_at, settings) in reply

        await tick(settings, datetime.fromisoformat("2026-10-08T10:00:00+08:00"))  # two calendar days long gone
        assert wish(database, wish_id).status == "claimed"
        await tick(settings, datetime.fromisoformat("2026-10-09T10:00:00+08:00"))
        assert wish(database, wish_id).status == "published"


async def test_close_out_needs_the_residents_answer_or_someone_elses_visit(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    member, = await bind_members(bot, database, clock, settings, 1)
    first = await submit_and_publish(bot, database, clock, settings, TAP)
    await bot.send_text(member, f"认领 {first}")
    await bot.send_text(member, f"完成 {first} 修好了")
    # nobody closes a fulfilled wish without an answer; members cannot close or visit at all
    assert await bot.send_text(ADMIN, f"销号 {first}") == messages.CLOSE_NEEDS_VISIT.format(code=first)
    assert await bot.send_text(member, f"销号 {first}") == messages.NEED_ADMIN
    assert await bot.send_text(member, f"回访 {first} 已解决 5") == messages.NEED_ADMIN
    assert await bot.send_text(member, f"评价 {first} 5") == messages.NOT_YOUR_WISH.format(code=first, action="评价")

    # the claimer later made an admin still cannot certify their own claim
    database.run_sync(lambda uow: setattr(uow.people.by_openid(member), "role", "admin"), clock.now())
    assert await bot.send_text(member, f"回访 {first} 已解决 5") == messages.VISIT_BY_CLAIMER.format(code=first)
    assert (await bot.send_text(ADMIN, f"回访 {first} 已解决 5") or "").startswith("已记录")
    assert wish(database, first).status == "rated"
    assert await bot.send_text(member, f"销号 {first}") == messages.NOT_ALLOWED.format(code=first, action="销号")
    assert await bot.send_text(ADMIN, f"销号 {first}") == messages.CLOSE_OK.format(code=first)


async def test_partly_keeps_the_wish_open_with_a_follow_up_and_solved_closes(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    [member] = await bind_members(bot, database, clock, settings, 1)
    wish_id = await submit_and_publish(bot, database, clock, settings, TAP)
    await bot.send_text(member, f"认领 {wish_id}")
    await bot.send_text(member, f"完成 {wish_id} 修好了")
    reply = await bot.send_text(RESIDENT, "部分解决") or ""
    assert reply.endswith(messages.FEEDBACK_REOPENED_TAIL)
    w = wish(database, wish_id)
    assert (w.status, w.feedback, w.closed_at) == ("claimed", "partly", None)
    assert any(t.startswith(f"{wish_id} 号心愿群众反馈“部分解决”") for t in outbox_texts(database, member))
    assert any(t.startswith("【回访反馈：需继续办理】") for t in outbox_texts(database, ADMIN))

    await bot.send_text(member, f"完成 {wish_id} 又修了一次")
    assert (await bot.send_text(RESIDENT, "5") or "").endswith(messages.RATE_CLOSED_TAIL)
    assert wish(database, wish_id).status == "closed"


async def test_a_member_can_neither_claim_nor_rate_their_own_wish(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    [member] = await bind_members(bot, database, clock, settings, 1)
    wish_id = await submit_and_publish(bot, database, clock, settings, TAP, resident=member)
    assert await bot.send_text(member, f"认领 {wish_id}") == messages.CLAIM_OWN_WISH.format(code=wish_id)
    assert rows(database, Claim) == []
    # a claim made before that rule (straight through the state machine): the table still bars the rating
    claim_and_fulfil(database, clock.now(), wish_id, person_id(database, clock.now(), member))
    assert await bot.send_text(member, f"评价 {wish_id} 5") == messages.NOT_ALLOWED.format(code=wish_id, action="群众评价")
    assert await bot.send_text(member, f"已解决 {wish_id}") == messages.NOT_ALLOWED.format(code=wish_id, action="群众评价")
    assert wish(database, wish_id).status == "fulfilled"


async def test_the_dashboard_shows_each_members_lapses(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    from bot.auth import create_admin_user

    [member] = await bind_members(bot, database, clock, settings, 1)
    wish_id = await submit_and_publish(bot, database, clock, settings, TAP)
    await bot.send_text(member, f"认领 {wish_id}")
    await tick(settings, clock.now() + timedelta(days=2))
    database.run_sync(lambda uow: create_admin_user(uow, username=ROOT, password=ROOT_PW, hasher=FAST_HASHER), clock.now())
    await login(bot.client, ROOT, ROOT_PW)
    page = await (await bot.client.get("/admin/members")).text()
    assert f"<th>{messages.DASH['lapses']}</th>" in page
    assert "<td>党员1</td><td>第一支部</td>" in page and page.count("<td>1</td></tr>") == 1


async def test_two_ticks_at_once_lapse_a_claim_once(bot: ChatClient, database: Database, clock: FrozenClock,
                                                     settings: Settings) -> None:
    from bot.services.sweeps import run_due_sweeps

    [member] = await bind_members(bot, database, clock, settings, 1)
    wish_id = await submit_and_publish(bot, database, clock, settings, TAP)
    await bot.send_text(member, f"认领 {wish_id}")
    due = clock.now() + timedelta(days=2)
    others = [Database(settings.database_url) for _ in range(2)]
    try:
        results = await asyncio.gather(*(asyncio.to_thread(run_due_sweeps, db, settings, due) for db in others))
    finally:
        for db in others:
            db.close()
    lapsed = [o.count for outcomes in results for o in outcomes if o.sweep.name == "contact_lapses"]
    assert sorted(lapsed) == [0, 1]
    assert len(rows(database, WishEvent, WishEvent.action == "lapse")) == 1
    assert outbox_texts(database, RESIDENT).count(messages.NOTICE_LAPSED.format(code=wish_id)) == 1
