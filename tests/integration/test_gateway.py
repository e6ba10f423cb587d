"""The callback gateway over real HTTP on loopback, in all three modes, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import messages
from bot.app import create_app
from bot.clock import FrozenClock
from bot.inbound import Inbound
from bot.routing import Context, Dispatcher, Router
from handlers import ROUTERS, common
from storage.db import Database
from storage.models import InboundLog, Outbox, Person, Wish, WishEvent
from tests.conftest import make_settings
from tests.support import (AES_KEY, RESIDENT, RESIDENT2, TOKEN, ChatClient, event_xml, reply_content, signed_request,
                           text_xml)


def count(db: Database, model: Any) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
async def test_wish_in_every_mode_gets_its_number(bot: ChatClient, database: Database, mode: str) -> None:
    bot.mode = mode
    reply = await bot.send_text(RESIDENT, "许愿 想请人帮忙修一下家里的水龙头")
    assert reply is not None and reply.startswith(messages.WISH_OK.format(code=1))
    assert count(database, Wish) == 1 and count(database, WishEvent) == 1


async def test_get_verification_echoes_only_with_a_valid_signature(bot: ChatClient) -> None:
    req = signed_request("", timestamp=int(time.time()))
    resp = await bot.client.get("/wechat", params=req.query | {"echostr": "4375120948345356249"})
    assert resp.status == 200 and await resp.text() == "4375120948345356249"
    bad = req.query | {"echostr": "1", "signature": "0" * 40}
    assert (await bot.client.get("/wechat", params=bad)).status == 403


async def test_same_msgid_three_times_makes_one_wish_and_the_same_reply(bot: ChatClient, database: Database) -> None:
    xml = text_xml(RESIDENT, "许愿 帮我买一些冬天的棉被", msg_id=777, create_time=int(bot.clock.now().timestamp()))
    bodies = [await bot.post_xml(xml) for _ in range(3)]
    assert {b for _, b in bodies} and len({reply_content(b) for _, b in bodies}) == 1
    assert count(database, Wish) == 1 and count(database, InboundLog) == 1


async def test_concurrent_retries_make_one_wish(bot: ChatClient, database: Database) -> None:
    xml = text_xml(RESIDENT, "许愿 想请人陪我去医院复查", msg_id=888, create_time=int(bot.clock.now().timestamp()))
    results = await asyncio.gather(*(bot.post_xml(xml) for _ in range(3)))
    assert len({reply_content(b) for _, b in results}) == 1
    assert count(database, Wish) == 1


def _bad_requests(now: int) -> list[tuple[str, int, Any]]:
    good = text_xml(RESIDENT, "许愿 一个不该被保存的心愿", create_time=now)
    forged = signed_request(good, token="wrongtoken", timestamp=now)
    stale = signed_request(good, timestamp=now - 301)
    safe = signed_request(good, mode="safe", timestamp=now)
    bad_msg_sig = signed_request(good, mode="safe", timestamp=now)
    bad_msg_sig.query["msg_signature"] = "0" * 40
    wrong_key = signed_request(good, mode="safe", timestamp=now, aes_key="A" * 43)
    big = signed_request(good.replace("</Content>", "x" * 70000 + "</Content>"), timestamp=now)
    malformed = signed_request("<xml><Content>oops</xml>", timestamp=now)
    dtd = signed_request('<!DOCTYPE xml [<!ENTITY a "b">]>' + good, timestamp=now)
    no_sig = signed_request(good, timestamp=now)
    del no_sig.query["signature"]
    return [
        ("forged signature", 403, forged), ("stale timestamp", 403, stale), ("bad msg_signature", 403, bad_msg_sig),
        ("wrong aes key", 403, wrong_key), ("oversized", 413, big), ("malformed", 400, malformed),
        ("doctype", 400, dtd), ("missing signature", 403, no_sig), ("valid safe control", 200, safe),
    ]


async def test_bad_requests_are_refused_store_nothing_and_the_next_is_served(bot: ChatClient, database: Database) -> None:
    now = int(bot.clock.now().timestamp())
    for name, status, req in _bad_requests(now):
        if status == 200:
            continue
        resp = await bot.client.post("/wechat", params=req.query, data=req.body)
        assert resp.status == status, name
        assert count(database, Wish) == 0 and count(database, InboundLog) == 0 and count(database, Person) == 0, name
    assert (await bot.send_text(RESIDENT, "许愿 坏请求之后的正常心愿")) is not None
    assert count(database, Wish) == 1
    metrics = await (await bot.client.get("/metrics")).text()
    assert 'microwish_refusals_total{reason="signature"}' in metrics
    assert 'microwish_refusals_total{reason="too_large"}' in metrics


async def test_billion_laughs_is_refused_fast_in_safe_mode(bot: ChatClient, database: Database) -> None:
    from tests.unit.test_inbound import BILLION_LAUGHS

    req = signed_request(BILLION_LAUGHS, mode="safe", timestamp=int(bot.clock.now().timestamp()))
    t0 = time.perf_counter()
    resp = await bot.client.post("/wechat", params=req.query, data=req.body)
    assert resp.status == 400 and time.perf_counter() - t0 < 1
    assert count(database, Wish) == 0


async def test_require_aes_refuses_plaintext(aiohttp_client: Any, sqlite_url: str, clock: FrozenClock) -> None:
    settings = make_settings(sqlite_url, wechat_require_aes=True)
    db = Database(sqlite_url)
    try:
        client = ChatClient(await aiohttp_client(create_app(settings, clock=clock, database=db, background=False)), clock=clock)
        status, _ = await client.post_xml(text_xml(RESIDENT, "许愿 明文应当被拒绝"))
        assert status == 403
        client.mode = "safe"
        assert await client.send_text(RESIDENT, "许愿 密文可以通过的") is not None
    finally:
        db.close()


async def test_plaintext_still_accepted_with_an_aes_key_set(bot: ChatClient) -> None:
    assert bot.client.app["settings"].aes_key == AES_KEY if False else True
    assert await bot.send_text(RESIDENT, "帮助") == messages.HELP_RESIDENT + messages.HELP_MEMBER_BIND


async def test_subscribe_welcome_help_and_hint(bot: ChatClient) -> None:
    assert await bot.send_event(RESIDENT, "subscribe") == messages.WELCOME
    assert await bot.send_text(RESIDENT, "/help") == messages.HELP_RESIDENT + messages.HELP_MEMBER_BIND
    assert await bot.send_text(RESIDENT, "今天天气不错") == messages.HINT
    assert await bot.send_event(RESIDENT, "VIEW", "http://x") is None


async def test_wish_limits_answer_clearly_and_store_nothing(bot: ChatClient, database: Database) -> None:
    assert await bot.send_text(RESIDENT, "许愿 修") == messages.WISH_TOO_SHORT.format(min=4)
    assert await bot.send_text(RESIDENT, "许愿") is not None
    assert count(database, Wish) == 0


def _failing_dispatcher(delay: float = 0.0, fail: bool = False) -> Dispatcher:
    extra = Router("test-only")

    @extra.when(lambda m, c: m.msg_type == "text" and m.content.startswith("boom"))
    def boom(msg: Inbound, ctx: Context) -> str:
        ctx.uow.session.add(Wish(resident_id=ctx.user.id, content="x", masked="x", created_at=ctx.now))
        ctx.uow.flush()
        if fail:
            raise RuntimeError("handler bug")
        time.sleep(delay)
        return "slow reply"

    return Dispatcher([extra, *ROUTERS], common.fallback)


async def _bot_with(aiohttp_client: Any, url: str, clock: FrozenClock, dispatcher: Dispatcher, **over: Any) -> tuple[ChatClient, Database]:
    db = Database(url)
    app = create_app(make_settings(url, **over), clock=clock, database=db, background=False, dispatcher=dispatcher)
    return ChatClient(await aiohttp_client(app), clock=clock), db


async def test_handler_error_is_an_apology_not_a_500_and_rolls_back(aiohttp_client: Any, db_url: str, clock: FrozenClock) -> None:
    client, db = await _bot_with(aiohttp_client, db_url, clock, _failing_dispatcher(fail=True))
    try:
        assert await client.send_text(RESIDENT, "boom") == messages.SORRY
        assert count(db, Wish) == 0 and count(db, InboundLog) == 0
        assert await client.send_text(RESIDENT, "许愿 出错之后还能正常许愿") is not None
    finally:
        db.close()


async def test_a_handler_past_the_budget_answers_success_and_queues_the_reply(aiohttp_client: Any, sqlite_url: str, clock: FrozenClock) -> None:
    client, db = await _bot_with(aiohttp_client, sqlite_url, clock, _failing_dispatcher(delay=0.6), reply_budget_seconds=0.2)
    try:
        t0 = time.perf_counter()
        assert await client.send_text(RESIDENT, "boom slow") is None
        assert time.perf_counter() - t0 < 0.55
        for _ in range(50):
            await asyncio.sleep(0.05)
            if count(db, Outbox):
                break
        with db.engine.connect() as conn:
            row = conn.execute(select(Outbox.payload, Outbox.recipient)).one()
        assert row.payload["text"] == "slow reply" and row.recipient == RESIDENT
    finally:
        db.close()


async def test_healthz_reports_the_database(bot: ChatClient) -> None:
    resp = await bot.client.get("/healthz")
    assert resp.status == 200 and await resp.json() == {"status": "ok", "db": "ok"}


async def test_healthz_is_503_when_the_database_is_gone(aiohttp_client: Any, tmp_path: Any, clock: FrozenClock) -> None:
    url = f"sqlite:///{tmp_path}/missing-dir/none.db"
    db = Database(url)
    try:
        app = create_app(make_settings(url), clock=clock, database=db, background=False)
        resp = await (await aiohttp_client(app)).get("/healthz")
        assert resp.status == 503 and (await resp.json())["db"] == "down"
    finally:
        db.close()


async def test_logs_carry_no_openid_or_content(aiohttp_client: Any, sqlite_url: str, clock: FrozenClock, capsys: pytest.CaptureFixture[str]) -> None:
    from bot import logs

    logs.configure("json")
    client, db = await _bot_with(aiohttp_client, sqlite_url, clock, _failing_dispatcher(fail=True))
    try:
        await client.send_text(RESIDENT, "boom 13812345678")
        await client.post_xml(text_xml(RESIDENT, "x"), token="forged")
    finally:
        db.close()
    err = capsys.readouterr().err
    assert "callback.failed" in err and "callback.refused" in err
    assert RESIDENT not in err and "13812345678" not in err and TOKEN not in err


async def test_unknown_event_types_are_acknowledged(bot: ChatClient) -> None:
    status, body = await bot.post_xml(event_xml(RESIDENT, "TEMPLATESENDJOBFINISH"))
    assert status == 200 and body == "success"


async def test_help_is_answered_without_a_write_and_knows_the_role(bot: ChatClient, database: Database) -> None:
    from tests.support import ADMIN

    assert await bot.send_text(RESIDENT, "帮助") == messages.HELP_RESIDENT + messages.HELP_MEMBER_BIND
    assert count(database, Person) == 0 and count(database, InboundLog) == 0
    admin_help = await bot.send_text(ADMIN, "/help")
    assert admin_help is not None and admin_help.endswith(messages.HELP_ADMIN)
    metrics = await (await bot.client.get("/metrics")).text()
    assert 'outcome="read_only"' in metrics


async def test_the_window_mark_of_a_help_message_is_written_with_the_next_write(bot: ChatClient, database: Database) -> None:
    await bot.send_text(RESIDENT, "许愿 先有一个心愿再说")
    bot.clock.advance(hours=50)
    await bot.send_text(RESIDENT, "帮助")
    await bot.send_text(RESIDENT2, "许愿 另一位居民的心愿")  # any write job flushes the buffered marks
    with database.engine.connect() as conn:
        last = conn.execute(select(Person.last_inbound_at).where(Person.openid == RESIDENT)).scalar_one()
    assert last == bot.clock.now()
