"""Group claims are picked out in SQL (`promises._with_helpers`), on SQLite and PostgreSQL.

`helpers` is a JSON list on the claim; a claim with `[]` or JSON null has no helpers and must not
be loaded. The credits built on top (`helper_credits`) are checked against the old way: every
claim of the period loaded and filtered in Python.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text

from bot.services import promises
from storage.db import Database, UnitOfWork
from storage.models import Claim, OrgUnit, Person, Wish
from tests.conftest import START

SINCE = START - timedelta(days=30)


def _seed(database: Database) -> dict[str, int]:
    """Two branches, a lead and two helpers, and claims with every shape of `helpers`; their ids by name."""
    def job(uow: UnitOfWork) -> dict[str, int]:
        s = uow.session
        a, b = OrgUnit(kind="branch", name="甲支部"), OrgUnit(kind="branch", name="乙支部")
        s.add_all([a, b])
        s.flush()
        resident = Person(role="resident", created_at=START)
        lead = Person(role="member", name="组长", branch_id=a.id, created_at=START)
        x = Person(role="member", name="协助甲", branch_id=b.id, created_at=START)
        y = Person(role="member", name="协助乙", branch_id=a.id, created_at=START)
        s.add_all([resident, lead, x, y])
        s.flush()
        ids = {"lead": lead.id, "x": x.id, "y": y.id, "a": a.id, "b": b.id}
        shapes = {  # name: (helpers, claimed_at, outcome, ended_at)
            "none": (None, START, "fulfilled", START),
            "empty": ([], START, "fulfilled", START),
            "x": ([x.id], START, "fulfilled", START + timedelta(days=1)),
            "xy": ([x.id, y.id], START - timedelta(days=1), None, None),
            "released": ([y.id], START, "released", START),
            "old": ([y.id], SINCE - timedelta(seconds=1), "fulfilled", START),  # before the period
            "late": ([x.id], START + timedelta(days=10), "fulfilled", START + timedelta(days=11)),
        }
        for name, (helpers, claimed_at, outcome, ended_at) in shapes.items():
            wish = Wish(resident_id=resident.id, content=name, masked=name, created_at=claimed_at)
            s.add(wish)
            s.flush()
            claim = Claim(wish_id=wish.id, member_id=lead.id, branch_id=a.id, claimed_at=claimed_at,
                          due_at=claimed_at + timedelta(days=5), helpers=helpers, outcome=outcome, ended_at=ended_at)
            s.add(claim)
            s.flush()
            ids[name] = claim.id
        return ids

    return database.run_sync(job, START)


def _old_credits(uow: UnitOfWork, since) -> promises.HelperCredits:  # type: ignore[no-untyped-def]
    """`helper_credits` as it was: every claim of the period loaded, the group claims kept in Python."""
    every = uow.session.execute(select(Claim).where(Claim.claimed_at >= since)).scalars().all()
    return promises.credits_from(uow, [c for c in every if c.helpers], since)


def test_only_claims_with_helpers_are_loaded(database: Database) -> None:
    ids = _seed(database)

    def check(uow: UnitOfWork) -> None:
        # `None` is stored as JSON null (the column is NOT NULL), not as SQL NULL
        nulls = uow.session.execute(text("SELECT count(*) FROM claim WHERE helpers IS NULL")).scalar_one()
        assert nulls == 0
        got = sorted(c.id for c in promises._with_helpers(uow, SINCE))
        assert got == sorted(ids[n] for n in ("x", "xy", "released", "late"))
        got = sorted(c.id for c in promises._with_helpers(uow, SINCE, START + timedelta(days=10)))
        assert got == sorted(ids[n] for n in ("x", "xy", "released"))
        everything = uow.session.execute(select(func.count()).select_from(Claim)).scalar_one()
        with_helpers = uow.session.execute(
            select(func.count()).select_from(Claim).where(promises.has_helpers(uow.dialect))).scalar_one()
        assert (everything, with_helpers) == (7, 5)

        credits = promises.helper_credits(uow, SINCE)
        x, y, b = ids["x"], ids["y"], ids["b"]
        assert dict(credits.claims) == {x: 3, y: 1}  # x: "x", "xy", "late"; y: "xy" ("released" earns nothing)
        assert dict(credits.branch_fulfilled) == {b: 2}  # x's branch, beside the lead's: "x" and "late"
        old = _old_credits(uow, SINCE)
        assert (dict(credits.claims), dict(credits.branch_fulfilled)) == (dict(old.claims), dict(old.branch_fulfilled))

    database.run_sync(check, START, write=False)
