"""The dashboard's reads, all scoped: a community admin's every query carries its community.

Synchronous jobs of a `UnitOfWork` (run through `Database.read`/`write`, off the event loop).
The wishes table pages by keyset (`id < :cursor ORDER BY id DESC LIMIT n`), never OFFSET.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from sqlalchemy import func, select, update

from bot.auth import AdminView
from bot.config import Settings
from bot.lifecycle import WishStatus
from bot.services import promises
from storage.db import UnitOfWork
from storage.models import Claim, OrgUnit, Outbox, Person, Wish, WishEvent

PAGE = 50
RATE_DAYS = 30
TREND_WEEKS = 12


class OutOfScope(LookupError):
    """A wish that does not exist or lies outside the admin's community: answered with 404."""


def _scope(stmt: Any, admin: AdminView) -> Any:
    return stmt if admin.is_global else stmt.where(Wish.community_id == admin.community_id)


def _count(uow: UnitOfWork, admin: AdminView, *conds: Any) -> int:
    stmt = _scope(select(func.count()).select_from(Wish), admin).where(*conds)
    return int(uow.session.execute(stmt).scalar_one())


@dataclass
class Rate:
    numerator: int
    denominator: int

    @property
    def percent(self) -> str:
        return f"{100 * self.numerator / self.denominator:.1f}%" if self.denominator else "—"


@dataclass
class Overview:
    start: datetime
    end: datetime
    response: Rate
    resolution: Rate
    satisfaction: Rate
    by_state: dict[str, int]
    trend: list[tuple[datetime, int, int]]  # week start, submitted, fulfilled
    overdue: int = 0
    phone_visit: int = 0


def overview(uow: UnitOfWork, admin: AdminView, settings: Settings) -> Overview:
    """The three rates over wishes published in the last month, counts by state, weekly trend."""
    end = uow.now
    start = end - timedelta(days=RATE_DAYS)
    response, resolution, satisfaction = period_rates(uow, admin.community_id, start, end, settings)
    rows = uow.session.execute(_scope(select(Wish.status, func.count()), admin).group_by(Wish.status)).all()
    by_state = {s.value: 0 for s in WishStatus} | {status: int(n) for status, n in rows}
    local = end.astimezone(settings.tz)
    this_monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    trend = []
    for i in range(TREND_WEEKS - 1, -1, -1):
        w0 = this_monday - timedelta(weeks=i)
        w1 = w0 + timedelta(weeks=1)
        trend.append((w0, _count(uow, admin, Wish.created_at >= w0, Wish.created_at < w1),
                      _count(uow, admin, Wish.fulfilled_at >= w0, Wish.fulfilled_at < w1)))
    overdue = _count(uow, admin, Wish.status == WishStatus.CLAIMED.value, Wish.due_at < end)
    phone_visit = _count(uow, admin, Wish.phone_visit_since.is_not(None))
    return Overview(start, end, response, resolution, satisfaction, by_state, trend, overdue, phone_visit)


def period_rates(uow: UnitOfWork, community_id: int | None, start: datetime, end: datetime,
                 settings: Settings) -> tuple[Rate, Rate, Rate]:
    """Response, resolution and satisfaction over wishes published in [start, end) (one community, or all).

    Shared by the dashboard overview and the public wish wall (bot/wall).
    """
    def count(*conds: Any) -> int:
        stmt = select(func.count()).select_from(Wish).where(*conds)
        if community_id is not None:
            stmt = stmt.where(Wish.community_id == community_id)
        return int(uow.session.execute(stmt).scalar_one())

    in_period = (Wish.published_at >= start, Wish.published_at < end)
    published = count(*in_period)
    sla = timedelta(hours=settings.claim_sla_hours)
    claimed = responded = 0
    stmt = select(Wish.published_at, Wish.claimed_at).where(*in_period, Wish.claimed_at.is_not(None))
    if community_id is not None:
        stmt = stmt.where(Wish.community_id == community_id)
    for published_at, claimed_at in uow.session.execute(stmt.execution_options(yield_per=1000)):
        claimed += 1
        responded += claimed_at - published_at <= sla
    fulfilled = count(*in_period, Wish.claimed_at.is_not(None), Wish.fulfilled_at.is_not(None))
    rated = count(*in_period, Wish.rating.is_not(None))
    happy = count(*in_period, Wish.rating >= 4)
    return Rate(responded, published), Rate(fulfilled, claimed), Rate(happy, rated)


