"""The digest aggregated in SQL equals the rules worked out here in Python over every row.

`bot/services/digest.py` computes the counts, rates, medians and rankings in SQL over the period's
index ranges (only one or two middle values of each median leave the database). Here the same
definitions are applied the slow, obvious way to every row of a realistic data set (the benchmark
seed: every state, timestamps with microseconds), with group claims, fulfilments by the claimer
and a first claim exactly at the response deadline added, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, select, update

from benchmarks.seed import seed
from bot.services import digest
from storage.db import Database
from storage.models import Claim, OrgUnit, Person, Wish, WishEvent
from tests.conftest import make_settings

NOW = datetime(2026, 6, 15, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
SLA_HOURS = 72


def _hours(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 3600


def _seeded(url: str, period: digest.Period) -> None:
    engine = create_engine(url)
    seed(engine, 3000, now=NOW, rng=random.Random(11), batch=1000)
    rng = random.Random(5)
    with engine.begin() as conn:
        members = conn.execute(select(Person.id).where(Person.role == "member").order_by(Person.id)).scalars().all()
        claims = conn.execute(select(Claim.id, Claim.wish_id, Claim.member_id, Claim.claimed_at)
                              .where(Claim.claimed_at >= period.start, Claim.claimed_at < period.end)
                              .order_by(Claim.id)).all()
        for cid, wish_id, member, claimed_at in claims:
            if rng.random() < 0.6:  # the claimer fulfilled it (the seed's events have no actor)
                conn.execute(update(WishEvent).where(WishEvent.wish_id == wish_id, WishEvent.action == "fulfil")
                             .values(actor_id=member))
            if rng.random() < 0.2:  # a group claim: helpers from any branch, the lead's own included
                conn.execute(update(Claim).where(Claim.id == cid).values(helpers=rng.sample(members, rng.randint(1, 3))))
        first = conn.execute(select(Wish.id, Wish.published_at).where(
            Wish.published_at >= period.start, Wish.published_at < period.end - timedelta(hours=SLA_HOURS),
            Wish.status == "claimed").order_by(Wish.id).limit(1)).one()
        conn.execute(update(WishEvent).where(WishEvent.wish_id == first.id, WishEvent.action == "claim")
                     .values(at=first.published_at + timedelta(hours=SLA_HOURS)))  # exactly at the deadline: responded
    engine.dispose()


def _expected(url: str, period: digest.Period, minimum: int) -> dict[str, object]:
    """Every figure from every row, by the definitions in bot/services/digest.py's docstring."""
    engine = create_engine(url)
    with engine.connect() as conn:
        wishes = conn.execute(select(Wish.id, Wish.published_at, Wish.community_id, Wish.rating, Wish.rated_at)).all()
        events = conn.execute(select(WishEvent.wish_id, WishEvent.action, WishEvent.at, WishEvent.to_status,
                                     WishEvent.actor_id)).all()
        claims = conn.execute(select(Claim.id, Claim.wish_id, Claim.member_id, Claim.branch_id, Claim.claimed_at,
                                     Claim.helpers)).all()
        people = {p.id: p for p in conn.execute(select(Person.id, Person.role, Person.name, Person.branch_id)).all()}
        units = dict(conn.execute(select(OrgUnit.id, OrgUnit.name)).all())
    engine.dispose()
    start, end = period.start, period.end
    first: dict[tuple[str, int], datetime] = {}
    for e in events:
        if e.at < end and (e.action, e.wish_id) not in first or (e.at < end and e.at < first[(e.action, e.wish_id)]):
            first[(e.action, e.wish_id)] = e.at
    cohort = [w for w in wishes if w.published_at is not None and start <= w.published_at < end]
    fc = {w.id: first[("claim", w.id)] for w in cohort if ("claim", w.id) in first}
    ff = {w.id: first[("fulfil", w.id)] for w in cohort if ("fulfil", w.id) in first}
    ratings = [w.rating for w in cohort if w.rating is not None and w.rated_at is not None and w.rated_at < end]
    sla = timedelta(hours=SLA_HOURS)
    rates = {"response": (sum(1 for w in cohort if w.id in fc and fc[w.id] - w.published_at <= sla), len(cohort)),
             "resolution": (len(ff), len(fc)), "satisfaction": (sum(1 for r in ratings if r >= 4), len(ratings))}
    claim_hours = [_hours(w.published_at, fc[w.id]) for w in cohort if w.id in fc]
    fulfil_hours = [_hours(fc[w.id], ff[w.id]) for w in cohort if w.id in fc and w.id in ff]
    counted: dict[str, set[int]] = defaultdict(set)
    for e in events:
        if start <= e.at < end and not (e.action == "approve" and e.to_status != "published"):
            counted[e.action].add(e.wish_id)
    counts = {key: len(counted[action]) for key, action in digest.EVENT_OF_COUNT.items()}

    def ranked(tally: dict[int, list[int]]) -> list[tuple[str, int, int]]:
        rows = [(units[k], n, d) for k, (n, d) in tally.items() if d >= minimum]
        return sorted(rows, key=lambda r: (-r[1] / r[2], -r[2], r[0]))

    by_community: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for w in cohort:
        if w.community_id is not None:
            by_community[w.community_id][1] += 1
            by_community[w.community_id][0] += w.id in ff
    fulfils = [e for e in events if e.action == "fulfil" and start <= e.at < end]
    by_branch: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for c in claims:
        if not start <= c.claimed_at < end or c.member_id not in people:
            continue
        done = any(e.wish_id == c.wish_id and e.actor_id == c.member_id and e.at >= c.claimed_at for e in fulfils)
        branches = {people[h].branch_id for h in c.helpers if h in people and people[h].branch_id is not None}
        lead = c.branch_id or people[c.member_id].branch_id
        if lead is not None:
            branches.add(lead)
        for b in branches:
            by_branch[b][1] += 1
            by_branch[b][0] += done
    year_start = datetime(end.year if end.month > 1 or end.day > 1 else end.year - 1, 1, 1, tzinfo=end.tzinfo)
    active = {c.member_id for c in claims if year_start <= c.claimed_at < end}
    idle = [p.name for p in sorted(people.values(), key=lambda p: p.id) if p.role == "member" and p.id not in active]
    return {"counts": counts, "rates": rates,
            "median_claim_hours": statistics.median(claim_hours) if claim_hours else None,
            "median_fulfil_hours": statistics.median(fulfil_hours) if fulfil_hours else None,
            "communities": ranked(by_community), "branches": ranked(by_branch), "idle": idle,
            "group_claims": sum(1 for c in claims if c.helpers and start <= c.claimed_at < end)}


