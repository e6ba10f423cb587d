"""The sandbox: the emulator mounted in the bot, the chat page's API talking to the real /wechat."""

from __future__ import annotations

import re
from typing import Any

from bot import messages
from bot.app import create_app
from bot.clock import FrozenClock
from bot.messages import Keyword
from bot.outbox import deliver_due, endpoints_for
from bot.sandbox import ADMIN_ROBOT_KEY, CLAIM_ROBOT_KEY, SANDBOX, SANDBOX_ADMIN, own_url
from bot.sandbox.page import PERSONAS
from bot.services import notify
from storage.db import Database, UnitOfWork
from storage.models import InviteCode
from tests.conftest import make_settings
from tests.support import ChatClient

RESIDENT = PERSONAS[0]["openid"]
WISH_TEXT = "楼道的灯坏了好几天，晚上下楼看不见，想请人帮忙修一下"


def sandbox_settings(db_url: str) -> Any:
    return make_settings(db_url, wechat_token=None, wechat_app_id=None, wechat_aes_key=None, wechat_app_secret=None,
                         sandbox="on", wechat_api_base="https://api.weixin.qq.com")


async def test_sandbox_page_talks_to_the_real_callback_and_shows_what_the_bot_sent(
        db_url: str, database: Database, aiohttp_client: Any, clock: FrozenClock) -> None:
    settings = sandbox_settings(db_url)
    app = create_app(settings, clock=clock, database=database, background=False)
    client = await aiohttp_client(app)
    page = await client.get("/sandbox")
    assert page.status == 200 and "sandbox.js" in await page.text()
    config = await (await client.get("/sandbox/api/config")).json()
    assert {p["role"] for p in config["personas"]} == {"resident", "member", "admin"}
    assert config["robots"] == {"claim": CLAIM_ROBOT_KEY, "admin": ADMIN_ROBOT_KEY}

    said = await (await client.post("/sandbox/api/say", json={"openid": RESIDENT, "text": f"{Keyword.WISH} {WISH_TEXT}"})).json()
    assert said["status"] == 200 and said["reply"]
    code = re.search(r"\d+", said["reply"])
    assert code is not None  # the passive reply names the wish's number

    def queue(uow: UnitOfWork) -> None:
        notify.to_person(uow, uow.people.by_openid(RESIDENT), "notice from the bot", dedupe_key="sandbox-test")
        notify.to_claim_channel(uow, "a post for the members", dedupe_key="sandbox-post")

    await database.write(queue, now=clock.now())
    assert own_url(app) == str(client.make_url("")).rstrip("/")
    endpoints = endpoints_for(settings, sandbox_url=own_url(app))
    assert endpoints.api_base.endswith("/sandbox/wx")
    assert await deliver_due(database, settings, clock.now(), endpoints=endpoints) >= 2

    feed = (await (await client.get("/sandbox/api/feed?since=0")).json())["items"]
    says = [i for i in feed if i["type"] == "say"]
    assert says[0]["openid"] == RESIDENT and says[0]["reply"] == said["reply"]
    assert {"type": "cs", "openid": RESIDENT, "text": "notice from the bot"}.items() <= next(
        i for i in feed if i["type"] == "cs" and i["text"] == "notice from the bot").items()
    assert any(i["type"] == "robot" and i["robot"] == CLAIM_ROBOT_KEY and i["text"] == "a post for the members" for i in feed)
    later = (await (await client.get(f"/sandbox/api/feed?since={feed[-1]['seq']}")).json())["items"]
    assert later == []
    # The emulator really enforces the rules: a person who never wrote cannot get a customer-service message.
    emulator = app[SANDBOX].emulator
    assert emulator.texts_to(RESIDENT) and emulator.windows.get(PERSONAS[1]["openid"]) is None


async def test_sandbox_admin_persona_is_an_admin_and_invites_bind_members(
        db_url: str, database: Database, aiohttp_client: Any, clock: FrozenClock) -> None:
    settings = sandbox_settings(db_url)
    client = await aiohttp_client(create_app(settings, clock=clock, database=database, background=False))
    said = await (await client.post("/sandbox/api/say", json={"openid": SANDBOX_ADMIN, "text": Keyword.HELP.value})).json()
    assert messages.HELP_ADMIN in said["reply"]  # the admin persona is an admin from the start
    code = (await (await client.post("/sandbox/api/invite")).json())["code"]
    invite = database.run_sync(lambda uow: uow.session.get(InviteCode, code), clock.now(), False)
    assert invite is not None and invite.used_by is None
    bad = await client.post("/sandbox/api/say", json={"openid": "", "text": "x"})
    assert bad.status == 400


async def test_sandbox_is_not_there_outside_sandbox_mode(bot: ChatClient) -> None:
    for path in ("/sandbox", "/sandbox/api/config", "/sandbox/wx/cgi-bin/stable_token"):
        resp = await bot.client.get(path)
        assert resp.status == 404, path


async def test_the_background_sender_of_serve_delivers_to_the_mounted_emulator(
        db_url: str, database: Database, aiohttp_client: Any, clock: FrozenClock) -> None:
    import asyncio

    from bot.appkeys import OUTBOX_WAKE

    app = create_app(sandbox_settings(db_url), clock=clock, database=database)  # with run_outbox_sender
    client = await aiohttp_client(app)
    await client.get("/sandbox/api/config")  # the page's first request tells the sandbox its own address

    def queue(uow: UnitOfWork) -> None:
        notify.to_claim_channel(uow, "posted by serve", dedupe_key="serve-post")

    await database.write(queue, now=clock.now())
    app[OUTBOX_WAKE].set()
    for i in range(200):
        posts = app[SANDBOX].emulator.webhook_posts(CLAIM_ROBOT_KEY)
        if posts:
            break
        if i % 20 == 19:  # a pass that began before the page's request aimed at the default port: its retry
            clock.advance(seconds=30)
            app[OUTBOX_WAKE].set()
        await asyncio.sleep(0.05)
    assert [p["markdown"]["content"] for p in posts] == ["posted by serve"]