@dataclass
class WishFilter:
    state: str = ""
    category: str = ""
    tier: str = ""
    community: int | None = None
    branch: int | None = None
    overdue: bool = False
    phone_visit: bool = False
    before: int | None = None

    def query(self, **changes: Any) -> dict[str, str]:
        """The filter as URL query parameters (for links to the next page)."""
        values = {**self.__dict__, **changes}
        return {k: ("1" if v is True else str(v)) for k, v in values.items() if v not in (None, "", False)}


@dataclass
class Names:
    """Display names of the people and units a page mentions, looked up once per page."""

    people: dict[int, Person] = field(default_factory=dict)
    units: dict[int, str] = field(default_factory=dict)

    def unit(self, unit_id: int | None) -> str:
        return self.units.get(unit_id or 0, "")

    def person(self, person_id: int | None) -> Person | None:
        return self.people.get(person_id or 0)


def names_for(uow: UnitOfWork, person_ids: Iterable[int | None], unit_ids: Iterable[int | None]) -> Names:
    pids = {p for p in person_ids if p}
    uids = {u for u in unit_ids if u}
    people = {p.id or 0: p for p in uow.session.execute(select(Person).where(Person.id.in_(pids))).scalars()} if pids else {}
    units = {u.id or 0: u.name for u in uow.session.execute(select(OrgUnit).where(OrgUnit.id.in_(uids))).scalars()} if uids else {}
    return Names(people, units)


@dataclass
class WishPage:
    wishes: Sequence[Wish]
    names: Names
    next_cursor: int | None


def wishes_page(uow: UnitOfWork, admin: AdminView, flt: WishFilter) -> WishPage:
    stmt = _scope(select(Wish), admin)
    if flt.state:
        stmt = stmt.where(Wish.status == flt.state)
    if flt.category:
        stmt = stmt.where(Wish.category == flt.category)
    if flt.tier:
        stmt = stmt.where(Wish.tier == flt.tier)
    if flt.community:
        stmt = stmt.where(Wish.community_id == flt.community)
    if flt.branch:
        stmt = stmt.join(Claim, Claim.id == Wish.claim_id).where(Claim.branch_id == flt.branch)
    if flt.overdue:
        stmt = stmt.where(Wish.status == WishStatus.CLAIMED.value, Wish.due_at < uow.now)
    if flt.phone_visit:
        stmt = stmt.where(Wish.phone_visit_since.is_not(None))
    if flt.before:
        stmt = stmt.where(Wish.id < flt.before)
    rows = list(uow.session.execute(stmt.order_by(Wish.id.desc()).limit(PAGE + 1)).scalars())
    page, more = rows[:PAGE], len(rows) > PAGE
    names = names_for(uow, [w.resident_id for w in page] + [w.claimer_id for w in page], [w.community_id for w in page])
    return WishPage(page, names, page[-1].id if more and page else None)


def scoped_wish(uow: UnitOfWork, admin: AdminView, wish_id: int) -> Wish:
    wish = uow.wishes.find(wish_id)
    if wish is None or (not admin.is_global and wish.community_id != admin.community_id):
        raise OutOfScope(wish_id)
    return wish


@dataclass
class WishDetail:
    wish: Wish
    events: Sequence[WishEvent]
    names: Names
    branch: str


def wish_detail(uow: UnitOfWork, admin: AdminView, wish_id: int) -> WishDetail:
    wish = scoped_wish(uow, admin, wish_id)
    events = uow.wishes.events(wish_id)
    claim = uow.claims.get(wish.claim_id) if wish.claim_id else None
    names = names_for(uow, [wish.resident_id, wish.claimer_id, *(e.actor_id for e in events)],
                      [wish.community_id, wish.grid_id, claim.branch_id if claim else None])
    return WishDetail(wish, events, names, names.unit(claim.branch_id) if claim else "")


