"""The dashboard over real HTTP: login, lockout, CSRF, scoping, filters, paging, dead letters."""

from __future__ import annotations

import importlib.util
import re
from datetime import timedelta
from typing import Any, AsyncIterator

import pytest
from sqlalchemy import select

from bot import messages
from bot.app import create_app
from bot.auth import COOKIE_NAME
from bot.clock import FrozenClock
from bot.config import Settings
from storage.db import Database
from storage.models import AdminUser, Outbox
from tests.admin_support import ALICE, ALICE_PW, ROOT, ROOT_PW, Seed, add_wish, login, page_csrf, seed_basics

HAS_REGISTRATION = importlib.util.find_spec("bot.services.registration") is not None


@pytest.fixture
async def dash(aiohttp_client: Any, settings: Settings, clock: FrozenClock, database: Database) -> AsyncIterator[tuple[Any, Seed]]:
    seed = database.run_sync(seed_basics, clock.now())
    client = await aiohttp_client(create_app(settings, clock=clock, database=database, background=False))
    yield client, seed


def wish_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'data-wish="(\d+)"', html)]


async def test_login_sets_a_signed_httponly_lax_cookie_and_logout_ends_the_session(dash: Any) -> None:
    client, _ = dash
    first = await client.get("/admin", allow_redirects=False)
    assert first.status == 303 and first.headers["Location"] == "/admin/login"
    resp = await login(client, ROOT, ROOT_PW)
    assert resp.status == 303 and resp.headers["Location"] == "/admin"
    cookie = resp.cookies[COOKIE_NAME]
    assert cookie["httponly"] is True and cookie["samesite"] == "Lax" and cookie["path"] == "/admin"
    page = await client.get("/admin")
    assert page.status == 200 and messages.DASH["rate_response"] in await page.text()
    out = await client.post("/admin/logout", data={"csrf": await page_csrf(client)}, allow_redirects=False)
    assert out.status == 303
    assert (await client.get("/admin", allow_redirects=False)).status == 303


async def test_a_tampered_cookie_is_no_session(dash: Any) -> None:
    client, _ = dash
    await login(client, ROOT, ROOT_PW)
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({COOKIE_NAME: "eyJhIjoxfQ.forged.signature"})
    assert (await client.get("/admin", allow_redirects=False)).status == 303


async def test_a_wrong_password_is_refused_and_repeated_failures_lock_the_account(
        dash: Any, settings: Settings, clock: FrozenClock, database: Database) -> None:
    client, _ = dash
    resp = await login(client, ROOT, "wrong")
    assert resp.status == 401 and messages.DASH["login_failed"] in await resp.text()
    for _ in range(settings.admin_max_failures - 1):
        resp = await login(client, ROOT, "wrong")
    assert messages.DASH["login_locked"].format(minutes=settings.admin_lock_minutes) in await resp.text()
    resp = await login(client, ROOT, ROOT_PW)  # the right password, but locked
    assert resp.status == 401
    user = database.run_sync(lambda uow: uow.session.execute(select(AdminUser).where(AdminUser.username == ROOT)).scalar_one(), clock.now())
    assert user.locked_until is not None and user.locked_until > clock.now()
    clock.advance(minutes=settings.admin_lock_minutes + 1)
    assert (await login(client, ROOT, ROOT_PW)).status == 303


async def test_posts_without_or_with_a_wrong_csrf_token_are_refused_and_change_nothing(
        dash: Any, clock: FrozenClock, database: Database) -> None:
    client, seed = dash
    await client.get("/admin/login")
    no_token = await client.post("/admin/login", data={"username": ROOT, "password": ROOT_PW}, allow_redirects=False)
    assert no_token.status == 403
    await login(client, ROOT, ROOT_PW)
    url = f"/admin/outbox/{seed.dead_outbox}/retry"
    assert (await client.post(url, data={})).status == 403
    assert (await client.post(url, data={"csrf": "not-the-token"})).status == 403
    row = database.run_sync(lambda uow: uow.session.get(Outbox, seed.dead_outbox), clock.now())
    assert row.state == "dead" and row.attempts == 8


