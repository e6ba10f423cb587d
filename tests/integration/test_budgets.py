"""Budgets for material wishes on SQLite and PostgreSQL: spending never passes a budget without 批准,
not even with simultaneous claims or two admins approving at once; the CLI, the dashboard, the ledger."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from bot import messages
from bot.clock import FrozenClock
from bot.config import Settings
from bot.routing import Refused
from bot.services import budgets
from storage.db import Database, UnitOfWork
from storage.models import Outbox, Wish, WishEvent
from tests.integration.member_helpers import bind_members, submit_and_publish
from tests.support import ADMIN, ChatClient
from tests.wishflow import make_person

COMMUNITY = "幸福社区"
BRANCH = "幸福社区第一支部"
ADMIN2 = "o_admin_000000000000000000002"
YEAR = 2026
MATERIAL = ("家里的电饭锅坏了想换一台新的", "冬天到了想要一床厚棉被", "孩子上学缺一个书桌和台灯",
            "老人腿脚不便想要一副助行器", "厨房的燃气灶打不着火想换新的", "想给家里装一个防滑扶手")


def resident(i: int) -> str:
    return f"o_resident_budget_{i:010d}"


def set_budget(database: Database, clock: FrozenClock, amount: float, community: str = COMMUNITY) -> None:
    def job(uow: UnitOfWork) -> None:
        unit = uow.org.ensure("community", community)
        budgets.set_budget(uow, community_id=unit.id or 0, year=YEAR, amount=amount)
    database.run_sync(job, clock.now())


def estimate(database: Database, clock: FrozenClock, settings: Settings, wish_id: int, amount: float) -> None:
    def job(uow: UnitOfWork) -> None:
        admin = uow.people.ensure(ADMIN, now=uow.now, admin_openids=settings.admin_openids)
        budgets.set_estimate(uow, wish_id=wish_id, amount=amount, admin=admin)
    database.run_sync(job, clock.now())


def figures(database: Database, clock: FrozenClock, settings: Settings) -> budgets.Figures:
    def job(uow: UnitOfWork) -> budgets.Figures:
        unit = uow.org.by_name("community", COMMUNITY)
        return budgets.figures(uow, unit.id if unit else None, YEAR, settings)
    return database.run_sync(job, clock.now(), False)


def wish(database: Database, clock: FrozenClock, wish_id: int) -> Wish:
    return database.run_sync(lambda uow: uow.wishes.get(wish_id), clock.now(), False)


async def material_wishes(bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings,
                          costs: list[float]) -> list[int]:
    """Published wishes in the community, each with an estimated cost (two per resident: the open-wish cap)."""
    ids = []
    for i, cost in enumerate(costs):
        wid = await submit_and_publish(bot, database, clock, settings, MATERIAL[i],
                                       resident=resident(i // 2), community=COMMUNITY)
        estimate(database, clock, settings, wid, cost)
        ids.append(wid)
    return ids


def held_reply(code: int, cost: str, remaining: str) -> str:
    return messages.CLAIM_COST_HELD.format(code=code, cost=cost, community=COMMUNITY, year=YEAR, remaining=remaining)


async def test_claim_past_the_remainder_is_held_until_an_admin_approves(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    set_budget(database, clock, 1000)
    first, second = await material_wishes(bot, database, clock, settings, [700, 500])
    m1, m2 = await bind_members(bot, database, clock, settings, 2, branch=BRANCH)
    assert "需要管理员批准" not in (await bot.send_text(m1, f"认领 {first}") or "")
    assert wish(database, clock, first).status == "claimed"
    assert await bot.send_text(m2, f"认领 {second}") == held_reply(second, "500", "300")
    assert wish(database, clock, second).status == "published"
    alerts = database.run_sync(lambda uow: [r.payload.get("text", "") for r in uow.session.execute(
        select(Outbox).where(Outbox.recipient == ADMIN)).scalars()], clock.now(), False)
    assert any(f"批准 {second}" in a for a in alerts)
    f = figures(database, clock, settings)
    assert (f.amount, f.spent, f.committed, f.remaining) == (1000, 0, 700, 300)

    approved = await bot.send_text(ADMIN, f"批准 {second}")
    assert approved is not None and approved.startswith(f"已批准 {second} 号心愿的费用 500 元")
    assert (await bot.send_text(m2, f"认领 {second}") or "") != held_reply(second, "500", "300")
    assert wish(database, clock, second).status == "claimed"
    assert figures(database, clock, settings).committed == 1200  # past the budget, with the approval on record


async def test_simultaneous_claims_never_commit_more_than_the_budget(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    set_budget(database, clock, 1000)
    ids = await material_wishes(bot, database, clock, settings, [300] * 6)
    members = await bind_members(bot, database, clock, settings, 6, branch=BRANCH)
    replies = await asyncio.gather(*(bot.send_text(m, f"认领 {w}") for m, w in zip(members, ids)))
    claimed = [w for w in ids if wish(database, clock, w).status == "claimed"]
    held = [r for r in replies if r and "需要管理员批准" in r]
    assert len(claimed) == 3 and len(held) == 3, replies
    f = figures(database, clock, settings)
    assert f.committed == 900 and f.remaining == 100


async def test_two_admins_approving_at_once_record_one_approval(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    make_person(database, clock.now(), ADMIN2, "admin")
    set_budget(database, clock, 100)
    (code,) = await material_wishes(bot, database, clock, settings, [400])
    (member,) = await bind_members(bot, database, clock, settings, 1, branch=BRANCH)
    assert await bot.send_text(member, f"认领 {code}") == held_reply(code, "400", "100")
    replies = await asyncio.gather(bot.send_text(ADMIN, f"批准 {code}"), bot.send_text(ADMIN2, f"/approve-cost {code}"))
    assert sorted(r is not None and r.startswith(f"已批准 {code}") for r in replies) == [False, True], replies
    assert messages.COST_ALREADY_APPROVED.format(code=code) in replies
    approvals = database.run_sync(lambda uow: uow.session.execute(select(WishEvent).where(
        WishEvent.wish_id == code, WishEvent.action == "approve_cost")).scalars().all(), clock.now(), False)
    assert len(approvals) == 1


async def test_actual_cost_past_the_remainder_waits_for_approval_before_it_counts(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    set_budget(database, clock, 100)
    code = await submit_and_publish(bot, database, clock, settings, "想请人帮忙买些米和油送到家里",
                                    resident=resident(0), community=COMMUNITY)
    (member,) = await bind_members(bot, database, clock, settings, 1, branch=BRANCH)
    await bot.send_text(member, f"认领 {code}")
    reply = await bot.send_text(member, f"完成 {code} 已经送到家里 费用 150")
    assert reply == messages.DONE_OK.format(code=code) + messages.COST_TAIL_PENDING.format(
        code=code, cost="150", community=COMMUNITY, year=YEAR, remaining="100")
    w = wish(database, clock, code)
    assert w.status == "fulfilled" and w.actual_cost == 150 and w.cost_pending
    f = figures(database, clock, settings)
    assert (f.spent, f.pending, f.remaining) == (0, 150, 100)

    assert (await bot.send_text(ADMIN, f"批准 {code}") or "").startswith(f"已批准 {code}")
    f = figures(database, clock, settings)
    assert (f.spent, f.pending, f.remaining) == (150, 0, -50)
    texts = database.run_sync(lambda uow: [r.payload.get("text", "") for r in uow.session.execute(
        select(Outbox).where(Outbox.recipient == member)).scalars()], clock.now(), False)
    assert messages.COST_APPROVED_MEMBER.format(code=code, cost="150") in texts


async def test_cost_within_the_budget_counts_as_spent_for_the_wish_and_its_branch(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    set_budget(database, clock, 1000)
    (code,) = await material_wishes(bot, database, clock, settings, [100])
    (member,) = await bind_members(bot, database, clock, settings, 1, branch=BRANCH)
    await bot.send_text(member, f"认领 {code}")
    assert figures(database, clock, settings).committed == 100
    with pytest.raises(Refused):  # once claimed, the estimate stands; the member reports the actual cost
        estimate(database, clock, settings, code, 5)
    reply = await bot.send_text(member, f"/done {code} 买好送到了 费用 86.5元")
    assert reply == messages.DONE_OK.format(code=code) + messages.COST_TAIL_OK.format(
        code=code, cost="86.5", community=COMMUNITY, year=YEAR, remaining="913.5")
    f = figures(database, clock, settings)
    assert (f.spent, f.committed, f.pending) == (86.5, 0, 0)
    by_branch = database.run_sync(lambda uow: budgets.spent_by_branch(uow, YEAR, settings), clock.now(), False)
    assert by_branch == [(BRANCH, 86.5)]


async def test_bad_cost_is_refused_and_nothing_changes(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    code = await submit_and_publish(bot, database, clock, settings, "想请人帮忙修一下楼道里的灯",
                                    resident=resident(0), community=COMMUNITY)
    (member,) = await bind_members(bot, database, clock, settings, 1, branch=BRANCH)
    await bot.send_text(member, f"认领 {code}")
    assert await bot.send_text(member, f"完成 {code} 修好了 费用 12x") == messages.COST_BAD_AMOUNT.format(code=code)
    assert wish(database, clock, code).status == "claimed"
    assert await bot.send_text(ADMIN, f"批准 {code}") == messages.COST_NONE.format(code=code)


def test_budget_set_cli_creates_and_changes_the_budget(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str], clock: FrozenClock) -> None:
    from bot.cli import main

    monkeypatch.setenv("MICROWISH_DATABASE_URL", db_url)
    assert main(["budget", "set", "--community", COMMUNITY, "--year", "2026", "--amount", "500000"]) == 1
    assert "no community named" in capsys.readouterr().err
    assert main(["budget", "set", "--community", COMMUNITY, "--year", "2026", "--amount", "500000", "--create"]) == 0
    assert main(["budget", "set", "--community", COMMUNITY, "--year", "2026", "--amount", "450000.5"]) == 0
    out = capsys.readouterr().out
    assert "预算 450000.5 元" in out
    assert main(["budget", "set", "--community", COMMUNITY, "--year", "2026", "--amount", "lots"]) == 2
    assert main(["budget", "show", "--year", "2026"]) == 0
    assert f"{COMMUNITY} 2026: 预算 450000.5 元" in capsys.readouterr().out
    db = Database(db_url)
    try:
        rows = db.run_sync(lambda uow: budgets.all_figures(uow, 2026, make_settings_for(db_url)), clock.now(), False)
    finally:
        db.close()
    assert [(f.community, f.amount) for f in rows] == [(COMMUNITY, 450000.5)]


def make_settings_for(db_url: str) -> Settings:
    from tests.conftest import make_settings

    return make_settings(db_url)


def test_split_cost_reads_the_trailing_amount_only() -> None:
    assert budgets.split_cost("修好了 费用 86.5", code=1) == ("修好了", 86.5)
    assert budgets.split_cost("修好了 费用：30元", code=1) == ("修好了", 30.0)
    assert budgets.split_cost("费用由社区出", code=1) == ("费用由社区出", None)
    assert budgets.split_cost("已上门修好", code=1) == ("已上门修好", None)


async def test_dashboard_sets_budget_and_estimate_and_shows_the_chart(
        aiohttp_client: Any, database: Database, clock: FrozenClock, settings: Settings) -> None:
    from bot.app import create_app
    from tests.admin_support import ALICE, ALICE_PW, ROOT, ROOT_PW, csrf_in, login, seed_basics

    seed = database.run_sync(seed_basics, clock.now())
    client = await aiohttp_client(create_app(settings, clock=clock, database=database, background=False))
    await login(client, ROOT, ROOT_PW)
    token = csrf_in(await (await client.get("/admin/budgets")).text())
    no_csrf = await client.post("/admin/budgets", data={"community": str(seed.community_a), "year": "2026", "amount": "9"})
    assert no_csrf.status == 403
    saved = await client.post("/admin/budgets", data={"csrf": token, "community": str(seed.community_a), "year": "2026",
                                                      "amount": "1000"})
    assert saved.status == 200
    page = await (await client.post("/admin/budgets/estimate", data={"csrf": token, "code": str(seed.wishes_a[0]),
                                                                      "amount": "250"})).text()
    assert wish(database, clock, seed.wishes_a[0]).est_cost == 250
    assert "<svg" in page and 'class="budget"' in page and "Dongfeng" in page
    approve = await client.post("/admin/budgets/approve", data={"csrf": token, "code": str(seed.wishes_a[0])})
    assert approve.status == 200 and wish(database, clock, seed.wishes_a[0]).cost_approved_at is not None
    again = await client.post("/admin/budgets/approve", data={"csrf": token, "code": str(seed.wishes_a[0])})
    assert again.status == 409 and messages.COST_ALREADY_APPROVED.format(code=seed.wishes_a[0]) in await again.text()

    await client.post("/admin/logout", data={"csrf": token})
    await login(client, ALICE, ALICE_PW)  # a community admin: their community only
    token = csrf_in(await (await client.get("/admin/budgets")).text())
    other = await client.post("/admin/budgets", data={"csrf": token, "community": str(seed.community_b), "year": "2026",
                                                      "amount": "5"})
    assert other.status == 404
    assert (await client.post("/admin/budgets/estimate", data={"csrf": token, "code": str(seed.wishes_b[0]),
                                                               "amount": "5"})).status == 404


async def test_ledger_has_cost_columns_and_xlsx_a_budget_sheet(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings, tmp_path: Any) -> None:
    from openpyxl import load_workbook

    from bot.services import ledger

    set_budget(database, clock, 1000)
    (code,) = await material_wishes(bot, database, clock, settings, [120])
    (member,) = await bind_members(bot, database, clock, settings, 1, branch=BRANCH)
    await bot.send_text(member, f"认领 {code}")
    _, rows = database.run_sync(lambda uow: ledger.fetch_batch(uow, after_id=0, settings=settings), clock.now(), False)
    assert messages.LEDGER_HEADERS[-4:] == messages.LEDGER_COST_HEADERS
    assert rows[0][-4:] == ["120.00", "", "", ""]
    path = str(tmp_path / "ledger.xlsx")
    budget = database.run_sync(lambda uow: ledger.budget_rows(uow, settings), clock.now(), False)
    ledger.write_xlsx(ledger.iter_batches(database, settings, clock.now()), path, budget=budget)
    sheet = load_workbook(path)[messages.LEDGER_BUDGET_SHEET]
    values = list(sheet.iter_rows(values_only=True))
    assert values[0] == messages.LEDGER_BUDGET_HEADERS
    assert values[1] == (COMMUNITY, YEAR, 1000.0, 0.0, 120.0, 880.0, 0.0)


async def test_digest_shows_budget_spent_committed_and_remaining(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    from bot.services import digest

    set_budget(database, clock, 1000)
    (code,) = await material_wishes(bot, database, clock, settings, [120])
    (member,) = await bind_members(bot, database, clock, settings, 1, branch=BRANCH)
    await bot.send_text(member, f"认领 {code}")

    def job(uow: UnitOfWork) -> str:
        d = digest.build_digest(uow, settings, digest.last_complete_period("week", uow.now, settings))
        return digest.render_digest(d, settings)
    text = database.run_sync(job, clock.now(), False)
    assert messages.DIGEST_BUDGET_HEADER.format(year=YEAR) in text
    assert f"{COMMUNITY}：预算 1000 元，已花 0 元，已认领待花 120 元，剩余 880 元" in text


def test_two_checks_racing_in_separate_transactions_cannot_both_pass(
        database: Database, clock: FrozenClock, settings: Settings) -> None:
    """The budget row lock: without it both transactions would see 1000 left and commit 1200."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from bot.services import claims
    from storage.models import Person

    def seed(uow: UnitOfWork) -> tuple[list[int], list[int]]:
        unit = uow.org.ensure("community", COMMUNITY)
        branch = uow.org.ensure("branch", BRANCH, unit)
        budgets.set_budget(uow, community_id=unit.id or 0, year=YEAR, amount=1000)
        owner = uow.people.add(Person(openid="o_owner", created_at=uow.now))
        wishes = [uow.session.merge(Wish(resident_id=owner.id or 0, status="published", content=t, masked=t,
                                         community_id=unit.id, created_at=uow.now, published_at=uow.now, est_cost=600))
                  for t in MATERIAL[:2]]
        members = [uow.people.add(Person(openid=f"o_m{i}", role="member", name=f"党员{i}", branch_id=branch.id,
                                         created_at=uow.now)) for i in range(2)]
        uow.flush()
        return [w.id or 0 for w in wishes], [m.id or 0 for m in members]

    wish_ids, member_ids = database.run_sync(seed, clock.now())

    def attempt(wish_id: int, member_id: int) -> str:
        def job(uow: UnitOfWork) -> str:
            member = uow.people.get(member_id)
            held = budgets.hold_claim(uow, wish_id=wish_id, member=member, settings=settings)
            time.sleep(0.3)  # widen the window between the check and the claim
            if held:
                return "held"
            claims.claim_wish(uow, wish_id=wish_id, member=member, days=None, settings=settings)
            return "claimed"
        return database.run_sync(job, clock.now())

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(attempt, wish_ids, member_ids))
    assert sorted(results) == ["claimed", "held"]
    assert figures(database, clock, settings).committed == 600


async def test_wish_page_shows_costs_and_sets_the_estimate(
        aiohttp_client: Any, database: Database, clock: FrozenClock, settings: Settings) -> None:
    from bot.app import create_app
    from tests.admin_support import ROOT, ROOT_PW, csrf_in, login, seed_basics

    seed = database.run_sync(seed_basics, clock.now())
    client = await aiohttp_client(create_app(settings, clock=clock, database=database, background=False))
    await login(client, ROOT, ROOT_PW)
    code = seed.wishes_a[0]
    page = await (await client.get(f"/admin/wishes/{code}")).text()
    assert 'id="form-estimate"' in page and 'id="form-approve-cost"' not in page
    resp = await client.post("/admin/budgets/estimate", data={"csrf": csrf_in(page), "code": str(code), "amount": "88",
                                                              "back": "wish"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"/admin/wishes/{code}?done=1"
    page = await (await client.get(f"/admin/wishes/{code}")).text()
    assert '<span id="est-cost">88.00</span>' in page and 'id="form-approve-cost"' in page
