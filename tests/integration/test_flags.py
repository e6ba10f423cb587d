"""Issue 9 item 6 (honest numbers) through the HTTP gateway and the CLI, on SQLite and PostgreSQL:
self-dealing, shared phones, fast closes and proxies answering their own return visits are flagged
in `统计` and in the digest; digest rates and rankings carry their denominators."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot import messages
from bot.cli import build_parser
from bot.config import Settings
from storage.db import Database, UnitOfWork
from tests.support import ADMIN, MEMBER, RESIDENT, RESIDENT2, ChatClient
from tests.wishflow import make_member, wish_row

MEMBER2 = "o_member_0000000000000000002"
SHARED = "13700001111"
CONTACT = "13912345678"


def set_phone(database: Database, bot: ChatClient, openid: str, phone: str) -> None:
    def job(uow: UnitOfWork) -> None:
        uow.people.ensure(openid, now=uow.now).phone = phone
    database.run_sync(job, bot.clock.now())


def label(kind: str, settings: Settings, n: int = 0) -> str:
    return messages.FLAG_KINDS[kind].format(hours=f"{settings.min_close_hours:g}", n=n)


def wish_flag(kind: str, settings: Settings, codes: str) -> str:
    return messages.FLAG_WISH_LINE.format(kind=label(kind, settings), codes=codes)


async def submit(bot: ChatClient, openid: str, text: str) -> int:
    reply = await bot.send_text(openid, f"许愿 {text}")
    assert reply is not None and reply.startswith(messages.WISH_OK.split("{")[0]), reply
    return int(reply.split("编号 ")[1].split("。")[0])


async def claim(bot: ChatClient, database: Database, member: str, code: int) -> None:
    await bot.send_text(member, f"认领 {code}")
    assert wish_row(database, bot.clock.now(), code).status == "claimed"


async def done(bot: ChatClient, database: Database, member: str, code: int) -> None:
    await bot.send_text(member, f"完成 {code} 已经办好了")
    assert wish_row(database, bot.clock.now(), code).status == "fulfilled"


async def test_self_claims_and_shared_phones_are_flagged_in_stats(bot: ChatClient, database: Database,
                                                                  settings: Settings) -> None:
    make_member(database, bot.clock.now(), MEMBER)
    make_member(database, bot.clock.now(), MEMBER2, name="赵强")
    set_phone(database, bot, MEMBER, CONTACT)
    set_phone(database, bot, MEMBER2, SHARED)
    set_phone(database, bot, RESIDENT2, SHARED)
    own = await submit(bot, RESIDENT, f"家里水龙头漏水想请人修一下 电话{CONTACT}")
    shared = await submit(bot, RESIDENT2, "想请人帮忙换一下楼道的灯泡")
    honest = await submit(bot, RESIDENT, "想请人陪我去医院复查身体")
    for code in (own, shared, honest):
        await bot.send_text(ADMIN, f"通过 {code}")
    assert messages.FLAGS_HEADER.split("（")[0] not in (await bot.send_text(ADMIN, "统计") or "")
    await claim(bot, database, MEMBER, own)  # the member's phone is the wish's contact phone
    await claim(bot, database, MEMBER2, shared)  # the member and the resident share a phone
    await claim(bot, database, MEMBER2, honest)
    stats = await bot.send_text(ADMIN, "统计") or ""
    assert "\n".join([messages.FLAGS_HEADER.format(n=2), wish_flag("self_claim", settings, str(own)),
                      wish_flag("shared_phone", settings, str(shared))]) + "\n" in stats + "\n", stats


async def test_fast_closes_are_flagged_and_slow_ones_are_not(bot: ChatClient, database: Database,
                                                             settings: Settings) -> None:
    make_member(database, bot.clock.now(), MEMBER)
    quick = await submit(bot, RESIDENT, "家里水龙头漏水想请人修一下")
    slow = await submit(bot, RESIDENT2, "想请人帮忙换一下楼道的灯泡")
    for code in (quick, slow):
        await bot.send_text(ADMIN, f"通过 {code}")
        await claim(bot, database, MEMBER, code)
    bot.clock.advance(timedelta(minutes=30))
    await done(bot, database, MEMBER, quick)
    await bot.send_text(RESIDENT, f"评价 {quick} 5")
    assert wish_row(database, bot.clock.now(), quick).status == "closed"
    bot.clock.advance(timedelta(hours=3))
    await done(bot, database, MEMBER, slow)
    await bot.send_text(RESIDENT2, f"评价 {slow} 5")
    assert wish_row(database, bot.clock.now(), slow).status == "closed"
    stats = await bot.send_text(ADMIN, "统计") or ""
    assert messages.FLAGS_HEADER.format(n=1) + "\n" + wish_flag("fast_close", settings, str(quick)) + "\n" in stats + "\n"


async def _proxy_wish(bot: ChatClient, n: int) -> int:
    await bot.send_text(ADMIN, "代办")
    for answer in (f"居民{n}", "跳过", "幸福社区", "电话"):
        await bot.send_text(ADMIN, answer)
    reply = await bot.send_text(ADMIN, f"想请人帮忙修一下家里的门锁{n}") or ""
    return int(reply.split("编号 ")[1].split("（")[0])


async def test_a_proxy_answering_many_of_their_own_return_visits_is_flagged(bot: ChatClient, database: Database,
                                                                           settings: Settings) -> None:
    make_member(database, bot.clock.now(), MEMBER)
    codes = []
    for n in range(3):  # settings.proxy_visit_flag_min
        code = await _proxy_wish(bot, n)
        await bot.send_text(ADMIN, f"通过 {code}")
        await claim(bot, database, MEMBER, code)
        bot.clock.advance(timedelta(days=1))
        await done(bot, database, MEMBER, code)
        await bot.send_text(ADMIN, f"回访 {code} 已解决 5")
        assert wish_row(database, bot.clock.now(), code).status == "rated"
        codes.append(code)
        stats = await bot.send_text(ADMIN, "统计") or ""
        assert (label("proxy_visits", settings, n + 1) in stats) is (n == 2), stats
    admin_id = database.run_sync(lambda uow: uow.people.by_openid(ADMIN).id, bot.clock.now(), False)  # type: ignore[union-attr]
    line = messages.FLAG_PROXY_LINE.format(kind=label("proxy_visits", settings, 3), name=f"管理员{admin_id}",
                                           codes="、".join(map(str, codes)))
    assert line + "\n" in (await bot.send_text(ADMIN, "统计") or "") + "\n"


def run_cli(settings: Settings, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return int(args.func(args, settings))


async def test_digest_lists_flags_and_every_rate_with_its_denominator(bot: ChatClient, database: Database,
                                                                     settings: Settings,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    make_member(database, bot.clock.now(), MEMBER)
    set_phone(database, bot, MEMBER, CONTACT)
    own = await submit(bot, RESIDENT, f"家里水龙头漏水想请人修一下 电话{CONTACT}")
    await bot.send_text(ADMIN, f"通过 {own}")
    await claim(bot, database, MEMBER, own)
    assert run_cli(settings, "digest", "--period", "week", "--at", "2026-03-09T10:00") == 0
    printed = capsys.readouterr().out
    assert "\n".join([messages.DIGEST_FLAGS_HEADER.format(n=1), wish_flag("self_claim", settings, str(own))]) in printed
    names = messages.DIGEST_RATE_NAMES  # every rate with its numerator and denominator
    for name, pct, num, den in (("response", "100%", 1, 1), ("resolution", "0%", 0, 1), ("satisfaction", "—", 0, 0)):
        assert messages.DIGEST_RATE_LINE.format(name=names[name], pct=pct, num=num, den=den) in printed.splitlines()
    assert messages.DIGEST_RANK_EMPTY.format(min=settings.ranking_min_items) in printed  # 1 claim < 5: no ranking
