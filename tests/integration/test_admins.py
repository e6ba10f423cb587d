"""Admin commands through the HTTP gateway (SQLite and PostgreSQL), with wrong-role refusals."""

from __future__ import annotations

from bot import messages
from bot.lifecycle import Action, Party
from storage.db import Database
from tests.support import ADMIN, MEMBER, RESIDENT, RESIDENT2, ChatClient
from tests.wishflow import claim_and_fulfil, events, make_member, make_person, outbox_rows, texts_to, wish_row

TAP = "想请人帮忙修一下家里漏水的水龙头"
ADMIN2 = "o_admin_000000000000000000002"


async def _submit(bot: ChatClient, text: str = TAP, who: str = RESIDENT) -> None:
    reply = await bot.send_text(who, f"许愿 {text}")
    assert reply is not None and reply.startswith("心愿已收到")


def progress(database: Database, bot: ChatClient) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    return [(r.payload["text"], r.payload["template"]) for r in outbox_rows(database, bot.clock.now(), recipient=RESIDENT, kind="progress")]


ADMIN_COMMANDS = ["待审", "通过 1", "驳回 1 不行", "暂缓 1 等等", "转办 1 住建局", "销号 1", "回访 1 已解决", "统计",
                  "/pending", "/approve 1"]


async def test_residents_and_members_may_not_use_admin_commands(bot: ChatClient, database: Database) -> None:
    await _submit(bot)
    make_member(database, bot.clock.now(), MEMBER)
    for command in ADMIN_COMMANDS:
        assert await bot.send_text(RESIDENT, command) == messages.NEED_ADMIN, command
        assert await bot.send_text(MEMBER, command) == messages.NEED_ADMIN, command
    assert wish_row(database, bot.clock.now(), 1).status == "submitted"
    assert len(events(database, bot.clock.now(), 1)) == 1


async def test_pending_lists_waiting_wishes(bot: ChatClient) -> None:
    assert await bot.send_text(ADMIN, "待审") == messages.PENDING_EMPTY
    await _submit(bot)
    await _submit(bot, "孩子需要一个新书包和文具", RESIDENT2)
    assert await bot.send_text(ADMIN, "待审") == "\n".join([
        messages.PENDING_HEADER.format(n=2), messages.PENDING_LINE.format(code=1, category="维修", text=TAP),
        messages.PENDING_LINE.format(code=2, category="助学", text="孩子需要一个新书包和文具")])


async def test_approve_publishes_posts_and_tells_the_resident(bot: ChatClient, database: Database) -> None:
    await _submit(bot)
    assert await bot.send_text(ADMIN, "通过 1 生活物资") == (
        messages.APPROVE_OK.format(code=1, tier="个性") + messages.APPROVE_CATEGORY_TAIL.format(category="生活物资"))
    wish = wish_row(database, bot.clock.now(), 1)  # a minor's wish waits for consent: tests/integration/test_safety.py
    assert (wish.status, wish.tier, wish.concerns_minor, wish.category) == ("published", "personal", False, "生活物资")
    assert wish.published_at is not None and wish.version == 1
    assert progress(database, bot) == [(messages.NOTICE_APPROVED.format(code=1), {"code": "1", "status": "待认领"})]
    assert outbox_rows(database, bot.clock.now(), channel="claim_webhook")
    assert await bot.send_text(ADMIN, "通过 1") == messages.ILLEGAL_TRANSITION.format(code=1, status="待认领", action="登记发布")
    assert await bot.send_text(ADMIN, "通过 7") == messages.UNKNOWN_NUMBER.format(code=7)
    assert (await bot.send_text(ADMIN, "通过 1 随便")).startswith("看不懂“随便”")  # type: ignore[union-attr]


