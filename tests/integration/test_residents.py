"""Residents through the HTTP gateway (SQLite and PostgreSQL): submit, the dialogue, follow, answer."""

from __future__ import annotations

from datetime import timedelta

from bot import messages
from bot.config import Settings
from bot.services.claims import claim_wish
from storage.db import Database
from tests.support import ADMIN, MEMBER, RESIDENT, RESIDENT2, ChatClient
from tests.wishflow import claim_and_fulfil, events, make_member, outbox_rows, texts_to, wish_row

TAP = "想请人帮忙修一下家里漏水的水龙头"


def ok(code: int) -> str:
    return messages.WISH_OK.format(code=code) + messages.WISH_OK_WALL.format(code=code)


async def test_one_shot_wish_gets_its_number_and_a_category(bot: ChatClient, database: Database) -> None:
    assert await bot.send_text(RESIDENT, f"许愿 {TAP}") == ok(1)
    wish = wish_row(database, bot.clock.now(), 1)
    assert (wish.status, wish.category, wish.source) == ("submitted", "维修", "text")


async def test_length_limits_are_explained(bot: ChatClient) -> None:
    assert await bot.send_text(RESIDENT, "许愿 修灯") == messages.WISH_TOO_SHORT.format(min=4)
    assert await bot.send_text(RESIDENT, "许愿 " + "帮" * 501) == messages.WISH_TOO_LONG.format(max=500)


async def test_open_and_daily_limits_are_explained(bot: ChatClient) -> None:
    texts = ["想请人陪我去医院复查身体", "孩子需要一个新书包和文具", "家里楼道的路灯坏了很久", "想找一份保洁的工作做做",
             "冬天需要一床厚棉被取暖", "想咨询一下遗嘱怎么写"]
    for i, text in enumerate(texts[:3], start=1):
        assert await bot.send_text(RESIDENT, f"许愿 {text}") == ok(i)
    assert await bot.send_text(RESIDENT, f"许愿 {texts[3]}") == messages.WISH_TOO_MANY_OPEN.format(n=3)
    assert await bot.send_text(RESIDENT, "取消 1") == messages.CANCEL_OK.format(code=1)
    assert await bot.send_text(RESIDENT, f"许愿 {texts[3]}") == ok(4)
    assert await bot.send_text(RESIDENT, "取消 2") == messages.CANCEL_OK.format(code=2)
    assert await bot.send_text(RESIDENT, f"许愿 {texts[4]}") == ok(5)
    assert await bot.send_text(RESIDENT, "取消 3") == messages.CANCEL_OK.format(code=3)
    assert await bot.send_text(RESIDENT, f"许愿 {texts[5]}") == messages.WISH_TOO_MANY_TODAY.format(n=5)
    bot.clock.advance(days=1)  # a new local day
    assert await bot.send_text(RESIDENT, f"许愿 {texts[5]}") == ok(6)


async def test_a_very_similar_open_wish_asks_first(bot: ChatClient, database: Database) -> None:
    assert await bot.send_text(RESIDENT, f"许愿 {TAP}") == ok(1)
    asked = messages.WISH_SIMILAR.format(code=1, text=TAP)
    assert await bot.send_text(RESIDENT, "许愿 想请人帮忙修一下家里漏水的水龙头啊") == asked
    assert await bot.send_text(RESIDENT, "什么") == messages.WISH_SIMILAR_AGAIN
    assert await bot.send_text(RESIDENT, "确认") == ok(2)
    assert await bot.send_text(RESIDENT, f"许愿 {TAP}") == asked
    assert await bot.send_text(RESIDENT, "取消") == messages.WISH_DUP_CANCELLED
    assert await bot.send_text(RESIDENT, "我的心愿") is not None
    assert [w.id for w in database.run_sync(lambda u: u.wishes.of_resident(1), bot.clock.now())] == [2, 1]
    # another resident's wish is never "similar"
    assert await bot.send_text(RESIDENT2, f"许愿 {TAP}") == ok(3)


