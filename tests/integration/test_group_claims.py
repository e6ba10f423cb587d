"""Issue 9: group claims (`认领 12 协助 张三 李四`): one lead, helpers credited in quotas and rankings.

Through the HTTP gateway on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

from bot import messages
from bot.clock import FrozenClock
from bot.config import Settings
from bot.services import digest
from bot.timefmt import fmt_datetime
from storage.db import Database
from storage.models import Claim, Person, Wish
from tests.integration.member_helpers import make_invites, outbox_texts, rows, submit_and_publish
from tests.support import ADMIN, ChatClient

TAP = "想请人帮忙修一下家里的水龙头"


async def bind(bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings, openid: str, name: str,
               branch: str) -> int:
    [code] = make_invites(database, clock, settings, branch=branch)
    assert await bot.send_text(openid, f"绑定 {code} {name}") == messages.BIND_OK.format(name=name, branch=branch)
    return rows(database, Person, Person.openid == openid)[0].id


LEAD, ZHANG_HERE, ZHANG_THERE, LI = "o_lead_0000000000000000001", "o_zhang_000000000000000001", \
    "o_zhang_000000000000000002", "o_li_00000000000000000001"


async def team(bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> dict[str, int]:
    """A lead in 第一支部; 张三 in 第二支部 (bound first) and in 第一支部; 李四 in 第二支部."""
    return {
        "zhang_there": await bind(bot, database, clock, settings, ZHANG_THERE, "张三", "第二支部"),
        "lead": await bind(bot, database, clock, settings, LEAD, "王五", "第一支部"),
        "zhang_here": await bind(bot, database, clock, settings, ZHANG_HERE, "张三", "第一支部"),
        "li": await bind(bot, database, clock, settings, LI, "李四", "第二支部"),
    }


async def test_a_group_claim_names_helpers_from_the_leads_branch_first_and_tells_them(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    ids = await team(bot, database, clock, settings)
    wish_id = await submit_and_publish(bot, database, clock, settings, TAP)

    reply = await bot.send_text(LEAD, f"认领 {wish_id} 5 协助 张三 李四") or ""
    due = clock.now() + timedelta(days=5)
    assert reply.startswith(messages.CLAIM_OK.format(code=wish_id, due=fmt_datetime(due, settings)))
    assert reply.endswith(messages.CLAIM_HELPERS_TAIL.format(names="张三、李四"))
    [claim] = rows(database, Claim)
    assert claim.member_id == ids["lead"] and claim.helpers == [ids["zhang_here"], ids["li"]]
    assert rows(database, Wish)[0].claimer_id == ids["lead"]  # the lead alone answers for the dates
    notice = messages.NOTICE_HELPER.format(branch="第一支部", lead="王五", code=wish_id, title=TAP,
                                           due=fmt_datetime(due, settings))
    assert notice in outbox_texts(database, ZHANG_HERE) and notice in outbox_texts(database, LI)
    assert notice not in outbox_texts(database, ZHANG_THERE)
    assert not any("13" in t and "电话" in t for t in outbox_texts(database, LI))  # no resident details to helpers
    helping = await bot.send_text(LI, "我的认领") or ""
    assert helping.startswith(messages.MY_CLAIMS_HELPING) and f"{wish_id}号" in helping
    # helpers cannot act on the lead's claim
    assert await bot.send_text(LI, f"完成 {wish_id} 好了") == messages.NOT_YOUR_CLAIM.format(
        code=wish_id, action=messages.ACTION_NAMES["fulfil"])


async def test_unknown_helpers_are_refused_by_name_and_nothing_is_claimed(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    await team(bot, database, clock, settings)
    wish_id = await submit_and_publish(bot, database, clock, settings, TAP)
    assert await bot.send_text(LEAD, f"认领 {wish_id} 协助 张三 赵六 钱七") == \
        messages.CLAIM_HELPERS_UNKNOWN.format(names="赵六、钱七")
    assert await bot.send_text(LEAD, f"认领 {wish_id} 协助") == messages.CLAIM_HELPERS_NONE.format(code=wish_id)
    assert await bot.send_text(LEAD, f"认领 {wish_id} 协助 王五") == messages.CLAIM_HELPERS_SELF
    assert rows(database, Claim) == [] and rows(database, Wish)[0].status == "published"
    reply = await bot.send_text(LEAD, f"/claim {wish_id} with 李四") or ""
    assert reply.endswith(messages.CLAIM_HELPERS_TAIL.format(names="李四"))


async def test_helpers_are_credited_in_quotas_and_the_branch_ranking(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    await team(bot, database, clock, settings)
    wish_id = await submit_and_publish(bot, database, clock, settings, TAP)
    stats = await bot.send_text(ADMIN, "统计") or ""
    assert messages.QUOTA_MEMBERS.format(done=0, total=4, quota=1) in stats

    await bot.send_text(LEAD, f"认领 {wish_id} 协助 李四")
    await bot.send_text(LEAD, f"完成 {wish_id} 修好了")
    stats = await bot.send_text(ADMIN, "统计") or ""
    assert messages.QUOTA_MEMBERS.format(done=2, total=4, quota=1) in stats  # the lead and 李四
    assert messages.QUOTA_MEMBERS_BELOW.format(names="张三、张三") in stats
    assert messages.QUOTA_BRANCH_LINE.format(branch="第一支部", n=1, quota=3) in stats
    assert messages.QUOTA_BRANCH_LINE.format(branch="第二支部", n=1, quota=3) in stats  # the helper's branch

    ranking_settings = settings.model_copy(update={"ranking_min_items": 1})
    period = digest.last_complete_period("week", clock.now() + timedelta(days=7), ranking_settings)
    built = database.run_sync(lambda uow: digest.build_digest(uow, ranking_settings, period), clock.now() + timedelta(days=7),
                              False)
    assert {(r.name, r.num, r.den) for r in built.branches} == {("第一支部", 1, 1), ("第二支部", 1, 1)}


async def test_the_dashboard_branch_ranking_credits_the_helpers_branch(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    from bot.auth import create_admin_user
    from tests.admin_support import FAST_HASHER, ROOT, ROOT_PW, login

    await team(bot, database, clock, settings)
    wish_id = await submit_and_publish(bot, database, clock, settings, TAP)
    await bot.send_text(LEAD, f"认领 {wish_id} 协助 李四")
    await bot.send_text(LEAD, f"完成 {wish_id} 修好了")
    database.run_sync(lambda uow: create_admin_user(uow, username=ROOT, password=ROOT_PW, hasher=FAST_HASHER), clock.now())
    await login(bot.client, ROOT, ROOT_PW)
    page = await (await bot.client.get("/admin/branches")).text()
    assert "<td>第一支部</td><td>1 <progress" in page and "<td>第二支部</td><td>1 <progress" in page
