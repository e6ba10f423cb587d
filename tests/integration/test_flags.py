"""Issue 9 item 6 (honest numbers) through the HTTP gateway and the CLI, on SQLite and PostgreSQL:
self-dealing, shared phones, fast closes and proxies answering their own return visits are flagged
in `统计` and in the digest; digest rates and rankings carry their denominators."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.schema import CreateIndex

from bot import messages
from bot.cli import build_parser
from bot.clock import FrozenClock
from bot.config import Settings
from bot.services import flags
from storage.db import Database, UnitOfWork
from storage.models import Claim, OrgUnit, Person, Wish
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


# -- each selective branch of the flag queries (issue 8: they start from the few claimers) ----------

H = timedelta(hours=1)


def _seed_flag_cases(uow: UnitOfWork) -> dict[str, int]:
    """People, wishes and claims for every case the flags tell apart, over two communities."""
    now = uow.now
    c1, c2 = OrgUnit(kind="community", name="一社区"), OrgUnit(kind="community", name="二社区")
    uow.session.add_all([c1, c2])
    uow.flush()

    def person(role: str, phone: str | None = None) -> int:
        p = Person(role=role, phone=phone, created_at=now)
        uow.session.add(p)
        uow.flush()
        return p.id or 0

    member, admin, quiet = person("member", "13800000001"), person("admin", "13800000002"), person("member")
    demoted = person("resident", "13800000003")  # a member once: their old claims still count
    kin, neighbour, nobody = person("resident", "13800000001"), person("resident", "13900000009"), person("resident")
    ids: dict[str, int] = {"c1": c1.id or 0, "c2": c2.id or 0}

    def wish(key: str, resident: int, *claimers: int, community: int | None = None, filer: int | None = None,
             contact: str | None = None) -> None:
        w = Wish(resident_id=resident, content=key, masked=key, created_at=now, filed_by_id=filer,
                 contact_phone=contact, community_id=community if community is not None else c1.id)
        uow.session.add(w)
        uow.flush()
        for n, m in enumerate(claimers):  # every claim but the last one ended (released)
            last = n == len(claimers) - 1
            uow.session.add(Claim(wish_id=w.id or 0, member_id=m, claimed_at=now, due_at=now + 24 * H,
                                  ended_at=None if last else now, outcome=None if last else "released"))
        ids[key] = w.id or 0

    wish("own", member, member)  # the claimer is the resident
    wish("own_c2", member, member, community=c2.id)
    wish("own_released", member, member, admin)  # the resident's own claim was released, then another took it
    wish("own_unclaimed", member)
    wish("demoted_own", demoted, demoted)
    wish("filed", nobody, admin, filer=admin)  # an admin-filed (代办) wish claimed by its filer
    wish("filed_other", nobody, member, filer=admin)
    wish("contact", nobody, member, contact="13800000001")  # the claimer's phone is the contact phone
    wish("contact_c2", nobody, member, contact="13800000001", community=c2.id)
    wish("contact_other", nobody, quiet, contact="13800000001")
    wish("shared", kin, member)  # the resident's phone is the claimer's
    wish("shared_c2", kin, member, community=c2.id)
    wish("shared_contact", kin, member, contact="13800000001")  # already a self_claim: not shared
    wish("shared_other_contact", kin, member, contact="13700000000")
    wish("shared_no_phone_claimer", kin, quiet)
    wish("honest", neighbour, member, contact="13900000009")
    wish("unclaimed", kin)
    return ids


def _flags(database: Database, now: Any, settings: Settings, community_id: int | None = None) -> dict[str, tuple[int, ...]]:
    def job(uow: UnitOfWork) -> dict[str, tuple[int, ...]]:
        return {"self_claim": flags.self_claims(uow, community_id=community_id),
                "shared_phone": flags.shared_phones(uow, community_id=community_id),
                "fast_close": flags.fast_closes(uow, settings, community_id=community_id)}
    return database.run_sync(job, now, False)


def test_each_self_claim_and_shared_phone_case_at_the_query_level(database: Database, clock: FrozenClock,
                                                                    settings: Settings) -> None:
    ids = database.run_sync(_seed_flag_cases, clock.now())

    def of(*keys: str) -> tuple[int, ...]:
        return tuple(sorted(ids[k] for k in keys))

    found = _flags(database, clock.now(), settings)
    assert found["self_claim"] == of("own", "own_c2", "own_released", "demoted_own", "filed", "contact", "contact_c2",
                                     "shared_contact")
    assert found["shared_phone"] == of("shared", "shared_c2", "shared_other_contact")
    assert found["fast_close"] == ()
    in_c2 = _flags(database, clock.now(), settings, community_id=ids["c2"])
    assert in_c2["self_claim"] == of("own_c2", "contact_c2") and in_c2["shared_phone"] == of("shared_c2")
    in_c1 = _flags(database, clock.now(), settings, community_id=ids["c1"])
    assert set(in_c1["self_claim"]) == set(found["self_claim"]) - set(in_c2["self_claim"])
    assert set(in_c1["shared_phone"]) == set(found["shared_phone"]) - set(in_c2["shared_phone"])


def test_fast_closes_just_under_and_over_the_threshold(database: Database, clock: FrozenClock,
                                                       settings: Settings) -> None:
    minute = timedelta(minutes=1)
    limit = timedelta(hours=settings.min_close_hours)

    def seed(uow: UnitOfWork) -> dict[str, int]:
        now = uow.now
        c1, c2 = OrgUnit(kind="community", name="一社区"), OrgUnit(kind="community", name="二社区")
        resident = Person(created_at=now)
        uow.session.add_all([c1, c2, resident])
        uow.flush()
        out = {"c2": c2.id or 0}
        for key, claimed, closed, community in (
                ("under", now, now + limit - minute, c1), ("under_c2", now, now + limit - minute, c2),
                ("instant", now, now, c1), ("over", now, now + limit + minute, c1),
                ("days", now, now + timedelta(days=3), c2), ("open", now, None, c1), ("never_claimed", None, now, c1)):
            w = Wish(resident_id=resident.id or 0, content=key, masked=key, created_at=now, claimed_at=claimed,
                     closed_at=closed, status="closed" if closed else "claimed", community_id=community.id)
            uow.session.add(w)
            uow.flush()
            out[key] = w.id or 0
        return out

    ids = database.run_sync(seed, clock.now())
    assert _flags(database, clock.now(), settings)["fast_close"] == tuple(sorted((ids["under"], ids["under_c2"], ids["instant"])))
    assert _flags(database, clock.now(), settings, community_id=ids["c2"])["fast_close"] == (ids["under_c2"],)


def test_fast_closes_read_the_close_span_index(database: Database, clock: FrozenClock, settings: Settings) -> None:
    """SQLite: the migration comparison cannot reflect expression indexes, so check here that the
    migrated index is the model's expression and that the query is answered from it."""
    if database.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's expression index is compared with the model by test_migrations_build_exactly_the_models")
    with database.engine.connect() as conn:
        ddl = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'ix_wish_close_span'")).scalar_one()
        index = next(i for i in Wish.__table__.indexes if i.name == "ix_wish_close_span")  # type: ignore[attr-defined]
        assert str(CreateIndex(index).compile(dialect=database.engine.dialect)).split(" ON ")[1] in ddl
        captured: list[str] = []

        def job(uow: UnitOfWork) -> None:
            real = uow.session.execute

            def execute(stmt: Any, *args: Any, **kw: Any) -> Any:
                captured.append(str(stmt.compile(dialect=database.engine.dialect, compile_kwargs={"literal_binds": True})))
                return real(stmt, *args, **kw)
            uow.session.execute = execute  # type: ignore[method-assign]
            flags.fast_closes(uow, settings)
            flags.fast_closes(uow, settings, community_id=1)
        database.run_sync(job, clock.now(), False)
        for sql in captured:
            plan = " ".join(str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
            assert "ix_wish_close_span" in plan, plan