async def test_common_and_legacy_are_routed_to_a_unit(bot: ChatClient, database: Database) -> None:
    await _submit(bot, "小区楼道的路灯坏了很久没人修")
    await _submit(bot, "老旧小区想加装电梯很多年了", RESIDENT2)
    assert await bot.send_text(ADMIN, "通过 1 共性") == messages.ROUTE_OK.format(code=1, tier="共性")
    assert wish_row(database, bot.clock.now(), 1).status == "submitted"
    assert messages.PENDING_TIER.format(tier="共性") in (await bot.send_text(ADMIN, "待审") or "")
    assert await bot.send_text(ADMIN, "转办 1") == messages.NEED_UNIT.format(code=1)
    assert await bot.send_text(ADMIN, "转办 1 街道城管科") == messages.ASSIGN_OK.format(code=1, unit="街道城管科")
    wish = wish_row(database, bot.clock.now(), 1)
    assert (wish.status, wish.tier, wish.assigned_unit) == ("assigned", "common", "街道城管科")
    texts = [t for t, _ in progress(database, bot)]
    assert texts == [messages.NOTICE_PROGRESS_ROUTED.format(code=1, tier="共性"),
                     messages.NOTICE_ROUTED.format(code=1, tier="共性", unit="街道城管科")]
    assert await bot.send_text(ADMIN, "通过 2 老大难 区住建局") == messages.ASSIGN_OK.format(code=2, unit="区住建局")
    wish2 = wish_row(database, bot.clock.now(), 2)
    assert (wish2.status, wish2.tier, wish2.assigned_unit) == ("assigned", "legacy", "区住建局")


async def test_reject_and_defer_need_a_reason_that_reaches_the_resident(bot: ChatClient, database: Database) -> None:
    await _submit(bot)
    await _submit(bot, "孩子需要一个新书包和文具")
    assert await bot.send_text(ADMIN, "驳回 1") == messages.NEED_REASON.format(example=messages.REJECT_EXAMPLE.format(code=1))
    assert await bot.send_text(ADMIN, "驳回 1 属于物业维修范围") == messages.REJECT_OK.format(code=1)
    assert await bot.send_text(ADMIN, "暂缓 2 等明年预算") == messages.DEFER_OK.format(code=2)
    assert [t for t, _ in progress(database, bot)] == [
        messages.NOTICE_REJECTED.format(code=1, reason="属于物业维修范围"),
        messages.NOTICE_DEFERRED.format(code=2, reason="等明年预算")]
    assert wish_row(database, bot.clock.now(), 2).status == "deferred"
    assert await bot.send_text(ADMIN, "驳回 1 再驳一次") == messages.ILLEGAL_TRANSITION.format(code=1, status="未通过", action="未通过")
    assert await bot.send_text(ADMIN, "通过 2") == messages.APPROVE_OK.format(code=2, tier="个性")  # deferred → published


async def test_assigning_a_claimed_wish_ends_the_claim(bot: ChatClient, database: Database) -> None:
    await _submit(bot)
    await bot.send_text(ADMIN, "通过 1")
    claim_and_fulfil(database, bot.clock.now(), 1, make_member(database, bot.clock.now(), MEMBER), fulfil=False)
    assert await bot.send_text(ADMIN, "转办 1 物业公司") == messages.ASSIGN_OK.format(code=1, unit="物业公司")
    wish = wish_row(database, bot.clock.now(), 1)
    assert (wish.status, wish.claimer_id) == ("assigned", None)


async def test_close_needs_feedback_and_says_so(bot: ChatClient, database: Database) -> None:
    await _submit(bot)
    assert await bot.send_text(ADMIN, "销号 1") == messages.ILLEGAL_TRANSITION.format(code=1, status="待登记", action="销号")
    await bot.send_text(ADMIN, "通过 1")
    claim_and_fulfil(database, bot.clock.now(), 1, make_member(database, bot.clock.now(), MEMBER))
    assert await bot.send_text(ADMIN, "销号 1") == messages.CLOSE_NEEDS_VISIT.format(code=1)
    assert await bot.send_text(ADMIN, "回访 1") == messages.VISIT_USAGE.format(code=1)
    reply = await bot.send_text(ADMIN, "回访 1 已解决 5 群众很满意")
    assert reply == messages.VISIT_OK.format(code=1, answer="已解决", rating=messages.ALERT_RATING.format(rating=5)) + messages.VISIT_CLOSE_HINT.format(code=1)
    wish = wish_row(database, bot.clock.now(), 1)
    assert (wish.status, wish.rating, wish.feedback, wish.feedback_note) == ("rated", 5, "solved", "群众很满意")
    assert await bot.send_text(ADMIN, "销号 1") == messages.CLOSE_OK.format(code=1)
    assert wish_row(database, bot.clock.now(), 1).status == "closed"
    assert progress(database, bot)[-1] == (messages.NOTICE_CLOSED.format(code=1), {"code": "1", "status": "已销号"})


