"""Issue 9 item 4, through the HTTP gateway on SQLite and PostgreSQL: voice wishes, 代办 and 关联."""

from __future__ import annotations

from datetime import timedelta

from bot import messages
from storage.db import Database
from storage.models import Person
from tests.support import ADMIN, MEMBER, RESIDENT, RESIDENT2, ChatClient
from tests.wishflow import events, make_member, outbox_rows, texts_to, wish_row

HEARD = "我腿脚不方便，想请人帮忙买点米和油"
PROXY_TEXT = "老人独居，想请人每周来陪她聊聊天"


async def _proxy(bot: ChatClient, *, phone: str = "13912345678", consent: str = "上门") -> str | None:
    assert await bot.send_text(ADMIN, "代办") == messages.PROXY_ASK_NAME
    assert await bot.send_text(ADMIN, "张桂兰") == messages.PROXY_ASK_PHONE
    assert await bot.send_text(ADMIN, phone) == messages.PROXY_ASK_COMMUNITY
    assert await bot.send_text(ADMIN, "幸福社区") == messages.PROXY_ASK_CONSENT
    assert await bot.send_text(ADMIN, consent) == messages.PROXY_ASK_CONTENT
    return await bot.send_text(ADMIN, PROXY_TEXT)


def _person(database: Database, bot: ChatClient, person_id: int) -> Person:
    return database.run_sync(lambda uow: uow.people.get(person_id), bot.clock.now(), False)  # type: ignore[no-any-return]


async def test_voice_with_recognition_becomes_a_wish_keeping_the_media_id(bot: ChatClient, database: Database) -> None:
    reply = await bot.send_message(RESIDENT, "voice", {"MediaId": "media-123", "Format": "amr", "Recognition": HEARD})
    assert reply == messages.VOICE_OK.format(code=1, text=HEARD) + messages.WISH_OK_WALL.format(code=1)
    wish = wish_row(database, bot.clock.now(), 1)
    assert (wish.source, wish.voice_media_id, wish.content, wish.status) == ("voice", "media-123", HEARD, "submitted")
    assert wish.category == "生活物资"


async def test_voice_without_recognition_waits_for_transcription(bot: ChatClient, database: Database) -> None:
    reply = await bot.send_message(RESIDENT, "voice", {"MediaId": "media-456", "Format": "amr"})
    assert reply == messages.VOICE_OK_PENDING.format(code=1) + messages.WISH_OK_WALL.format(code=1)
    wish = wish_row(database, bot.clock.now(), 1)
    assert (wish.source, wish.voice_media_id, wish.content) == ("voice", "media-456", messages.VOICE_PLACEHOLDER)
    assert messages.VOICE_PLACEHOLDER in (await bot.send_text(ADMIN, "待审") or "")


async def test_voice_wishes_count_against_the_residents_limits(bot: ChatClient, database: Database) -> None:
    for i in range(3):
        await bot.send_message(RESIDENT, "voice", {"MediaId": f"m{i}", "Recognition": f"{HEARD}{i}"})
    reply = await bot.send_message(RESIDENT, "voice", {"MediaId": "m9", "Recognition": HEARD})
    assert reply == messages.WISH_TOO_MANY_OPEN.format(n=3)


async def test_proxy_files_a_wish_for_a_resident_without_wechat(bot: ChatClient, database: Database) -> None:
    reply = await _proxy(bot)
    assert reply == messages.PROXY_OK.format(name="张桂兰", code=1, consent="上门") + messages.PROXY_OK_LINK.format(code=1)
    wish = wish_row(database, bot.clock.now(), 1)
    assert (wish.source, wish.consent_method, wish.content, wish.contact_phone) == ("proxy", "visit", PROXY_TEXT, "13912345678")
    admin = database.run_sync(lambda uow: uow.people.by_openid(ADMIN), bot.clock.now(), False)
    assert wish.filed_by_id == admin.id
    resident = _person(database, bot, wish.resident_id)
    assert (resident.openid, resident.name, resident.phone) == (None, "张桂兰", "13912345678")
    assert resident.community_id == wish.community_id is not None
    assert events(database, bot.clock.now(), 1)[0].actor_id == admin.id
    before = len(outbox_rows(database, bot.clock.now(), kind="progress"))
    assert await bot.send_text(ADMIN, "通过 1") == messages.APPROVE_OK.format(code=1, tier="个性")
    assert len(outbox_rows(database, bot.clock.now(), kind="progress")) == before  # nobody to tell on WeChat yet