async def test_a_community_admin_sees_only_their_community(dash: Any) -> None:
    client, seed = dash
    await login(client, ALICE, ALICE_PW)
    table = await (await client.get("/admin/wishes")).text()
    assert wish_ids(table) == seed.wishes_a
    mine = await client.get(f"/admin/wishes/{seed.wishes_a[0]}")
    assert mine.status == 200
    assert (await client.get(f"/admin/wishes/{seed.wishes_b[0]}")).status == 404
    forced = await client.get(f"/admin/wishes?community={seed.community_b}")
    assert wish_ids(await forced.text()) == []
    assert (await client.get("/admin/outbox")).status == 404  # messages are not scoped: whole-site admins only
    csrf = await page_csrf(client)
    acted = await client.post(f"/admin/wishes/{seed.wishes_b[0]}/reject", data={"csrf": csrf, "reason": "x"})
    assert acted.status == 404


async def test_the_table_masks_residents_and_the_wish_page_shows_them_in_scope(dash: Any) -> None:
    client, seed = dash
    await login(client, ROOT, ROOT_PW)
    table = await (await client.get("/admin/wishes")).text()
    assert "Wang Fang" not in table and "13812345678" not in table and messages.MASK_PHONE in table
    page = await (await client.get(f"/admin/wishes/{seed.wishes_a[0]}")).text()
    assert "Wang Fang" in page and "13812345678" in page


async def test_filters_and_keyset_paging_return_the_right_rows(dash: Any, clock: FrozenClock, database: Database) -> None:
    client, seed = dash

    def more(uow: Any) -> dict[str, list[int]]:
        ids: dict[str, list[int]] = {"published": [], "claimed_branch": [], "overdue": [], "phone": [], "legacy": []}
        for _ in range(110):
            ids["published"].append(add_wish(uow, seed, community=seed.community_a, status="published", category="repair").id)
        for _ in range(3):
            ids["claimed_branch"].append(add_wish(uow, seed, community=seed.community_a, status="claimed",
                                                  claim_branch=seed.branch_a, due_at=uow.now + timedelta(days=3)).id)
        ids["overdue"].append(add_wish(uow, seed, community=seed.community_b, status="claimed",
                                       due_at=uow.now - timedelta(hours=1)).id)
        ids["phone"].append(add_wish(uow, seed, community=seed.community_a, status="fulfilled",
                                     phone_visit_since=uow.now).id)
        ids["legacy"].append(add_wish(uow, seed, community=seed.community_b, tier="legacy", status="assigned").id)
        return ids

    ids = database.run_sync(more, clock.now())
    await login(client, ROOT, ROOT_PW)

    seen: list[int] = []
    url = "/admin/wishes?state=published&category=repair"
    while url:
        html = await (await client.get(url)).text()
        page = wish_ids(html)
        assert len(page) <= 50
        seen += page
        m = re.search(r'href="([^"]+)" id="next-page"', html)
        url = m.group(1).replace("&amp;", "&") if m else ""
        assert "offset" not in url
    assert seen == sorted(ids["published"], reverse=True)

    async def shown(query: str) -> list[int]:
        return wish_ids(await (await client.get("/admin/wishes?" + query)).text())

    assert await shown(f"branch={seed.branch_a}") == sorted(ids["claimed_branch"], reverse=True)
    assert await shown("overdue=1") == ids["overdue"]
    assert await shown("phone_visit=1") == ids["phone"]
    assert await shown("tier=legacy") == ids["legacy"]
    assert set(await shown(f"community={seed.community_b}")) == {*seed.wishes_b, *ids["overdue"], *ids["legacy"]}


async def test_the_retry_button_rearms_a_dead_message(dash: Any, clock: FrozenClock, database: Database) -> None:
    client, seed = dash
    await login(client, ROOT, ROOT_PW)
    listing = await (await client.get("/admin/outbox")).text()
    assert f'data-outbox="{seed.dead_outbox}"' in listing
    clock.advance(hours=2)
    resp = await client.post(f"/admin/outbox/{seed.dead_outbox}/retry", data={"csrf": await page_csrf(client)})
    assert resp.status == 200 and messages.DASH["retried"] in await resp.text()
    row = database.run_sync(lambda uow: uow.session.get(Outbox, seed.dead_outbox), clock.now())
    assert (row.state, row.attempts, row.next_attempt_at) == ("pending", 0, clock.now())