async def test_an_unsolved_visit_reopens_for_the_claimer(bot: ChatClient, database: Database) -> None:
    await _submit(bot)
    await bot.send_text(ADMIN, "通过 1")
    member = make_member(database, bot.clock.now(), MEMBER)
    claim_and_fulfil(database, bot.clock.now(), 1, member)
    reply = await bot.send_text(ADMIN, "回访 1 未解决 还在漏水")
    assert reply == messages.VISIT_OK.format(code=1, answer="未解决", rating="") + messages.VISIT_REOPENED
    wish = wish_row(database, bot.clock.now(), 1)
    assert (wish.status, wish.claimer_id) == ("claimed", member)
    assert [e.action for e in events(database, bot.clock.now(), 1)][-2:] == ["visit", "reopen"]
    assert any("还在漏水" in t for t in texts_to(database, bot.clock.now(), MEMBER))


async def test_the_claimer_may_not_record_the_return_visit(bot: ChatClient, database: Database) -> None:
    now = bot.clock.now()
    await _submit(bot)
    await bot.send_text(ADMIN, "通过 1")
    admin_id = make_person(database, now, ADMIN, "admin")

    def admin_claims(uow):  # type: ignore[no-untyped-def]
        w, a = uow.wishes.get(1), uow.people.get(admin_id)
        uow.wishes.move(w, Action.CLAIM, parties={Party.MEMBER}, actor=a, actor_role="member", now=uow.now,
                        changes={"claimer_id": admin_id})
        uow.wishes.move(w, Action.FULFIL, parties={Party.CLAIMER}, actor=a, actor_role="member", now=uow.now,
                        changes={"fulfilled_at": uow.now})
    database.run_sync(admin_claims, now)
    assert await bot.send_text(ADMIN, "回访 1 已解决 5") == messages.VISIT_BY_CLAIMER.format(code=1)
    assert wish_row(database, now, 1).status == "fulfilled"
    make_person(database, now, ADMIN2, "admin")
    assert (await bot.send_text(ADMIN2, "回访 1 已解决 5") or "").startswith(messages.VISIT_OK.format(code=1, answer="已解决", rating="（5分）"))


async def test_stats_counts_states_and_outbox(bot: ChatClient, database: Database) -> None:
    await _submit(bot)
    await _submit(bot, "孩子需要一个新书包和文具", RESIDENT2)
    await bot.send_text(ADMIN, "通过 1")
    reply = await bot.send_text(ADMIN, "统计")
    assert reply is not None and reply.startswith("【当前数据】\n心愿总数 2\n待登记 1｜待认领 1｜已认领 0")
    pending = len([r for r in outbox_rows(database, bot.clock.now()) if r.state == "pending"])
    assert f"待发消息 {pending}｜发送失败 0" in reply


async def test_a_visit_records_an_assigned_units_result(bot: ChatClient, database: Database) -> None:
    await _submit(bot, "小区楼道的路灯坏了很久没人修")
    await bot.send_text(ADMIN, "通过 1 共性 街道城管科")
    assert (await bot.send_text(ADMIN, "回访 1 未解决 还是不亮") or "").endswith(messages.VISIT_REOPENED)
    wish = wish_row(database, bot.clock.now(), 1)
    assert (wish.status, wish.assigned_unit) == ("assigned", "街道城管科")
    assert (await bot.send_text(ADMIN, "回访 1 已解决 4") or "").endswith(messages.VISIT_CLOSE_HINT.format(code=1))
    assert await bot.send_text(ADMIN, "销号 1") == messages.CLOSE_OK.format(code=1)
    assert [e.action for e in events(database, bot.clock.now(), 1)] == [
        "submit", "approve", "assign", "fulfil", "visit", "rework", "fulfil", "visit", "close"]


async def test_a_published_wish_cannot_be_registered_again_as_common(bot: ChatClient, database: Database) -> None:
    await _submit(bot)
    await bot.send_text(ADMIN, "通过 1")
    assert await bot.send_text(ADMIN, "通过 1 共性") == messages.ILLEGAL_TRANSITION.format(code=1, status="待认领", action="登记发布")
    wish = wish_row(database, bot.clock.now(), 1)
    assert (wish.status, wish.tier) == ("published", "personal")
    assert await bot.send_text(ADMIN, "转办 1 区民政局") == messages.ASSIGN_OK.format(code=1, unit="区民政局")