def year_start(now: datetime, settings: Settings) -> datetime:
    return now.astimezone(settings.tz).replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)


def members(uow: UnitOfWork, admin: AdminView, settings: Settings) -> list[tuple[Person, str, int, int, int]]:
    """(member, branch, fulfilled this year, open claims, lapsed claims ever), most fulfilled first."""
    since = year_start(uow.now, settings)
    stmt = select(Person).where(Person.role == "member")
    if not admin.is_global:
        stmt = stmt.where(Person.community_id == admin.community_id)
    people = list(uow.session.execute(stmt.order_by(Person.id).limit(1000)).scalars())
    ids = [p.id for p in people]
    done = dict(uow.session.execute(select(Wish.claimer_id, func.count()).where(
        Wish.claimer_id.in_(ids), Wish.fulfilled_at >= since).group_by(Wish.claimer_id)).all()) if ids else {}
    open_ = dict(uow.session.execute(select(Claim.member_id, func.count()).where(
        Claim.member_id.in_(ids), Claim.ended_at.is_(None)).group_by(Claim.member_id)).all()) if ids else {}
    names = names_for(uow, [], [p.branch_id for p in people])
    lapses = promises.lapses_by_member(uow, ids) if ids else {}  # issue 9: a lapse stays on the record
    rows = [(p, names.unit(p.branch_id), int(done.get(p.id, 0)), int(open_.get(p.id, 0)), lapses.get(p.id or 0, 0))
            for p in people]
    return sorted(rows, key=lambda r: (-r[2], r[0].id or 0))


def branches(uow: UnitOfWork, admin: AdminView, settings: Settings) -> list[tuple[OrgUnit, int]]:
    """Branches ranked by wishes their members finished this year."""
    since = year_start(uow.now, settings)
    stmt = select(OrgUnit).where(OrgUnit.kind == "branch")
    if not admin.is_global:
        stmt = stmt.where(OrgUnit.parent_id == admin.community_id)
    units = list(uow.session.execute(stmt).scalars())
    ids = [u.id for u in units]
    done = dict(uow.session.execute(
        select(Claim.branch_id, func.count()).join(Wish, Wish.claim_id == Claim.id)
        .where(Claim.branch_id.in_(ids), Wish.fulfilled_at >= since).group_by(Claim.branch_id)).all()) if ids else {}
    helped = promises.helper_credits(uow, since).branch_fulfilled  # issue 9: a helper's branch shares the credit
    return sorted(((u, int(done.get(u.id, 0)) + helped.get(u.id or 0, 0)) for u in units), key=lambda r: (-r[1], r[0].name))


def dead_outbox(uow: UnitOfWork, *, limit: int = 200) -> Sequence[Outbox]:
    return uow.session.execute(select(Outbox).where(Outbox.state == "dead").order_by(Outbox.id.desc()).limit(limit)).scalars().all()


def retry_outbox(uow: UnitOfWork, outbox_id: int) -> bool:
    """Re-arm a dead message: pending, no attempts, due now. False if it is not dead (any more)."""
    result = uow.session.execute(
        update(Outbox).where(Outbox.id == outbox_id, Outbox.state == "dead")
        .values(state="pending", attempts=0, next_attempt_at=uow.now, lease_until=None)
        .execution_options(synchronize_session=False))
    return bool(result.rowcount)


def communities(uow: UnitOfWork, admin: AdminView) -> Sequence[OrgUnit]:
    stmt = select(OrgUnit).where(OrgUnit.kind == "community")
    if not admin.is_global:
        stmt = stmt.where(OrgUnit.id == admin.community_id)
    return uow.session.execute(stmt.order_by(OrgUnit.name)).scalars().all()


def branch_units(uow: UnitOfWork, admin: AdminView) -> Sequence[OrgUnit]:
    stmt = select(OrgUnit).where(OrgUnit.kind == "branch")
    if not admin.is_global:
        stmt = stmt.where(OrgUnit.parent_id == admin.community_id)
    return uow.session.execute(stmt.order_by(OrgUnit.name)).scalars().all()
