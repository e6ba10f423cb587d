"""Binding, skills, role checks and the quota section of 统计, through the HTTP gateway."""

from __future__ import annotations

from datetime import timedelta

from bot import messages
from bot.clock import FrozenClock
from bot.config import Settings
from bot.lifecycle import Role
from bot.messages import Keyword
from bot.services import members
from bot.services.members import MemberRow
from handlers import admins as admin_handlers
from handlers import members as member_handlers
from storage.db import Database
from storage.models import InviteCode, OrgUnit, Person
from tests.integration.member_helpers import bind_members, make_invites, rows, submit_and_publish
from tests.support import ADMIN, MEMBER, RESIDENT, ChatClient

MEMBER_COMMANDS = {Keyword.SKILLS, Keyword.HALL, Keyword.CLAIM, Keyword.CONTACTED, Keyword.DONE, Keyword.RELEASE,
                   Keyword.MY_CLAIMS}
CORE_ADMIN_COMMANDS = {Keyword.PENDING, Keyword.APPROVE, Keyword.REJECT, Keyword.DEFER, Keyword.ASSIGN,
                       Keyword.CLOSE, Keyword.VISIT, Keyword.STATS}


def person(database: Database, openid: str) -> object:
    return rows(database, Person, Person.openid == openid)[0]


async def test_bind_with_code_and_name_makes_a_member_and_uses_the_code(
        bot: ChatClient, database: Database, clock: FrozenClock, settings: Settings) -> None:
    [code] = make_invites(database, clock, settings, branch="幸福社区第一支部")

    reply = await bot.send_text(MEMBER, f"绑定 {code.lower()} 张三")

    assert reply == messages.BIND_OK.format(name="张三", branch="幸福社区第一支部")
    me = person(database, MEMBER)
    assert me.role == "member" and me.name == "张三"
    branch = rows(database, OrgUnit, OrgUnit.kind == "branch")[0]
    assert me.branch_id == branch.id
    assert rows(database, InviteCode)[0].used_by == me.id
    assert await bot.send_text(RESIDENT, f"绑定 {code} 李四") == messages.BIND_USED_CODE.format(code=code)
    assert await bot.send_text(MEMBER, f"绑定 {code}") == messages.BIND_ALREADY.format(branch="幸福社区第一支部")
    assert person(database, RESIDENT).role == "resident"


async def test_bind_without_a_name_asks_for_it(bot: ChatClient, database: Database, clock: FrozenClock,
                                               settings: Settings) -> None:
    [code] = make_invites(database, clock, settings, branch="第二支部")
    assert await bot.send_text(MEMBER, f"绑定 {code}") == messages.BIND_ASK_NAME
    assert await bot.send_text(MEMBER, "取消") == messages.BIND_LEFT
    assert person(database, MEMBER).role == "resident" and rows(database, InviteCode)[0].used_by is None

    assert await bot.send_text(MEMBER, f"/bind {code}") == messages.BIND_ASK_NAME
    assert await bot.send_text(MEMBER, "王五") == messages.BIND_OK.format(name="王五", branch="第二支部")
    assert person(database, MEMBER).name == "王五"


async def test_bad_expired_and_admin_bindings_are_refused(bot: ChatClient, database: Database, clock: FrozenClock,
                                                          settings: Settings) -> None:
    [code] = make_invites(database, clock, settings, branch="第三支部")
    assert await bot.send_text(MEMBER, "绑定") == messages.BIND_USAGE
    assert await bot.send_text(MEMBER, "绑定 NOPE2345 张三") == messages.BIND_BAD_CODE.format(code="NOPE2345")
    assert await bot.send_text(ADMIN, f"绑定 {code} 管理员") == messages.BIND_ADMIN
    clock.advance(timedelta(days=settings.invite_valid_days, seconds=1))
    assert await bot.send_text(MEMBER, f"绑定 {code} 张三") == messages.BIND_EXPIRED_CODE.format(code=code)
    assert person(database, MEMBER).role == "resident"


async def test_an_imported_code_carries_name_place_and_skills(bot: ChatClient, database: Database,
                                                              clock: FrozenClock, settings: Settings) -> None:
    row = MemberRow(name="赵六", branch="阳光支部", phone="13900001111", community="阳光社区", grid="阳光一网格",
                    skills=["维修", "助老陪伴"])
    [(_, code)] = database.run_sync(lambda uow: members.import_members(uow, rows=[row], settings=settings), clock.now())

    assert await bot.send_text(MEMBER, f"绑定 {code}") == messages.BIND_OK.format(name="赵六", branch="阳光支部")

    me = person(database, MEMBER)
    units = {u.kind: u for u in rows(database, OrgUnit)}
    assert (me.community_id, me.grid_id, me.branch_id) == (units["community"].id, units["grid"].id, units["branch"].id)
    assert units["grid"].parent_id == units["community"].id and units["branch"].parent_id == units["grid"].id
    assert me.skills == "维修 助老陪伴" and me.phone == "13900001111"


async def test_skills_are_set_from_tags(bot: ChatClient, database: Database, clock: FrozenClock,
                                        settings: Settings) -> None:
    [member] = await bind_members(bot, database, clock, settings, 1)
    assert await bot.send_text(member, "特长") == messages.SKILLS_USAGE
    assert await bot.send_text(member, "特长 维修，法律咨询、维修 电脑") == messages.SKILLS_OK.format(skills="维修、法律咨询、电脑")
    assert person(database, member).skills == "维修 法律咨询 电脑"


async def test_every_member_command_is_refused_to_a_resident(bot: ChatClient, database: Database) -> None:
    registered = {kw for kw, route in member_handlers.router.commands.items() if route.roles == frozenset({Role.MEMBER})}
    assert registered == MEMBER_COMMANDS
    for kw in sorted(MEMBER_COMMANDS):
        assert await bot.send_text(RESIDENT, f"{kw.value} 1 说明") == messages.NEED_MEMBER, kw


async def test_every_admin_command_is_refused_to_a_member(bot: ChatClient, database: Database, clock: FrozenClock,
                                                          settings: Settings) -> None:
    [member] = await bind_members(bot, database, clock, settings, 1)
    admin_only = {kw for kw, route in admin_handlers.router.commands.items() if route.roles == frozenset({Role.ADMIN})}
    assert CORE_ADMIN_COMMANDS <= admin_only
    for kw in sorted(admin_only):
        assert await bot.send_text(member, f"{kw.value} 1 说明") == messages.NEED_ADMIN, kw


async def test_stats_shows_the_yearly_quotas(bot: ChatClient, database: Database, clock: FrozenClock,
                                             settings: Settings) -> None:
    done, idle = await bind_members(bot, database, clock, settings, 2)
    wish_id = await submit_and_publish(bot, database, clock, settings, "想请人帮忙修一下家里的水龙头")
    await bot.send_text(done, f"认领 {wish_id}")
    await bot.send_text(done, f"完成 {wish_id} 修好了")

    text = await bot.send_text(ADMIN, "统计")

    assert text is not None
    assert messages.QUOTA_HEADER.format(year=2026) in text
    assert messages.QUOTA_MEMBERS.format(done=1, total=2, quota=1) in text
    assert messages.QUOTA_MEMBERS_BELOW.format(names="党员2") in text
    assert messages.QUOTA_BRANCH_LINE.format(branch="第一支部", n=1, quota=3) in text
