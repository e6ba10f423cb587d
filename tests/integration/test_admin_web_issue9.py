"""Issue 9 on the dashboard (SQLite and PostgreSQL, real HTTP): voice wishes shown and transcribed,
proxy filing shown, flags and common-problem proposals listed and merged, all behind CSRF and scope."""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from bot import messages
from bot.app import create_app
from bot.clock import FrozenClock
from bot.config import Settings
from storage.db import Database, UnitOfWork
from tests.admin_support import ALICE, ALICE_PW, ROOT, ROOT_PW, Seed, login, page_csrf, seed_basics
from tests.support import ADMIN, MEMBER, RESIDENT, RESIDENT2, ChatClient
from tests.wishflow import events, make_member, wish_row

RESIDENT3 = "o_resident_00000000000000003"
LAMP_1 = "楼道里的路灯坏了好几天，晚上很黑看不见"
LAMP_2 = "我们楼道的路灯坏了，晚上上下楼很黑"


@pytest.fixture
async def dash(aiohttp_client: Any, settings: Settings, clock: FrozenClock, database: Database,
               bot: ChatClient) -> AsyncIterator[tuple[Any, Seed]]:
    seed = database.run_sync(seed_basics, clock.now())
    client = await aiohttp_client(create_app(settings, clock=clock, database=database, background=False))
    yield client, seed


def live_in(database: Database, clock: FrozenClock, openid: str, community: str) -> None:
    def job(uow: UnitOfWork) -> None:
        uow.people.ensure(openid, now=uow.now).community_id = uow.org.ensure("community", community).id
    database.run_sync(job, clock.now())


