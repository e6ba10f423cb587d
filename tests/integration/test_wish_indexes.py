"""The `wish` indexes a new wish skips (migration 0004) are still the ones the reads use.

A submitted wish has no publication, fulfilment or phone visit yet, so the indexes on those
columns are partial (`WHERE col IS NOT NULL`) and the 许愿 INSERT does not maintain them. That
only holds up while every query reading them compares the column or asks `IS NOT NULL` (the
planners prove the index's WHERE from that): the dashboard, the digest and the budgets are run
here and their statements explained, on both backends.
"""

from __future__ import annotations

import random
from typing import Any, Callable

from sqlalchemy import event, select, text

from benchmarks.seed import seed
from bot.admin_web import queries
from bot.auth import AdminView
from bot.clock import FrozenClock
from bot.config import Settings
from bot.services import budgets, digest
from storage.db import Database, UnitOfWork
from storage.models import OrgUnit, Person, Wish

PARTIAL = ("ix_wish_published_at", "ix_wish_published_cohort", "ix_wish_community_published",
           "ix_wish_fulfilled_at", "ix_wish_community_fulfilled", "ix_wish_phone_visit")
# what a plain new wish is entered in: everything else on `wish` is partial on a column it leaves NULL
ENTERED = {"ix_wish_status_published", "ix_wish_resident_status", "ix_wish_claimer_status", "ix_wish_created_at",
           "ix_wish_status_id", "ix_wish_category_id", "ix_wish_tier_id", "ix_wish_community_recent",
           "ix_wish_community_created", "ix_wish_phone_list"}


def _plans(database: Database, job: Callable[[UnitOfWork], Any], now: Any) -> list[str]:
    """Run `job`, then explain every SELECT it sent (PostgreSQL: sequential scans off, so an index
    that cannot be used shows as not used rather than as merely not chosen on a small table)."""
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip()[:6].upper() in ("SELECT", "WITH C"):  # reads (the digest's start WITH cohort)
            captured.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", capture)
    try:
        database.run_sync(job, now, False)
    finally:
        event.remove(database.engine, "before_cursor_execute", capture)
    sqlite = database.engine.dialect.name == "sqlite"
    plans = []
    with database.engine.connect() as conn:
        if not sqlite:
            conn.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in captured:
            rows = conn.exec_driver_sql(("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + statement, parameters).all()
            plans.append(" ".join(str(r[-1]) for r in rows))
    return plans


def _seeded(database: Database, clock: FrozenClock) -> int:
    seed(database.engine, 600, now=clock.now(), rng=random.Random(3), batch=600)
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE wish SET phone_visit_since = fulfilled_at WHERE status = 'fulfilled'"))
        conn.execute(text("UPDATE wish SET est_cost = 10, actual_cost = 8 WHERE fulfilled_at IS NOT NULL AND id % 5 = 0"))
    if database.engine.dialect.name == "postgresql":
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    with database.engine.connect() as conn:
        return conn.execute(select(OrgUnit.id).where(OrgUnit.kind == "community").order_by(OrgUnit.id)).scalars().first() or 0


def test_the_reads_still_use_the_partial_indexes(database: Database, clock: FrozenClock, settings: Settings) -> None:
    community = _seeded(database, clock)
    every = AdminView(id=1, username="all", person_id=1, community_id=None, community_name=None)
    one = AdminView(id=2, username="one", person_id=1, community_id=community, community_name="一")
    period = digest.last_complete_period("month", clock.now(), settings)
    year = clock.now().astimezone(settings.tz).year
    used: dict[str, list[str]] = {}
    for name, job in {
        "overview (all)": lambda uow: queries.overview(uow, every, settings),
        "overview (community)": lambda uow: queries.overview(uow, one, settings),
        "members": lambda uow: queries.members(uow, every, settings),
        "digest": lambda uow: digest.build_digest(uow, settings, period),
        "budgets": lambda uow: budgets.all_figures(uow, year, settings),
    }.items():
        for plan in _plans(database, job, clock.now()):
            for ix in PARTIAL:
                if ix in plan:
                    used.setdefault(ix, []).append(name)
    assert set(used) == set(PARTIAL), f"no read uses {set(PARTIAL) - set(used)} any more (used: {used})"
    # the ones each read path relies on
    assert "overview (all)" in used["ix_wish_fulfilled_at"] and "overview (all)" in used["ix_wish_phone_visit"]
    assert "overview (community)" in used["ix_wish_community_published"]
    assert "digest" in used["ix_wish_published_cohort"]


def _submit(database: Database, clock: FrozenClock) -> int:
    def job(uow: UnitOfWork) -> int:
        community = OrgUnit(kind="community", name="一社区")
        uow.session.add(community)
        uow.flush()
        resident = Person(openid="oResident", created_at=uow.now, community_id=community.id)
        uow.session.add(resident)
        uow.flush()
        wish = uow.wishes.add(Wish(resident_id=resident.id or 0, content="楼道灯坏了", masked="楼道灯坏了", category="维修",
                                   community_id=community.id, created_at=uow.now),
                              actor=resident, actor_role="resident", now=uow.now)
        return wish.id or 0
    return database.run_sync(job, clock.now())


def _entries(database: Database) -> dict[str, int]:
    """How many entries each index on `wish` holds (SQLite: cells of its leaf pages; PostgreSQL:
    a B-tree that was never inserted into is its metapage alone, one page)."""
    with database.engine.connect() as conn:
        if database.engine.dialect.name == "sqlite":
            names = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'wish'")).scalars().all()
            cells = dict(conn.execute(text("SELECT name, sum(ncell) FROM dbstat WHERE pagetype = 'leaf' GROUP BY name")).all())
            return {n: int(cells.get(n) or 0) for n in names}
        rows = conn.execute(text("SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) / current_setting('block_size')::int "
                                 "FROM pg_index WHERE indrelid = 'wish'::regclass AND NOT indisprimary")).all()
        return {name: int(pages) - 1 for name, pages in rows}


def test_a_new_wish_is_in_none_of_the_partial_indexes(database: Database, clock: FrozenClock) -> None:
    before = _entries(database)
    assert not any(before.values()), before  # an empty table (PostgreSQL: truncated, so the indexes are rebuilt empty)
    wish_id = _submit(database, clock)
    with database.engine.connect() as conn:
        row = conn.execute(select(Wish.published_at, Wish.fulfilled_at, Wish.phone_visit_since)
                           .where(Wish.id == wish_id)).one()
    assert tuple(row) == (None, None, None)
    entered = {name for name, n in _entries(database).items() if n}
    assert entered == ENTERED, f"a new wish is now also in {entered - ENTERED}; no longer in {ENTERED - entered}"
    assert not entered & set(PARTIAL)