@pytest.mark.parametrize("kind", ["month", "tenday"])
def test_sql_digest_equals_the_rules_over_every_row(db_url: str, kind: str) -> None:
    settings = make_settings(db_url, claim_sla_hours=SLA_HOURS, ranking_min_items=5)
    period = digest.last_complete_period(kind, NOW, settings)
    _seeded(db_url, period)
    expected = _expected(db_url, period, settings.ranking_min_items)
    assert expected["group_claims"] and expected["rates"]["response"][1] > 30  # type: ignore[index]
    db = Database(db_url)
    try:
        d = db.run_sync(lambda uow: digest.build_digest(uow, settings, period), NOW, write=False)
    finally:
        db.close()
    assert d.counts == expected["counts"]
    assert d.rates == expected["rates"]
    assert (d.median_claim_hours, d.median_fulfil_hours) == (expected["median_claim_hours"], expected["median_fulfil_hours"])
    assert [(r.name, r.num, r.den) for r in d.communities] == expected["communities"]
    assert [(r.name, r.num, r.den) for r in d.branches] == expected["branches"]
    assert any(r.num for r in d.branches)
    assert d.idle_members == expected["idle"]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10])
def test_median_from_the_middle_values_is_statistics_median(n: int) -> None:
    rng = random.Random(n)
    us = [rng.randrange(0, 10**12) for _ in range(n)]
    ordered = sorted(us)
    middle = ordered[(n - 1) // 2: n // 2 + 1]
    assert digest._median_hours(middle) == statistics.median(timedelta(microseconds=u).total_seconds() / 3600 for u in us)
