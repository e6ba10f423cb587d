"""Admins listen to a voice wish: the dashboard fetches WeChat's temporary media (emulated over HTTP)."""

from __future__ import annotations

from typing import Any

from bot import messages
from bot.app import create_app
from bot.clock import FrozenClock
from storage.db import Database
from tests.admin_support import ALICE, ALICE_PW, ROOT, ROOT_PW, add_wish, login, seed_basics
from tests.conftest import make_settings
from tests.emulator import running_emulator

VOICE = b"#!AMR\n" + bytes(range(200))


async def test_an_admin_downloads_the_voice_and_scope_and_expiry_are_honoured(
        aiohttp_client: Any, db_url: str, clock: FrozenClock, database: Database) -> None:
    async with running_emulator(clock) as emulator:
        emulator.media["voice-media-1"] = VOICE

        def seed(uow: Any) -> tuple[int, int, int]:
            s = seed_basics(uow)
            heard = add_wish(uow, s, community=s.community_b, voice_media_id="voice-media-1", source="voice").id or 0
            expired = add_wish(uow, s, community=s.community_b, voice_media_id="voice-gone", source="voice").id or 0
            return heard, expired, s.wishes_b[0]

        heard, expired, typed = database.run_sync(seed, clock.now())
        settings = make_settings(db_url, wechat_api_base=emulator.base_url)
        client = await aiohttp_client(create_app(settings, clock=clock, database=database, background=False))
        await login(client, ROOT, ROOT_PW)
        page = await (await client.get(f"/admin/wishes/{heard}")).text()
        assert f'href="/admin/voice/{heard}"' in page
        resp = await client.get(f"/admin/voice/{heard}")
        assert resp.status == 200 and await resp.read() == VOICE
        assert "attachment" in resp.headers["Content-Disposition"]
        gone = await client.get(f"/admin/voice/{expired}")
        assert gone.status == 502 and await gone.text() == messages.DASH["voice_unavailable"]
        assert (await client.get(f"/admin/voice/{typed}")).status == 404  # not a voice wish
        fetched = [r for r in emulator.requests if r.path == "media/get"]
        assert [r.query["media_id"] for r in fetched] == ["voice-media-1", "voice-gone"]

        await client.post("/admin/logout", data={})
        client.session.cookie_jar.clear()
        await login(client, ALICE, ALICE_PW)  # an admin of the other community
        assert (await client.get(f"/admin/voice/{heard}")).status == 404