async def test_a_voice_wish_shows_its_media_id_and_is_transcribed_with_csrf(
        dash: Any, bot: ChatClient, database: Database, clock: FrozenClock) -> None:
    client, seed = dash
    live_in(database, clock, RESIDENT, "Dongfeng")
    await bot.send_message(RESIDENT, "voice", {"MediaId": "media-voice-1", "Format": "amr"})
    code = wish_row(database, clock.now(), 3).id  # after the two seeded wishes
    await login(client, ROOT, ROOT_PW)
    page = await (await client.get(f"/admin/wishes/{code}")).text()
    assert "media-voice-1" in page and 'id="form-transcribe"' in page and messages.VOICE_PLACEHOLDER in page
    url = f"/admin/transcribe/{code}"
    text = "我想请人帮忙修一下家里的水龙头，电话13912345678"
    assert (await client.post(url, data={"text": text})).status == 403
    assert (await client.post(url, data={"text": text, "csrf": "wrong"})).status == 403
    assert wish_row(database, clock.now(), code).content == messages.VOICE_PLACEHOLDER
    done = await client.post(url, data={"text": text, "csrf": await page_csrf(client)}, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == f"/admin/wishes/{code}?done=1"
    wish = wish_row(database, clock.now(), code)
    assert wish.content.startswith("我想请人帮忙修一下家里的水龙头") and "13912345678" not in wish.masked
    assert (wish.category, wish.contact_phone, wish.voice_media_id) == ("维修", "13912345678", "media-voice-1")
    assert [e.action for e in events(database, clock.now(), code)][-1] == "transcribe"
    await bot.send_text(ADMIN, f"通过 {code}")
    page = await (await client.get(f"/admin/wishes/{code}")).text()
    assert "media-voice-1" in page and 'id="form-transcribe"' not in page  # registered: no more rewriting
    late = await client.post(url, data={"text": text, "csrf": await page_csrf(client)})
    assert late.status == 409 and messages.TRANSCRIBE_TOO_LATE.format(code=code) in await late.text()
    not_voice = await client.post(f"/admin/transcribe/{seed.wishes_a[0]}", data={"text": text, "csrf": await page_csrf(client)})
    assert not_voice.status == 409 and messages.TRANSCRIBE_NOT_VOICE.format(code=seed.wishes_a[0]) in await not_voice.text()


async def test_a_community_admin_cannot_transcribe_outside_their_community(
        dash: Any, bot: ChatClient, database: Database, clock: FrozenClock) -> None:
    client, _ = dash
    live_in(database, clock, RESIDENT, "Xihu")
    await bot.send_message(RESIDENT, "voice", {"MediaId": "media-voice-2"})
    await login(client, ALICE, ALICE_PW)
    reply = await client.post("/admin/transcribe/3", data={"text": "想请人修水龙头", "csrf": await page_csrf(client)})
    assert reply.status == 404
    assert wish_row(database, clock.now(), 3).content == messages.VOICE_PLACEHOLDER


async def test_a_proxy_wish_shows_who_filed_it_and_how_consent_was_given(
        dash: Any, bot: ChatClient, database: Database, clock: FrozenClock) -> None:
    client, _ = dash
    for answer in ("代办", "张桂兰", "跳过", "Dongfeng", "书面"):
        await bot.send_text(ADMIN, answer)
    await bot.send_text(ADMIN, "老人独居，想请人每周来陪她聊聊天")
    await login(client, ROOT, ROOT_PW)
    page = await (await client.get("/admin/wishes/3")).text()
    assert 'id="proxy"' in page and messages.CONSENT_NAMES["written"] in page and "张桂兰" in page


async def test_flags_and_proposals_are_listed_and_a_group_is_merged_from_the_page(
        dash: Any, bot: ChatClient, database: Database, clock: FrozenClock) -> None:
    client, seed = dash
    for who in (RESIDENT, RESIDENT2):
        live_in(database, clock, who, "Dongfeng")
    live_in(database, clock, RESIDENT3, "Xihu")
    await bot.send_text(RESIDENT, f"许愿 {LAMP_1}")
    await bot.send_text(RESIDENT2, f"许愿 {LAMP_2}")  # wishes 3 and 4: one proposal in Dongfeng
    await bot.send_text(RESIDENT3, f"许愿 {LAMP_1}")  # 5, alone in Xihu
    await login(client, ROOT, ROOT_PW)
    page = await (await client.get("/admin/flags")).text()
    assert 'href="/admin/flags"' in page
    assert messages.COMMON_LINE.format(codes="3,4", community="Dongfeng", category="环境设施", n=2, text=LAMP_1) in page
    csrf = await page_csrf(client)
    assert (await client.post("/admin/flags/merge", data={"codes": "3,4", "unit": "城管科"})).status == 403
    missing_unit = await client.post("/admin/flags/merge", data={"codes": "3,4", "unit": "", "csrf": csrf})
    assert missing_unit.status == 400
    too_few = await client.post("/admin/flags/merge", data={"codes": "3", "unit": "城管科", "csrf": csrf})
    assert too_few.status == 409 and messages.MERGE_TOO_FEW in await too_few.text()
    merged = await client.post("/admin/flags/merge", data={"codes": "3,4", "unit": "城管科", "csrf": csrf},
                               allow_redirects=False)
    assert merged.status == 303
    assert [(w.status, w.tier) for w in (wish_row(database, clock.now(), 3), wish_row(database, clock.now(), 4))] == [
        ("assigned", "common"), ("assigned", "common")]
    page = await (await client.get("/admin/flags")).text()
    assert messages.DASH["no_common"] in page and "3,4" not in page
    await login(client, ALICE, ALICE_PW)
    cross = await client.post("/admin/flags/merge", data={"codes": f"{seed.wishes_a[0]},{seed.wishes_b[0]}",
                                                          "unit": "城管科", "csrf": await page_csrf(client)})
    assert cross.status == 404
    assert wish_row(database, clock.now(), seed.wishes_a[0]).status == "submitted"


async def test_the_flags_page_lists_self_dealing_in_scope(
        dash: Any, bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    client, seed = dash
    live_in(database, clock, RESIDENT, "Xihu")
    make_member(database, clock.now(), MEMBER)
    database.run_sync(lambda uow: setattr(uow.people.by_openid(MEMBER), "phone", "13912345678"), clock.now())
    await bot.send_text(RESIDENT, "许愿 家里水龙头漏水想请人修一下 电话13912345678")
    await bot.send_text(ADMIN, "通过 3")
    await bot.send_text(MEMBER, "认领 3")
    assert wish_row(database, clock.now(), 3).status == "claimed"
    await login(client, ROOT, ROOT_PW)
    page = await (await client.get("/admin/flags")).text()
    assert 'data-kind="self_claim"' in page and 'href="/admin/wishes/3"' in page
    await login(client, ALICE, ALICE_PW)  # Dongfeng only: the flagged wish is in Xihu
    page = await (await client.get("/admin/flags")).text()
    assert 'data-kind="self_claim"' not in page and messages.DASH["no_flags"] in page
