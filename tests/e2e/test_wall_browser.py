"""The public wish wall in headless Chromium (Debian's package, through Playwright), on a phone-sized
screen: masked text shown, an opted-out wish and a minor's wish absent, nothing private, no overflow."""

from __future__ import annotations

from typing import Any, AsyncIterator
from urllib.parse import quote

import pytest

from bot import messages
from bot.app import create_app
from bot.clock import SystemClock
from storage.db import Database
from tests.conftest import make_settings
from tests.e2e.conftest import serving
from tests.integration.test_wall import CHILD, HOUSE, ID_NUMBER, MEMBER_NAME, PHONE, SAFETY, WallSeed, seed_wall

PHONE_SCREEN = {"width": 390, "height": 844}

pytestmark = pytest.mark.browser


@pytest.fixture
async def wall_url(sqlite_url: str) -> AsyncIterator[tuple[str, WallSeed]]:
    """The bot with a seeded wall on a free loopback port."""
    settings = make_settings(sqlite_url)
    database = Database(sqlite_url)
    seed = database.run_sync(seed_wall, SystemClock().now())
    try:
        async with serving(create_app(settings, database=database, background=False)) as base:
            yield base, seed
    finally:
        database.close()


async def test_wall_on_a_phone_shows_masked_wishes_and_leaves_out_private_and_minor_ones(
        browser: Any, wall_url: tuple[str, WallSeed]) -> None:
    base, seed = wall_url
    page = await browser.new_page(viewport=PHONE_SCREEN, java_script_enabled=False)
    response = await page.goto(f"{base}/wall/{quote('幸福社区')}")
    assert response is not None and response.status == 200
    assert await page.title() == messages.WALL["title_community"].format(community="幸福社区")
    shown = page.locator(f"#w{seed.shown}")
    assert await shown.is_visible()
    assert "想请人帮忙修一下厨房水龙头[电话]" in await shown.inner_text()
    assert await page.locator(f"#w{seed.claimed}").is_visible()
    for absent in (seed.private, seed.minor, seed.legacy_minor, seed.submitted, seed.other_community):
        assert await page.locator(f"#w{absent}").count() == 0
    text = await page.locator("body").inner_text()
    for secret in (PHONE, ID_NUMBER, HOUSE, SAFETY, MEMBER_NAME, CHILD, messages.MINOR_MASKED):
        assert secret not in text
    assert "2 / 6" in text  # the response rate with its denominator
    width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], "the wall must not scroll sideways on a phone"
    await page.click("text=" + messages.WALL["all"])
    assert page.url.endswith("/wall")
    assert await page.locator(f"#w{seed.other_community}").is_visible()
