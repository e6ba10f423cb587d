"""The dashboard in headless Chromium (Debian's package, driven by Playwright) against a real TCP server."""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from bot import messages
from bot.app import create_app
from bot.clock import FrozenClock
from bot.config import Settings
from storage.db import Database
from storage.models import Outbox
from tests.admin_support import ALICE, ALICE_PW, ROOT, ROOT_PW, Seed, add_wish, seed_basics

pytestmark = pytest.mark.browser


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """SQLite only: these tests are about the pages; both backends run in tests/integration/test_admin_web.py."""
    return sqlite_url


@pytest.fixture
async def site(aiohttp_server: Any, settings: Settings, clock: FrozenClock, database: Database) -> AsyncIterator[tuple[str, Seed]]:
    def job(uow: Any) -> Seed:
        seed = seed_basics(uow)
        seed.wishes_a.append(add_wish(uow, seed, community=seed.community_a, status="published").id or 0)
        return seed

    seed = database.run_sync(job, clock.now())
    server = await aiohttp_server(create_app(settings, clock=clock, database=database, background=False), host="127.0.0.1")
    yield str(server.make_url("")).rstrip("/"), seed


async def log_in(page: Any, base: str, username: str, password: str) -> None:
    await page.goto(f"{base}/admin/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/admin")


async def test_admin_logs_in_filters_approves_and_sees_the_timeline(
        browser: Any, site: tuple[str, Seed], clock: FrozenClock, database: Database) -> None:
    base, seed = site
    page = await (await browser.new_context()).new_page()
    await log_in(page, base, ROOT, ROOT_PW)
    assert await page.locator("#rate-response").count() == 1

    await page.goto(f"{base}/admin/wishes")
    assert await page.locator("tr[data-wish]").count() == 3
    await page.select_option("select[name=state]", "submitted")
    await page.click("#apply-filter")
    await page.wait_for_url("**state=submitted**")
    shown = await page.locator("tr[data-wish]").evaluate_all("rows => rows.map(r => Number(r.dataset.wish))")
    assert shown == sorted([seed.wishes_a[0], seed.wishes_b[0]], reverse=True)

    await page.click(f"a[href='/admin/wishes/{seed.wishes_a[0]}']")
    await page.select_option("#form-approve select[name=tier]", "personal")
    await page.click("#form-approve button[type=submit]")
    await page.wait_for_url("**done=1")
    assert await page.text_content("#status") == messages.STATUS_NAMES["published"]
    assert await page.locator("#timeline tr[data-action=approve]").count() == 1
    wish = database.run_sync(lambda uow: uow.wishes.get(seed.wishes_a[0]), clock.now())
    assert wish.status == "published"


async def test_a_post_without_the_csrf_token_is_refused_in_the_browser(
        browser: Any, site: tuple[str, Seed], clock: FrozenClock, database: Database) -> None:
    base, seed = site
    context = await browser.new_context()
    page = await context.new_page()
    await log_in(page, base, ROOT, ROOT_PW)
    forged = await context.request.post(f"{base}/admin/outbox/{seed.dead_outbox}/retry", form={"x": "1"})
    assert forged.status == 403
    await page.goto(f"{base}/admin/wishes/{seed.wishes_a[0]}")
    await page.evaluate("document.querySelector('#form-reject input[name=csrf]').remove()")
    await page.fill("#form-reject input[name=reason]", "no")
    async with page.expect_response(f"{base}/admin/wishes/{seed.wishes_a[0]}/reject") as info:
        await page.click("#form-reject button[type=submit]")
    assert (await info.value).status == 403
    row = database.run_sync(lambda uow: uow.session.get(Outbox, seed.dead_outbox), clock.now())
    wish = database.run_sync(lambda uow: uow.wishes.get(seed.wishes_a[0]), clock.now())
    assert row.state == "dead" and wish.status == "submitted"


async def test_a_community_admin_cannot_open_another_communitys_wish(browser: Any, site: tuple[str, Seed]) -> None:
    base, seed = site
    page = await (await browser.new_context()).new_page()
    await log_in(page, base, ALICE, ALICE_PW)
    await page.goto(f"{base}/admin/wishes")
    shown = await page.locator("tr[data-wish]").evaluate_all("rows => rows.map(r => Number(r.dataset.wish))")
    assert seed.wishes_b[0] not in shown and seed.wishes_a[0] in shown
    response = await page.goto(f"{base}/admin/wishes/{seed.wishes_b[0]}")
    assert response.status == 404
    mine = await page.goto(f"{base}/admin/wishes/{seed.wishes_a[0]}")
    assert mine.status == 200