async def test_the_dialogue_asks_step_by_step_and_takes_a_location(bot: ChatClient, database: Database) -> None:
    assert await bot.send_text(RESIDENT, "许愿") == messages.DLG_ASK_CONTENT
    assert await bot.send_text(RESIDENT, "修灯") == messages.WISH_TOO_SHORT.format(min=4)
    cats = messages.DLG_CATEGORY_SEPARATOR.join(messages.CATEGORIES)
    assert await bot.send_text(RESIDENT, TAP) == messages.DLG_ASK_CATEGORY.format(category="维修", categories=cats)
    assert await bot.send_text(RESIDENT, "修东西") == messages.DLG_BAD_CATEGORY.format(categories=cats)
    assert await bot.send_text(RESIDENT, "生活物资") == messages.DLG_ASK_PHONE
    assert await bot.send_text(RESIDENT, "12345") == messages.DLG_BAD_PHONE
    assert await bot.send_text(RESIDENT, "138 1234 5678") == messages.DLG_ASK_COMMUNITY
    reply = await bot.send_message(RESIDENT, "location", {"Location_X": 22.54, "Location_Y": 113.95, "Scale": 15,
                                                          "Label": "广东省深圳市南山区粤海街道科技园社区科苑路15号"})
    assert reply == ok(1)
    wish = wish_row(database, bot.clock.now(), 1)
    assert (wish.category, wish.contact_phone, wish.source) == ("生活物资", "13812345678", "dialogue")
    assert database.run_sync(lambda u: u.org.get(wish.community_id).name, bot.clock.now()) == "科技园社区"
    assert await bot.send_text(RESIDENT, "你好") == messages.HINT  # the dialogue is over


async def test_the_menu_starts_the_dialogue_and_a_typed_community_works(bot: ChatClient, database: Database) -> None:
    assert await bot.send_event(RESIDENT, "CLICK", "WISH_NEW") == messages.DLG_ASK_CONTENT
    await bot.send_text(RESIDENT, "想请人陪我去医院复查")
    assert await bot.send_text(RESIDENT, "确认") == messages.DLG_ASK_PHONE
    assert await bot.send_text(RESIDENT, "跳过") == messages.DLG_ASK_COMMUNITY
    assert await bot.send_text(RESIDENT, "幸福社区") == ok(1)
    wish = wish_row(database, bot.clock.now(), 1)
    assert (wish.category, wish.contact_phone) == ("医疗健康", None)


async def test_leaving_and_timing_out_the_dialogue(bot: ChatClient, database: Database) -> None:
    assert await bot.send_text(RESIDENT, "许愿") == messages.DLG_ASK_CONTENT
    assert await bot.send_text(RESIDENT, "退出") == messages.DLG_LEFT
    assert await bot.send_text(RESIDENT, "许愿") == messages.DLG_ASK_CONTENT
    await bot.send_text(RESIDENT, TAP)
    assert await bot.send_text(RESIDENT, "取消") == messages.DLG_LEFT
    assert await bot.send_text(RESIDENT, "许愿") == messages.DLG_ASK_CONTENT
    bot.clock.advance(minutes=31)
    assert await bot.send_text(RESIDENT, TAP) == messages.DLG_EXPIRED
    assert await bot.send_text(RESIDENT, TAP) == messages.HINT  # told once
    assert await bot.send_text(RESIDENT, "许愿") == messages.DLG_ASK_CONTENT
    bot.clock.advance(minutes=31)
    assert await bot.send_text(RESIDENT, "我的心愿") == messages.MINE_EMPTY  # a command still works
    assert database.run_sync(lambda u: u.wishes.of_resident(1), bot.clock.now()) == []


async def test_mine_and_track_show_only_my_own_wishes(bot: ChatClient, database: Database) -> None:
    now = bot.clock.now()
    assert await bot.send_text(RESIDENT, "我的心愿") == messages.MINE_EMPTY
    await bot.send_text(RESIDENT, f"许愿 {TAP}")
    await bot.send_text(RESIDENT2, "许愿 孩子需要一个新书包和文具")
    mine = await bot.send_text(RESIDENT, "我的心愿")
    assert mine == "\n".join([messages.MINE_HEADER, messages.MINE_LINE.format(code=1, status="待登记", text=TAP)]) + messages.MINE_MORE
    track = await bot.send_text(RESIDENT, "进度 1")
    assert track is not None and track.startswith(messages.TRACK_HEADER.format(code=1, status="待登记", text=TAP))
    assert messages.TRACK_LINE.format(time="3月2日 10:00", step="提交心愿", who=messages.TRACK_WHO.format(name=messages.TRACK_YOU)) in track
    assert await bot.send_text(RESIDENT, "进度 2") == messages.TRACK_NOT_YOURS.format(code=2)
    assert await bot.send_text(RESIDENT, "进度 #99") == messages.UNKNOWN_NUMBER.format(code=99)
    assert await bot.send_text(RESIDENT, "进度 abc") == messages.BAD_NUMBER.format(text="abc")
    assert await bot.send_text(RESIDENT, "进度") == messages.NEED_NUMBER.format(example="进度 12")
    admin_view = await bot.send_text(ADMIN, "进度 W2")
    assert admin_view is not None and "书包" in admin_view and TAP not in admin_view
    assert now == bot.clock.now()


