"""Matching on a small seeded organisation; the expected scores are worked out by hand below.

Organisation: 东湖社区 (grids 东一, 东二) and 西山社区 (grid 西一). Wish A: 维修 in 东一.
Default weights skill 3, grid 2, community 1, quota 2, satisfaction 1, load 1; cap 3; yearly quota 1.

    m1 东一, 维修, no claims                      3 + 2 + 2             = 7
    m2 东二 (same community), no skill, none      1 + 2                 = 3
    m3 西一, 水管 (a 维修 keyword), none          3 + 2                 = 5
    m4 东一, 维修, 1 open claim this year         3 + 2 + 0 − 1/3       ≈ 4.667
    m5 东一, 维修, 3 open claims                  at the cap: left out
    m6 西一, no skill, rated 5 last year          2 + (5 − 3)/2         = 3   (ties m2; m2 was bound first)

Ranking: m1, m3, m4, m2, m6.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.clock import FrozenClock
from bot.config import Settings
from bot.lifecycle import Action, Party
from bot.services import matching, publishing
from storage.db import Database, UnitOfWork
from storage.models import Claim, Outbox, Person, Wish
from tests.conftest import make_settings
from tests.integration.member_helpers import rows

LAST_YEAR = datetime(2025, 6, 1, tzinfo=timezone.utc)


def seed(uow: UnitOfWork) -> dict[str, int]:
    east = uow.org.ensure("community", "东湖社区")
    west = uow.org.ensure("community", "西山社区")
    grids = {"东一": uow.org.ensure("grid", "东一", east), "东二": uow.org.ensure("grid", "东二", east),
             "西一": uow.org.ensure("grid", "西一", west)}
    branch = uow.org.ensure("branch", "东湖支部", east)
    resident = uow.people.add(Person(openid="o_res_seed", created_at=uow.now))
    ids: dict[str, int] = {}
    for name, grid, skills in [("m1", "东一", "维修"), ("m2", "东二", ""), ("m3", "西一", "水管"),
                               ("m4", "东一", "维修"), ("m5", "东一", "维修"), ("m6", "西一", "")]:
        g = grids[grid]
        p = uow.people.add(Person(openid=f"o_{name}", role="member", name=name, branch_id=branch.id, grid_id=g.id,
                                  community_id=g.parent_id, skills=skills, created_at=uow.now))
        ids[name] = p.id or 0

    def wish(category: str, grid: str, status: str = "submitted", **kw: object) -> Wish:
        g = grids[grid]
        return uow.wishes.add(Wish(resident_id=resident.id or 0, status=status, category=category, content="seed",
                                   masked="seed", community_id=g.parent_id, grid_id=g.id, created_at=uow.now, **kw),
                              actor=resident, actor_role="resident", now=uow.now)

    def claim(member: str, *, at: datetime, outcome: str | None = None, rating: int | None = None) -> None:
        w = wish("维修", "东一", status="closed" if outcome else "claimed", rating=rating)
        uow.claims.add(Claim(wish_id=w.id or 0, member_id=ids[member], branch_id=branch.id, claimed_at=at,
                             due_at=at + timedelta(days=7), ended_at=at + timedelta(days=2) if outcome else None,
                             outcome=outcome))

    claim("m4", at=uow.now - timedelta(days=1))
    for _ in range(3):
        claim("m5", at=uow.now - timedelta(days=1))
    claim("m6", at=LAST_YEAR, outcome="fulfilled", rating=5)
    for name, category, grid in [("A", "维修", "东一"), ("B", "助老陪伴", "西一")]:
        w = wish(category, grid)
        uow.wishes.move(w, Action.APPROVE, parties={Party.ADMIN}, actor=None, actor_role="admin", now=uow.now,
                        changes={"published_at": uow.now})
        ids[name] = w.id or 0
    return ids


def ranking(database: Database, clock: FrozenClock, settings: Settings, wish: str, ids: dict[str, int]) -> list[tuple[str, float]]:
    names = {v: k for k, v in ids.items() if k.startswith("m")}

    def job(uow: UnitOfWork) -> list[tuple[str, float]]:
        return [(names[m.member.id or 0], round(m.score, 3))
                for m in matching.rank_members(uow, uow.wishes.get(ids[wish]), settings)]

    return database.run_sync(job, clock.now())


def test_members_are_ranked_as_worked_out_by_hand(database: Database, clock: FrozenClock, settings: Settings) -> None:
    ids = database.run_sync(seed, clock.now())
    assert ranking(database, clock, settings, "A", ids) == [
        ("m1", 7.0), ("m3", 5.0), ("m4", 4.667), ("m2", 3.0), ("m6", 3.0)]


def test_weights_come_from_settings(database: Database, clock: FrozenClock, db_url: str) -> None:
    settings = make_settings(db_url, match_weights='{"grid": 10}')
    ids = database.run_sync(seed, clock.now())
    # m1 3+10+2 = 15, m4 3+10−1/3 ≈ 12.667, m3 5, m2 3, m6 3
    assert [n for n, _ in ranking(database, clock, settings, "A", ids)] == ["m1", "m4", "m3", "m2", "m6"]


def test_the_hall_puts_each_members_best_match_first(database: Database, clock: FrozenClock, settings: Settings) -> None:
    ids = database.run_sync(seed, clock.now())

    def hall(member: str) -> list[int]:
        return database.run_sync(lambda uow: [w.id for w in matching.hall_for(uow, uow.people.get(ids[member]), settings)],
                                 clock.now())

    # m3 (西一, 水管): A = skill 3 + quota 2 = 5; B = grid 2 + quota 2 = 4.
    assert hall("m3") == [ids["A"], ids["B"]]
    # m6 (西一, no skill, rated 5): A = 2 + 1 = 3; B = grid 2 + 2 + 1 = 5.
    assert hall("m6") == [ids["B"], ids["A"]]


def test_publishing_recommends_the_top_matches(database: Database, clock: FrozenClock, settings: Settings) -> None:
    ids = database.run_sync(seed, clock.now())
    database.run_sync(lambda uow: publishing.on_published(uow, uow.wishes.get(ids["A"]), settings), clock.now())
    recs = rows(database, Outbox, Outbox.channel == "cs")
    assert [r.recipient for r in recs] == ["o_m1", "o_m3", "o_m4"]
    assert all(r.kind == "notice" and f"认领 {ids['A']}" in r.payload["text"] for r in recs)
