"""The sandbox page in headless Chromium (Debian's package, through Playwright): a wish from
submission to claim, acted by a resident, an admin and a member on one page."""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from bot import messages
from bot.app import create_app
from bot.messages import Keyword
from bot.sandbox import SANDBOX_ADMIN
from bot.sandbox.page import PERSONAS
from storage.db import Database
from storage.models import Wish
from tests.conftest import make_settings
from tests.e2e.conftest import serving

RESIDENT = next(p["openid"] for p in PERSONAS if p["role"] == "resident")
MEMBER = next(p["openid"] for p in PERSONAS if p["role"] == "member")
WISH_TEXT = "家里老人腿脚不便，想请人每周帮忙买一次菜送上楼"
MEMBER_NAME = "王同志"

pytestmark = pytest.mark.browser



@pytest.fixture
async def sandbox_url(sqlite_url: str) -> AsyncIterator[tuple[str, Database]]:
    """The whole bot in sandbox mode with its background sender, on a free loopback port."""
    settings = make_settings(sqlite_url, wechat_token=None, wechat_app_id=None, wechat_aes_key=None,
                             wechat_app_secret=None, sandbox="on", wechat_api_base="https://api.weixin.qq.com")
    database = Database(sqlite_url)
    try:
        async with serving(create_app(settings, database=database)) as base:
            yield base, database
    finally:
        database.close()


class SandboxPage:
    def __init__(self, page: Any) -> None:
        self.page = page

    async def say(self, openid: str, text: str) -> str:
        """Act as `openid`, send `text`, wait for the passive reply and return it."""
        await self.page.click(f'#people li[data-openid="{openid}"]')
        replies = self.page.locator("#chat .msg.reply")
        before = await replies.count()
        await self.page.fill("#text", text)
        await self.page.click("#send")
        await self.page.wait_for_function(
            f'document.querySelectorAll("#chat .msg.reply").length > {before}', timeout=15_000)
        return str(await replies.last.inner_text())


async def test_a_wish_goes_from_resident_to_admin_to_member_on_the_sandbox_page(
        browser: Any, sandbox_url: tuple[str, Database]) -> None:
    base, database = sandbox_url
    page = await browser.new_page()
    await page.goto(f"{base}/sandbox")
    await page.wait_for_selector(f'#people li[data-openid="{RESIDENT}"]')
    assert await page.title() == messages.SANDBOX_LABELS["title"]
    sandbox = SandboxPage(page)

    await sandbox.say(RESIDENT, f"{Keyword.WISH} {WISH_TEXT}")
    wish = database.run_sync(lambda uow: uow.session.query(Wish).order_by(Wish.id.desc()).first(), _now(), False)
    assert wish is not None and wish.status == "submitted"

    reply = await sandbox.say(SANDBOX_ADMIN, f"{Keyword.APPROVE} {wish.id}")
    assert str(wish.id) in reply
    post = page.locator("#claim-feed .post", has_text=f"{Keyword.CLAIM} {wish.id}")
    await post.first.wait_for(timeout=15_000)  # the background sender posted it to the claim channel

    await page.click("#invite-btn")
    await page.wait_for_selector("#invite-out[data-code]")
    code = await page.get_attribute("#invite-out", "data-code")
    await sandbox.say(MEMBER, f"{Keyword.BIND} {code} {MEMBER_NAME}")
    await sandbox.say(MEMBER, f"{Keyword.CLAIM} {wish.id}")

    claimed = database.run_sync(lambda uow: uow.wishes.get(wish.id), _now(), False)
    assert claimed.status == "claimed"
    member = database.run_sync(lambda uow: uow.people.by_openid(MEMBER), _now(), False)
    assert member is not None and claimed.claimer_id == member.id
    # What the bot sent the resident afterwards shows in the resident's chat.
    await page.click(f'#people li[data-openid="{RESIDENT}"]')
    await page.locator("#chat .msg.cs").first.wait_for(timeout=15_000)


def _now() -> Any:
    from bot.clock import SystemClock

    return SystemClock().now()
