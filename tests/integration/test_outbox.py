"""The outbox dispatcher against the WeChat/WeCom emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, AsyncIterator

import aiohttp
import pytest

from bot.clock import FrozenClock
from bot.config import Settings
from bot.metrics import Metrics
from bot.outbox import LEASE, deliver_due, fill_template
from bot.services import notify
from bot.wechat_api import WeChatAPI
from storage.db import Database, UnitOfWork
from storage.models import Outbox, Person
from tests.conftest import make_settings
from tests.emulator import EmulatorState, running_emulator
from tests.support import RESIDENT, RESIDENT2

CLAIM_KEY = "claim-robot"
TEMPLATES = {"progress": {"id": "TPL-PROGRESS", "fields": {"thing1": "wish {code} now {status}", "thing2": "{title}"}}}


@pytest.fixture
async def emulator(clock: FrozenClock) -> AsyncIterator[EmulatorState]:
    async with running_emulator(clock) as state:
        yield state


def outbox_settings(db_url: str, emulator: EmulatorState, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(wechat_api_base=emulator.base_url,
                                  claim_webhook=f"{emulator.base_url}/cgi-bin/webhook/send?key={CLAIM_KEY}")
    values.update(overrides)
    return make_settings(db_url, **values)


def user_writes(database: Database, emulator: EmulatorState, openid: str, clock: FrozenClock) -> None:
    """The user sends a message: the bot notes it (gateway) and WeChat opens the window."""
    def job(uow: UnitOfWork) -> None:
        uow.people.note_inbound(uow.people.ensure(openid, now=uow.now), uow.now)

    database.run_sync(job, clock.now())
    emulator.user_sent(openid, clock.now())


def queue_texts(database: Database, clock: FrozenClock, openid: str, texts: list[str], *, kind: str = "notice",
                template: dict[str, Any] | None = None) -> None:
    def job(uow: UnitOfWork) -> None:
        person = uow.people.ensure(openid, now=uow.now)
        for i, text in enumerate(texts):
            notify.to_person(uow, person, text, kind=kind, dedupe_key=f"t:{openid}:{text}:{i}", template=template)

    database.run_sync(job, clock.now())


def queue_posts(database: Database, clock: FrozenClock, contents: list[str]) -> None:
    def job(uow: UnitOfWork) -> None:
        for text in contents:
            notify.to_claim_channel(uow, text, dedupe_key=f"post:{text}")

    database.run_sync(job, clock.now())


def rows(database: Database, clock: FrozenClock) -> list[Outbox]:
    return database.run_sync(lambda uow: list(uow.session.query(Outbox).order_by(Outbox.id)), clock.now(), False)


def person(database: Database, clock: FrozenClock, openid: str) -> Person:
    found = database.run_sync(lambda uow: uow.people.by_openid(openid), clock.now(), False)
    assert found is not None
    return found


async def test_outage_then_recovery_delivers_each_message_once(db_url: str, clock: FrozenClock, emulator: EmulatorState) -> None:
    settings = outbox_settings(db_url, emulator)
    database = Database(db_url)
    metrics = Metrics()
    try:
        user_writes(database, emulator, RESIDENT, clock)
        texts = ["first notice", "second notice", "third notice"]
        posts = ["post one", "post two"]
        queue_texts(database, clock, RESIDENT, texts)
        queue_posts(database, clock, posts)
        emulator.fail_next("message/custom/send", status=503, times=4)
        emulator.fail_next("message/custom/send", errcode=-1, times=2)
        emulator.fail_next("webhook/send", status=502, times=3)

        delivered = await deliver_due(database, settings, clock.now(), metrics=metrics)
        assert delivered < len(texts) + len(posts)
        assert any(r.last_error for r in rows(database, clock))
        for _ in range(12):  # the outage ends; backoff spreads the retries over the next hours
            clock.advance(minutes=30)
            delivered += await deliver_due(database, settings, clock.now(), metrics=metrics)

        assert delivered == len(texts) + len(posts)
        assert emulator.texts_to(RESIDENT) == texts
        assert sorted(p["markdown"]["content"] for p in emulator.webhook_posts(CLAIM_KEY)) == posts
        assert {r.state for r in rows(database, clock)} == {"sent"}
        assert person(database, clock, RESIDENT).window_sent == 3  # only messages that went out count
        assert metrics.outbox_sent.labels("cs")._value.get() == 3
        assert metrics.outbox_failed.labels("cs", "transport")._value.get() == 4
    finally:
        database.close()


async def test_a_message_that_keeps_failing_is_parked_as_dead(db_url: str, clock: FrozenClock, emulator: EmulatorState) -> None:
    settings = outbox_settings(db_url, emulator, outbox_max_attempts=3)
    database = Database(db_url)
    try:
        queue_posts(database, clock, ["never gets through"])
        emulator.fail_next("webhook/send", status=500, times=10)
        for _ in range(5):
            await deliver_due(database, settings, clock.now())
            clock.advance(hours=2)
        (row,) = rows(database, clock)
        assert row.state == "dead" and row.attempts == 3
        assert "HTTP 500" in (row.last_error or "")
        assert len(emulator.calls("webhook/send")) == 3
    finally:
        database.close()


async def test_45015_switches_to_the_kinds_template(db_url: str, clock: FrozenClock, emulator: EmulatorState) -> None:
    settings = outbox_settings(db_url, emulator, templates=TEMPLATES)
    database = Database(db_url)
    try:
        # The bot believes the window is open, but WeChat says it is not (the user unfollowed and came back…).
        database.run_sync(lambda uow: uow.people.note_inbound(uow.people.ensure(RESIDENT, now=uow.now), uow.now), clock.now())
        values = {"code": "12", "status": "claimed by a member", "title": "a very long title\nthat goes on and on"}
        queue_texts(database, clock, RESIDENT, ["wish 12 was claimed"], kind="progress", template=values)

        assert await deliver_due(database, settings, clock.now()) == 1

        assert [r.answer["errcode"] for r in emulator.calls("message/custom/send")] == [45015]
        (sent,) = emulator.templates_to(RESIDENT)
        assert sent["template_id"] == "TPL-PROGRESS"
        assert sent["data"] == {"thing1": {"value": "wish 12 now claimed"}, "thing2": {"value": "a very long title th"}}
        assert sent["client_msg_id"].startswith("mw-outbox-")
        (row,) = rows(database, clock)
        assert row.state == "sent" and row.channel == "template"
        assert person(database, clock, RESIDENT).window_sent == 5  # no more customer-service tries in this window
    finally:
        database.close()


def test_template_fields_fit_wechats_rules() -> None:
    out = fill_template({"a": "{code}: {title}", "b": "{missing}x", "c": "line\none"}, {"code": 7, "title": "x" * 40})
    assert out == {"a": "7: " + "x" * 17, "b": "x", "c": "line one"}
    assert all(len(v) <= 20 and "\n" not in v for v in out.values())


async def test_sixth_message_in_a_window_uses_the_template_before_wechat_refuses(
        db_url: str, clock: FrozenClock, emulator: EmulatorState) -> None:
    settings = outbox_settings(db_url, emulator, templates=TEMPLATES)
    database = Database(db_url)
    try:
        user_writes(database, emulator, RESIDENT, clock)
        texts = [f"update {i}" for i in range(7)]
        queue_texts(database, clock, RESIDENT, texts, kind="progress", template={"code": "3", "status": "s"})
        assert await deliver_due(database, settings, clock.now()) == 7
        assert emulator.texts_to(RESIDENT) == texts[:5]
        assert len(emulator.templates_to(RESIDENT)) == 2
        assert all(r.ok for r in emulator.requests)  # never a 45015 / 45047
    finally:
        database.close()


async def test_without_a_template_the_message_waits_for_the_users_next_message(
        db_url: str, clock: FrozenClock, emulator: EmulatorState) -> None:
    settings = outbox_settings(db_url, emulator)
    database = Database(db_url)
    try:
        user_writes(database, emulator, RESIDENT, clock)
        clock.advance(hours=49)  # the window has closed
        queue_texts(database, clock, RESIDENT, ["your wish was claimed"])
        assert await deliver_due(database, settings, clock.now()) == 0
        assert [r.state for r in rows(database, clock)] == ["waiting"]
        assert emulator.calls("message/custom/send") == []  # no refusal provoked

        clock.advance(days=3)
        assert await deliver_due(database, settings, clock.now()) == 0  # still waiting
        clock.advance(minutes=1)
        user_writes(database, emulator, RESIDENT, clock)
        assert await deliver_due(database, settings, clock.now()) == 1
        assert emulator.texts_to(RESIDENT) == ["your wish was claimed"]
    finally:
        database.close()


async def test_40001_refreshes_the_token_once(db_url: str, clock: FrozenClock, emulator: EmulatorState) -> None:
    settings = outbox_settings(db_url, emulator)
    database = Database(db_url)
    try:
        user_writes(database, emulator, RESIDENT, clock)
        queue_texts(database, clock, RESIDENT, ["one", "two"])
        assert await deliver_due(database, settings, clock.now()) == 2
        assert len(emulator.calls("stable_token")) == 1  # fetched once, not per message

        emulator.revoke_tokens()  # e.g. another tool fetched a token and ours is no longer the latest
        queue_texts(database, clock, RESIDENT, ["three", "four"])
        assert await deliver_due(database, settings, clock.now()) == 2

        token_calls = emulator.calls("stable_token")
        assert len(token_calls) == 2 and token_calls[1].body["force_refresh"] is True
        assert [r.answer["errcode"] for r in emulator.calls("message/custom/send")] == [0, 0, 40001, 0, 0]
        assert emulator.texts_to(RESIDENT) == ["one", "two", "three", "four"]
    finally:
        database.close()


async def test_two_processes_share_one_token_fetch(db_url: str, clock: FrozenClock, emulator: EmulatorState) -> None:
    settings = outbox_settings(db_url, emulator)
    first, second = Database(db_url), Database(db_url)
    try:
        async with aiohttp.ClientSession() as session:
            apis = [WeChatAPI(settings, db, session) for db in (first, second, first, second)]
            tokens = await asyncio.gather(*(api.access_token(clock.now()) for api in apis))
        assert len(set(tokens)) == 1
        assert len(emulator.calls("stable_token")) == 1
        clock.advance(seconds=7200 - 200)  # within 5 minutes of expiry: refreshed ahead of time
        async with aiohttp.ClientSession() as session:
            await WeChatAPI(settings, second, session).access_token(clock.now())
        assert len(emulator.calls("stable_token")) == 2
    finally:
        first.close()
        second.close()


async def test_pacing_holds_the_wecom_limit_across_a_burst(db_url: str, clock: FrozenClock) -> None:
    async with running_emulator(clock, webhook_per_minute=3) as emulator:
        settings = outbox_settings(db_url, emulator, webhook_per_minute=3)
        database = Database(db_url)
        try:
            posts = [f"burst {i}" for i in range(8)]
            queue_posts(database, clock, posts)
            delivered = 0
            for _ in range(40):
                delivered += await deliver_due(database, settings, clock.now())
                if delivered == len(posts):
                    break
                clock.advance(seconds=7)
            assert [p["markdown"]["content"] for p in emulator.webhook_posts(CLAIM_KEY)] == posts
            assert all(r.ok for r in emulator.calls("webhook/send"))  # never a 45009
            times = [r.at for r in emulator.calls("webhook/send")]
            for t in times:
                assert sum(1 for u in times if t - timedelta(minutes=1) < u <= t) <= 3
            assert times[-1] - times[0] >= timedelta(minutes=2)  # 8 posts at 3 a minute
        finally:
            database.close()


async def test_a_dispatcher_stopped_mid_batch_loses_nothing(db_url: str, clock: FrozenClock, emulator: EmulatorState) -> None:
    settings = outbox_settings(db_url, emulator)
    database = Database(db_url)
    try:
        for openid in (RESIDENT, RESIDENT2):
            user_writes(database, emulator, openid, clock)
        texts = [f"news {i}" for i in range(4)]
        queue_texts(database, clock, RESIDENT, texts)
        queue_texts(database, clock, RESIDENT2, ["other"])
        emulator.fail_next("message/custom/send", delay=0, to=RESIDENT)  # (the other user's lane runs alongside)
        emulator.fail_next("message/custom/send", delay=0.5, to=RESIDENT)  # WeChat is slow on the second message…

        task = asyncio.create_task(deliver_due(database, settings, clock.now()))
        for _ in range(200):
            if emulator.in_flight:
                break
            await asyncio.sleep(0.01)
        assert emulator.in_flight == 1
        task.cancel()  # …and the process stops while the request is out
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.8)  # WeChat did deliver it; we never heard back
        assert emulator.texts_to(RESIDENT) == texts[:2]

        assert await deliver_due(database, settings, clock.now()) == 0  # still leased by the dead pass
        clock.advance(LEASE + timedelta(seconds=1))
        assert await deliver_due(database, settings, clock.now()) == 4

        got = emulator.texts_to(RESIDENT)
        assert sorted(set(got)) == texts and len(got) == 5  # nothing lost; the in-flight one sent twice at worst
        assert got.count("news 1") == 2
        assert emulator.texts_to(RESIDENT2) == ["other"]
        assert {r.state for r in rows(database, clock)} == {"sent"}
    finally:
        database.close()


async def test_two_dispatchers_on_postgresql_never_both_send_a_row(db_url: str, clock: FrozenClock) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("row locks between processes are a PostgreSQL matter (SQLite has one writer)")
    async with running_emulator(clock, webhook_per_minute=10_000) as emulator:
        settings = outbox_settings(db_url, emulator, webhook_per_minute=10_000)
        first, second = Database(db_url), Database(db_url)
        try:
            posts = [f"row {i}" for i in range(150)]
            queue_posts(first, clock, posts)
            counts = await asyncio.gather(*(deliver_due(db, settings, clock.now()) for db in (first, second, first, second)))
            assert sum(counts) == len(posts)
            sent = [p["markdown"]["content"] for p in emulator.webhook_posts(CLAIM_KEY)]
            assert sorted(sent) == sorted(posts)  # each exactly once
            assert {r.state for r in rows(first, clock)} == {"sent"}
        finally:
            first.close()
            second.close()


async def test_menu_push_creates_the_interfaces_menu(db_url: str, clock: FrozenClock, emulator: EmulatorState) -> None:
    from bot.cli_outbox import menu_definition, push_menu

    settings = outbox_settings(db_url, emulator)
    answer = await push_menu(settings)
    assert answer["errcode"] == 0
    assert emulator.menu == menu_definition()
    top = emulator.menu["button"]
    assert [b.get("key") for b in top[:2]] == ["WISH_NEW", "WISH_MINE"]
    assert [b["key"] for b in top[2]["sub_button"]] == ["HALL", "CLAIMS_MINE", "HELP"]


async def test_media_upload_needs_a_real_file_name(db_url: str, clock: FrozenClock, emulator: EmulatorState) -> None:
    from bot.wechat_api import WeChatError

    settings = outbox_settings(db_url, emulator)
    database = Database(db_url)
    try:
        async with aiohttp.ClientSession() as session:
            api = WeChatAPI(settings, database, session)
            media_id = await api.upload_media("chart.png", b"\x89PNG fake", "image/png", clock.now())
            assert emulator.media[media_id] == b"\x89PNG fake"
            with pytest.raises(WeChatError) as refused:
                await api.upload_media("media", b"bytes", "image/png", clock.now())
            assert refused.value.errcode == 40005  # wechatpy #414: no extension, no upload
    finally:
        database.close()


async def test_chart_images_reach_the_admins_robot(db_url: str, clock: FrozenClock, emulator: EmulatorState) -> None:
    import base64
    import hashlib

    settings = outbox_settings(db_url, emulator, admin_webhook=f"{emulator.base_url}/cgi-bin/webhook/send?key=admins")
    database = Database(db_url)
    try:
        image = b"\x89PNG chart bytes"
        payload = {"msgtype": "image", "base64": base64.b64encode(image).decode(), "md5": hashlib.md5(image).hexdigest()}
        database.run_sync(lambda uow: uow.outbox.add(channel=notify.ADMIN_CHANNEL, kind="digest", payload=payload,
                                                     now=uow.now), clock.now())
        assert await deliver_due(database, settings, clock.now()) == 1
        (post,) = emulator.webhook_posts("admins")
        assert post == {"msgtype": "image", "image": {"base64": payload["base64"], "md5": payload["md5"]}}
    finally:
        database.close()


async def test_posts_for_a_robot_that_is_not_configured_are_skipped_not_failed(
        db_url: str, clock: FrozenClock, emulator: EmulatorState) -> None:
    settings = outbox_settings(db_url, emulator, claim_webhook=None)
    database = Database(db_url)
    try:
        queue_posts(database, clock, ["nobody listens"])
        assert await deliver_due(database, settings, clock.now()) == 0
        (row,) = rows(database, clock)
        assert row.state == "skipped" and emulator.requests == []
    finally:
        database.close()
