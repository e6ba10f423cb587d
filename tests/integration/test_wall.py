"""The public wish wall over real HTTP: masked text, opt-out, minors, no private details, the cache."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, AsyncIterator
from urllib.parse import quote

import pytest

from bot import messages
from bot.app import create_app
from bot.clock import FrozenClock
from bot.config import Settings
from bot.lifecycle import WishStatus
from bot.wall import WALL_CACHE
from storage.db import Database, UnitOfWork
from storage.models import Claim, Wish
from tests.support import RESIDENT, ChatClient

PHONE = "13812345678"
ID_NUMBER = "110101199003071234"
HOUSE = "3号楼2单元501室"
SAFETY = "9731"
MEMBER_NAME = "欧阳修远"
CHILD = "小明"


@dataclass
class WallSeed:
    community_id: int
    shown: int  # published, public
    claimed: int
    fulfilled: int
    private: int
    minor: int
    legacy_minor: int  # concerns_minor but public still true (older data): must stay off too
    submitted: int
    other_community: int


def seed_wall(uow: UnitOfWork) -> WallSeed:
    now = uow.now
    happy = uow.org.ensure("community", "幸福社区")
    sunny = uow.org.ensure("community", "阳光社区")
    branch = uow.org.ensure("branch", "幸福社区第一支部", happy)
    resident = uow.people.ensure(RESIDENT, now=now)
    resident.community_id = happy.id
    member = uow.people.ensure("o_member_wall_0000000000001", now=now)
    member.role, member.name, member.branch_id = "member", MEMBER_NAME, branch.id
    uow.flush()

    def wish(masked: str, status: WishStatus, *, days_ago: int, community: Any = happy, **extra: Any) -> Wish:
        content = f"{masked} 电话{PHONE} 身份证{ID_NUMBER} 住{HOUSE}"
        w = Wish(resident_id=resident.id or 0, status=status.value, content=content, masked=masked, category="维修",
                 contact_phone=PHONE, private_details={"phone": [PHONE], "id": [ID_NUMBER], "address": [HOUSE]},
                 community_id=community.id, created_at=now - timedelta(days=days_ago, hours=5),
                 published_at=now - timedelta(days=days_ago) if status != WishStatus.SUBMITTED else None, **extra)
        uow.session.add(w)
        uow.flush()
        return w

    def claim(w: Wish, hours: int) -> None:
        c = Claim(wish_id=w.id or 0, member_id=member.id or 0, branch_id=branch.id, claimed_at=w.published_at + timedelta(hours=hours),
                  due_at=now + timedelta(days=3), safety_code=SAFETY)
        uow.session.add(c)
        uow.flush()
        w.claim_id, w.claimer_id, w.claimed_at = c.id, member.id, c.claimed_at

    shown = wish("想请人帮忙修一下厨房水龙头[电话]", WishStatus.PUBLISHED, days_ago=1)
    claimed = wish("楼道灯坏了想请人换个灯泡", WishStatus.CLAIMED, days_ago=2)
    claim(claimed, 3)
    fulfilled = wish("想请人陪我去医院复查", WishStatus.RATED, days_ago=3, rating=5, fulfilled_at=now - timedelta(days=1),
                     rated_at=now - timedelta(hours=5))
    claim(fulfilled, 20)
    private = wish("这是不想公开的心愿内容", WishStatus.PUBLISHED, days_ago=1, public=False)
    minor = wish(messages.MINOR_MASKED, WishStatus.PUBLISHED, days_ago=1, public=False, concerns_minor=True)
    legacy_minor = wish(f"{CHILD}需要课后辅导数学", WishStatus.PUBLISHED, days_ago=1, concerns_minor=True)
    submitted = wish("还没登记的心愿内容", WishStatus.SUBMITTED, days_ago=0)
    other = wish("阳光社区想要一个晾衣架", WishStatus.PUBLISHED, days_ago=1, community=sunny)
    return WallSeed(happy.id or 0, shown.id or 0, claimed.id or 0, fulfilled.id or 0, private.id or 0, minor.id or 0,
                    legacy_minor.id or 0, submitted.id or 0, other.id or 0)


@pytest.fixture
async def wall(aiohttp_client: Any, settings: Settings, clock: FrozenClock, database: Database) -> AsyncIterator[tuple[Any, WallSeed]]:
    seed = database.run_sync(seed_wall, clock.now())
    app = create_app(settings, clock=clock, database=database, background=False)
    client = await aiohttp_client(app)
    yield client, seed


def assert_nothing_private(html: str) -> None:
    for secret in (PHONE, PHONE[:7], ID_NUMBER, HOUSE, "501", SAFETY, MEMBER_NAME, CHILD):
        assert secret not in html, secret


async def test_wall_shows_masked_public_wishes_with_category_wait_and_branch(wall: Any) -> None:
    client, seed = wall
    resp = await client.get("/wall")
    html = await resp.text()
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/html")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "<script" not in html.lower()
    for code in (seed.shown, seed.claimed, seed.fulfilled, seed.other_community):
        assert f'id="w{code}"' in html
    assert "想请人帮忙修一下厨房水龙头[电话]" in html and "维修" in html
    assert messages.WALL["waiting"].format(span="1天5小时") in html  # still waiting since it was submitted
    assert messages.WALL["waited_claimed"].format(span="8小时") in html  # submitted → claimed
    assert messages.WALL["branch"].format(branch="幸福社区第一支部") in html
    assert_nothing_private(html)


async def test_wall_leaves_out_opted_out_minors_and_unpublished_wishes(wall: Any) -> None:
    client, seed = wall
    html = await (await client.get("/wall")).text()
    for code in (seed.private, seed.minor, seed.legacy_minor, seed.submitted):
        assert f'id="w{code}"' not in html
    assert "这是不想公开的心愿内容" not in html and messages.MINOR_MASKED not in html and "还没登记" not in html


async def test_rates_show_numerators_and_denominators_for_the_last_month(wall: Any) -> None:
    client, seed = wall
    html = await (await client.get(f"/wall/{seed.community_id}")).text()
    # In 幸福社区 six wishes were published in the last 30 days; two claimed within 72 h, one fulfilled, one rated 5.
    assert "2 / 6" in html and "1 / 2" in html and "1 / 1" in html
    assert f'id="w{seed.other_community}"' not in html and f'id="w{seed.shown}"' in html


async def test_community_wall_by_name_and_unknown_community_is_404(wall: Any) -> None:
    client, seed = wall
    by_name = await client.get("/wall/" + quote("阳光社区"))
    html = await by_name.text()
    assert by_name.status == 200 and f'id="w{seed.other_community}"' in html and f'id="w{seed.shown}"' not in html
    missing = await client.get("/wall/" + quote("没有社区"))
    assert missing.status == 404 and messages.WALL["not_found"] in await missing.text()


async def test_cache_serves_the_same_page_until_the_ttl_passes(wall: Any, database: Database, clock: FrozenClock) -> None:
    client, seed = wall
    first = await client.get("/wall")
    assert first.headers["Cache-Control"] == "public, max-age=30"
    assert "想请人帮忙修一下厨房水龙头" in await first.text()
    builds = client.app[WALL_CACHE].builds

    def change(uow: UnitOfWork) -> None:
        uow.wishes.get(seed.shown).masked = "换了一个说法的心愿"
    database.run_sync(change, clock.now())

    clock.advance(seconds=29)
    cached = await (await client.get("/wall")).text()
    assert "想请人帮忙修一下厨房水龙头" in cached and "换了一个说法的心愿" not in cached
    assert client.app[WALL_CACHE].builds == builds  # no database read for the second request
    clock.advance(seconds=2)
    fresh = await (await client.get("/wall")).text()
    assert "换了一个说法的心愿" in fresh
    assert client.app[WALL_CACHE].builds == builds + 1


async def test_concurrent_misses_build_the_page_once(wall: Any) -> None:
    import asyncio

    client, _ = wall
    responses = await asyncio.gather(*(client.get("/wall") for _ in range(20)))
    assert {r.status for r in responses} == {200}
    assert client.app[WALL_CACHE].builds == 1


async def test_resident_is_told_about_the_wall_and_private_keeps_a_wish_off(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    from tests.integration.member_helpers import publish

    reply = await bot.send_text(RESIDENT, "许愿 想请人帮忙把阳台的晾衣杆修好")
    wish_id = database.run_sync(lambda uow: uow.session.query(Wish).order_by(Wish.id.desc()).first().id, clock.now())
    assert reply == messages.WISH_OK.format(code=wish_id) + messages.WISH_OK_WALL.format(code=wish_id)
    publish(database, clock, settings, wish_id)
    html = await (await bot.client.get("/wall")).text()
    assert f'id="w{wish_id}"' in html
    assert await bot.send_text(RESIDENT, f"不公开 {wish_id}") == messages.PRIVATE_OK.format(code=wish_id)
    clock.advance(seconds=31)
    assert f'id="w{wish_id}"' not in await (await bot.client.get("/wall")).text()


def test_wall_query_never_selects_minor_or_private_wishes(database: Database, clock: FrozenClock, settings: Settings) -> None:
    from bot.wall.page import render_wall

    seed = database.run_sync(seed_wall, clock.now())
    html = database.run_sync(lambda uow: render_wall(uow, settings, None), clock.now(), False) or ""
    assert f'id="w{seed.legacy_minor}"' not in html and f'id="w{seed.private}"' not in html
    assert_nothing_private(html)