async def test_proxy_asks_again_on_bad_answers_and_can_be_left(bot: ChatClient, database: Database) -> None:
    assert await bot.send_text(ADMIN, "/proxy") == messages.PROXY_ASK_NAME
    assert await bot.send_text(ADMIN, "李") == messages.PROXY_ASK_PHONE
    assert await bot.send_text(ADMIN, "12") == messages.DLG_BAD_PHONE
    assert await bot.send_text(ADMIN, "跳过") == messages.PROXY_ASK_COMMUNITY
    assert await bot.send_text(ADMIN, "跳过") == messages.PROXY_BAD_COMMUNITY
    assert await bot.send_text(ADMIN, "幸福社区") == messages.PROXY_ASK_CONSENT
    assert await bot.send_text(ADMIN, "同意了") == messages.PROXY_ASK_CONSENT
    assert await bot.send_text(ADMIN, "书面") == messages.PROXY_ASK_CONTENT
    assert await bot.send_text(ADMIN, "取消") == messages.PROXY_LEFT
    assert outbox_rows(database, bot.clock.now(), kind="progress") == []
    reply = await _proxy(bot, phone="跳过", consent="电话")
    assert reply == messages.PROXY_OK.format(name="张桂兰", code=1, consent="电话") + messages.PROXY_OK_NO_PHONE


async def test_only_admins_may_file_for_others(bot: ChatClient, database: Database) -> None:
    make_member(database, bot.clock.now(), MEMBER)
    assert await bot.send_text(RESIDENT, "代办") == messages.NEED_ADMIN
    assert await bot.send_text(MEMBER, "代办") == messages.NEED_ADMIN


async def test_resident_takes_over_with_the_last_four_digits_and_gets_updates(bot: ChatClient, database: Database) -> None:
    await _proxy(bot)
    assert await bot.send_text(RESIDENT2, "关联 1 1234") == messages.LINK_FAILED
    assert await bot.send_text(RESIDENT2, "关联 9 5678") == messages.LINK_FAILED  # no such wish: the same words
    assert await bot.send_text(RESIDENT2, "关联 1") == messages.LINK_USAGE
    assert await bot.send_text(RESIDENT2, "关联 1 5678") == messages.LINK_OK.format(code=1)
    me = database.run_sync(lambda uow: uow.people.by_openid(RESIDENT2), bot.clock.now(), False)
    assert wish_row(database, bot.clock.now(), 1).resident_id == me.id
    assert (me.name, me.phone, me.link_failures) == ("张桂兰", "13912345678", 0)
    assert [e.action for e in events(database, bot.clock.now(), 1)][-1] == "link"
    assert "1号" in (await bot.send_text(RESIDENT2, "我的心愿") or "")
    await bot.send_text(ADMIN, "通过 1")
    assert texts_to(database, bot.clock.now(), RESIDENT2)[-1] == messages.NOTICE_APPROVED.format(code=1)
    assert await bot.send_text(RESIDENT, "关联 1 5678") == messages.LINK_FAILED  # already taken over


async def test_link_is_not_for_wishes_of_wechat_users(bot: ChatClient, database: Database) -> None:
    await bot.send_text(RESIDENT, "许愿 想请人帮忙修一下家里漏水的水龙头 13912345678")
    assert await bot.send_text(RESIDENT2, "关联 1 5678") == messages.LINK_FAILED
    assert wish_row(database, bot.clock.now(), 1).resident_id != database.run_sync(
        lambda uow: uow.people.by_openid(RESIDENT2), bot.clock.now(), False).id


async def test_repeated_wrong_digits_lock_linking_for_a_while(bot: ChatClient, database: Database) -> None:
    await _proxy(bot)
    for _ in range(5):  # settings.link_max_failures
        assert await bot.send_text(RESIDENT2, "关联 1 0000") == messages.LINK_FAILED
    locked = messages.LINK_LOCKED.format(hours=24)
    assert await bot.send_text(RESIDENT2, "关联 1 5678") == locked  # even the right digits wait now
    bot.clock.advance(timedelta(hours=23))
    assert await bot.send_text(RESIDENT2, "关联 1 5678") == locked
    bot.clock.advance(timedelta(hours=2))
    assert await bot.send_text(RESIDENT2, "关联 1 5678") == messages.LINK_OK.format(code=1)


async def test_a_voice_answer_in_the_wish_dialogue_keeps_the_voice(bot: ChatClient, database: Database) -> None:
    assert await bot.send_text(RESIDENT, "许愿") == messages.DLG_ASK_CONTENT
    reply = await bot.send_message(RESIDENT, "voice", {"MediaId": "media-dlg", "Format": "amr"})
    assert reply is not None and reply.startswith(messages.DLG_ASK_CATEGORY.split("“")[0])
    for answer in ("确认", "跳过", "跳过"):
        reply = await bot.send_text(RESIDENT, answer)
    assert reply is not None and reply.startswith(messages.WISH_OK.split("{")[0])
    wish = wish_row(database, bot.clock.now(), 1)
    assert (wish.source, wish.voice_media_id, wish.content) == ("voice", "media-dlg", messages.VOICE_PLACEHOLDER)