async def test_cancel_private_and_refusals(bot: ChatClient, database: Database) -> None:
    now = bot.clock.now()
    await bot.send_text(RESIDENT, f"许愿 {TAP}")
    await bot.send_text(RESIDENT, "许愿 孩子需要一个新书包和文具")
    assert await bot.send_text(RESIDENT2, "取消 1") == messages.NOT_YOUR_WISH.format(code=1, action=messages.CANCEL_ACTION)
    assert await bot.send_text(RESIDENT2, "不公开 1") == messages.NOT_YOUR_WISH.format(code=1, action=messages.PRIVATE_NOT_YOURS_ACTION)
    assert await bot.send_text(RESIDENT, "不公开 1") == messages.PRIVATE_OK.format(code=1)
    assert wish_row(database, now, 1).public is False
    assert await bot.send_text(RESIDENT, "取消 1") == messages.CANCEL_OK.format(code=1)
    assert wish_row(database, now, 1).status == "cancelled"
    assert await bot.send_text(RESIDENT, "取消 1") == messages.ILLEGAL_TRANSITION.format(code=1, status="已撤回", action="撤回")
    await bot.send_text(ADMIN, "通过 2")
    claim_and_fulfil(database, now, 2, make_member(database, now, MEMBER), fulfil=False)
    assert await bot.send_text(RESIDENT, "取消 2") == messages.ILLEGAL_TRANSITION.format(code=2, status="已认领", action="撤回")
    assert wish_row(database, now, 2).status == "claimed"
    assert await bot.send_text(RESIDENT, "取消 42") == messages.UNKNOWN_NUMBER.format(code=42)


async def _fulfilled(bot: ChatClient, database: Database, text: str = TAP) -> tuple[int, int]:
    now = bot.clock.now()
    reply = await bot.send_text(RESIDENT, f"许愿 {text}")
    code = int(reply.split("编号 ")[1].split("。")[0]) if reply else 0
    await bot.send_text(ADMIN, f"通过 {code}")
    member = make_member(database, now, MEMBER)
    claim_and_fulfil(database, now, code, member)
    return code, member


async def test_a_good_rating_closes_the_wish(bot: ChatClient, database: Database) -> None:
    code, _ = await _fulfilled(bot, database)
    assert await bot.send_text(RESIDENT, f"评价 {code} 6") == messages.RATE_BAD_SCORE.format(code=code)
    assert await bot.send_text(RESIDENT2, f"评价 {code} 5") == messages.NOT_YOUR_WISH.format(code=code, action=messages.RATE_ACTION)
    reply = await bot.send_text(RESIDENT, f"评价 {code} 5 非常感谢")
    assert reply == messages.RATE_OK.format(code=code, stars="★★★★★") + messages.RATE_CLOSED_TAIL
    wish = wish_row(database, bot.clock.now(), code)
    assert (wish.status, wish.rating, wish.feedback_note) == ("closed", 5, "非常感谢")
    steps = [(e.action, e.actor_role, e.to_status) for e in events(database, bot.clock.now(), code)][-2:]
    assert steps == [("rate", "resident", "rated"), ("close", "system", "closed")]
    assert await bot.send_text(RESIDENT, "5") == messages.RATE_NOTHING_OPEN


async def test_a_poor_rating_goes_back_to_the_same_claimer_and_alerts_admins(bot: ChatClient, database: Database) -> None:
    code, member = await _fulfilled(bot, database)
    assert await bot.send_text(RESIDENT, f"评价 {code} 2 水龙头还是漏") == messages.RATE_LOW.format(code=code)
    wish = wish_row(database, bot.clock.now(), code)
    assert (wish.status, wish.claimer_id, wish.fulfilled_at) == ("claimed", member, None)
    alerts = [r.payload["content"] for r in outbox_rows(database, bot.clock.now(), channel="admin_webhook")]
    assert any("水龙头还是漏" in a and str(code) in a for a in alerts)
    assert any("水龙头还是漏" in t for t in texts_to(database, bot.clock.now(), ADMIN))
    assert any("水龙头还是漏" in t for t in texts_to(database, bot.clock.now(), MEMBER))