async def test_the_overview_shows_the_three_rates_with_numerators_and_denominators(
        dash: Any, clock: FrozenClock, database: Database) -> None:
    client, seed = dash
    now = clock.now()

    def rated(uow: Any) -> None:
        base = now - timedelta(days=10)
        add_wish(uow, seed, community=seed.community_a, status="closed", published_at=base,
                 claimed_at=base + timedelta(hours=5), fulfilled_at=base + timedelta(days=2), rating=5)
        add_wish(uow, seed, community=seed.community_a, status="rated", published_at=base,
                 claimed_at=base + timedelta(days=5), fulfilled_at=base + timedelta(days=6), rating=2)
        add_wish(uow, seed, community=seed.community_a, status="claimed", published_at=base,
                 claimed_at=base + timedelta(hours=1))
        add_wish(uow, seed, community=seed.community_a, status="published", published_at=base)

    database.run_sync(rated, now)
    await login(client, ROOT, ROOT_PW)
    html = await (await client.get("/admin")).text()

    def card(name: str) -> str:
        m = re.search(rf'id="rate-{name}">(.*?)</div></div>', html, re.S)
        assert m
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", m.group(1)))

    assert "2 / 4" in card("response") and "50.0%" in card("response")
    assert "2 / 3" in card("resolution")
    assert "1 / 2" in card("satisfaction")
    assert re.search(r'id="overdue-count">[^<]* 0<', html) and re.search(r'id="phone-visit-count">[^<]* 0<', html)
    assert "<svg" in html


async def test_members_and_branches_pages_show_quota_progress(dash: Any) -> None:
    client, _ = dash
    await login(client, ROOT, ROOT_PW)
    assert "Li Ming" in await (await client.get("/admin/members")).text()
    assert "Dongfeng Branch One" in await (await client.get("/admin/branches")).text()


@pytest.mark.skipif(not HAS_REGISTRATION, reason="bot.services.registration (issue 3) has not landed yet")
async def test_approving_on_the_dashboard_goes_through_the_registration_service(
        dash: Any, clock: FrozenClock, database: Database) -> None:
    client, seed = dash
    await login(client, ROOT, ROOT_PW)
    wish_id = seed.wishes_a[0]
    resp = await client.post(f"/admin/wishes/{wish_id}/approve", data={"csrf": await page_csrf(client), "tier": "personal"})
    assert resp.status == 200 and 'data-action="approve"' in await resp.text()
    wish, events = database.run_sync(lambda uow: (uow.wishes.get(wish_id), uow.wishes.events(wish_id)), clock.now())
    assert wish.status == "published"
    approve = [e for e in events if e.action == "approve"][0]
    admin_person = database.run_sync(lambda uow: uow.session.execute(
        select(AdminUser.person_id).where(AdminUser.username == ROOT)).scalar_one(), clock.now())
    assert approve.actor_id == admin_person and approve.actor_role == "admin"
    again = await client.post(f"/admin/wishes/{wish_id}/approve", data={"csrf": await page_csrf(client), "tier": "personal"})
    assert again.status == 409 and 'id="error"' in await again.text()


async def test_the_wish_page_shows_evidence_photos(dash: Any, database: Database, clock: FrozenClock) -> None:
    client, seed = dash
    wish_id = seed.wishes_a[0]

    def evidence(uow: Any) -> None:
        wish = uow.wishes.get(wish_id)
        uow.wishes.note(wish, action="evidence", actor=None, actor_role="member", now=uow.now,
                        note="http://mmbiz.qpic.cn/evidence-photo.jpg", media_id="MEDIA_EVIDENCE_1")
        uow.wishes.note(wish, action="evidence", actor=None, actor_role="member", now=uow.now,
                        note="javascript:alert(1)", media_id="MEDIA_EVIDENCE_2")

    database.run_sync(evidence, clock.now())
    await login(client, ROOT, ROOT_PW)
    html = await (await client.get(f"/admin/wishes/{wish_id}")).text()
    assert '<img class="evidence-photo" src="http://mmbiz.qpic.cn/evidence-photo.jpg"' in html
    assert 'src="javascript:' not in html and "MEDIA_EVIDENCE_2" in html