async def test_a_bare_digit_answers_the_latest_wish_awaiting_feedback(bot: ChatClient, database: Database) -> None:
    assert await bot.send_text(RESIDENT, "4") == messages.RATE_NOTHING_OPEN
    code, _ = await _fulfilled(bot, database)
    assert await bot.send_text(RESIDENT, "4") == messages.RATE_OK.format(code=code, stars="★★★★") + messages.RATE_CLOSED_TAIL
    assert wish_row(database, bot.clock.now(), code).status == "closed"


async def test_solved_partly_and_unsolved_answers(bot: ChatClient, database: Database) -> None:
    code, member = await _fulfilled(bot, database)
    partly = await bot.send_text(RESIDENT, "部分解决")
    assert partly == messages.FEEDBACK_OK.format(code=code, answer="部分解决") + messages.FEEDBACK_REOPENED_TAIL
    assert wish_row(database, bot.clock.now(), code).status == "claimed"
    assert await bot.send_text(RESIDENT, "未解决") == messages.FEEDBACK_NOTHING_OPEN
    now = bot.clock.now()

    def refulfil(uow):  # type: ignore[no-untyped-def]
        from bot.lifecycle import Action, Party
        w = uow.wishes.get(code)
        uow.wishes.move(w, Action.FULFIL, parties={Party.CLAIMER}, actor=uow.people.get(member), actor_role="member",
                        now=uow.now, changes={"fulfilled_at": uow.now})
    database.run_sync(refulfil, now)
    assert await bot.send_text(RESIDENT, f"已解决 {code}") == messages.FEEDBACK_OK.format(code=code, answer="已解决") + messages.RATE_CLOSED_TAIL
    wish = wish_row(database, now, code)
    assert (wish.status, wish.feedback) == ("closed", "solved")


async def test_private_details_never_reach_the_claim_channel(bot: ChatClient, database: Database) -> None:
    await bot.send_text(RESIDENT, "许愿 我住3号楼2单元301室，电话13912345678，家里水管漏水想请人修")
    await bot.send_text(ADMIN, "通过 1")
    posts = [r.payload.get("content", "") for r in outbox_rows(database, bot.clock.now(), channel="claim_webhook")]
    assert posts and all("13912345678" not in p and "301" not in p for p in posts)
    wish = wish_row(database, bot.clock.now(), 1)
    assert wish.contact_phone == "13912345678" and "13912345678" not in wish.masked


async def test_voice_or_text_outside_a_dialogue_falls_through(bot: ChatClient) -> None:
    bot.clock.advance(timedelta(minutes=1))
    assert await bot.send_text(RESIDENT, "你好") == messages.HINT


async def test_the_dialogue_asks_about_a_minor_when_a_child_is_mentioned(bot: ChatClient, database: Database) -> None:
    cats = messages.DLG_CATEGORY_SEPARATOR.join(messages.CATEGORIES)
    await bot.send_text(RESIDENT, "许愿")
    assert await bot.send_text(RESIDENT, "孩子需要一个新书包和文具") == messages.DLG_ASK_MINOR
    assert await bot.send_text(RESIDENT, "也许") == messages.DLG_ASK_MINOR
    assert await bot.send_text(RESIDENT, "是") == messages.DLG_ASK_CATEGORY.format(category="助学", categories=cats)
    for answer in ("确认", "跳过", "跳过"):
        await bot.send_text(RESIDENT, answer)
    wish = wish_row(database, bot.clock.now(), 1)
    assert (wish.concerns_minor, wish.category, wish.community_id) == (True, "助学", None)


async def test_track_shows_the_safety_code_only_to_the_resident(bot: ChatClient, database: Database,
                                                                settings: Settings) -> None:
    now = bot.clock.now()
    await bot.send_text(RESIDENT, f"许愿 {TAP}")
    await bot.send_text(ADMIN, "通过 1")
    member = make_member(database, now, MEMBER)

    def claim(uow):  # type: ignore[no-untyped-def]
        claim_wish(uow, wish_id=1, member=uow.people.get(member), days=3, settings=settings).safety_code = "4821"
    database.run_sync(claim, now)
    safety = messages.TRACK_SAFETY.format(safety_code="4821")
    mine = await bot.send_text(RESIDENT, "进度 1")
    assert mine is not None and mine.endswith(safety)
    admin_view = await bot.send_text(ADMIN, "进度 1")
    assert admin_view is not None and safety not in admin_view
