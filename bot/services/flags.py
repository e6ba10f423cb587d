"""Honest numbers (issue 9): wishes whose figures an admin should check before reporting them.

Each flag is one SQL query (joins and GROUP BY, no Python loop over the table):
- self_claim: a claimer who is the wish's resident or the admin who filed it, or whose phone is
  the wish's contact phone (the same household or phone filed and claimed it);
- shared_phone: the resident and the claimer have the same phone number on record;
- fast_close: closed less than `settings.min_close_hours` after it was claimed;
- proxy_visits: an admin who recorded at least `settings.proxy_visit_flag_min` return visits (回访)
  on wishes they filed themselves (代办).
Shown in `统计` (a stats section), in every digest and on the dashboard (/admin/flags).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Sequence

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from bot import messages
from bot.config import Settings
from storage.db import UnitOfWork
from storage.models import Claim, Person, Wish, WishEvent

KINDS = ("self_claim", "shared_phone", "fast_close", "proxy_visits")
CODES_SHOWN = 20


@dataclass(frozen=True)
class Flag:
    kind: str
    wish_ids: tuple[int, ...]
    person: str | None = None  # the proxy, for proxy_visits

    def label(self, settings: Settings) -> str:
        return messages.FLAG_KINDS[self.kind].format(hours=f"{settings.min_close_hours:g}", n=len(self.wish_ids))

    def line(self, settings: Settings) -> str:
        shown = list(self.wish_ids[:CODES_SHOWN])
        codes = messages.STATS_CODE_SEP.join(str(i) for i in shown)
        if len(self.wish_ids) > len(shown):
            codes += messages.DIGEST_MORE.format(n=len(self.wish_ids) - len(shown))
        if self.person is not None:
            return messages.FLAG_PROXY_LINE.format(kind=self.label(settings), name=self.person, codes=codes)
        return messages.FLAG_WISH_LINE.format(kind=self.label(settings), codes=codes)


def _scoped(stmt: Any, community_id: int | None) -> Any:
    return stmt if community_id is None else stmt.where(Wish.community_id == community_id)


def _ids(uow: UnitOfWork, stmt: Any) -> tuple[int, ...]:
    return tuple(uow.session.execute(stmt).scalars().all())


def self_claims(uow: UnitOfWork, *, community_id: int | None = None) -> tuple[int, ...]:
    claimer = aliased(Person)
    stmt = (select(Wish.id).join(Claim, Claim.wish_id == Wish.id).join(claimer, claimer.id == Claim.member_id)
            .where(or_(Claim.member_id == Wish.resident_id, Claim.member_id == Wish.filed_by_id,
                       and_(claimer.phone.is_not(None), claimer.phone == Wish.contact_phone)))
            .group_by(Wish.id).order_by(Wish.id))
    return _ids(uow, _scoped(stmt, community_id))


def shared_phones(uow: UnitOfWork, *, community_id: int | None = None) -> tuple[int, ...]:
    """Resident and claimer share a phone (not already a self_claim through the contact phone)."""
    claimer, resident = aliased(Person), aliased(Person)
    stmt = (select(Wish.id).join(Claim, Claim.wish_id == Wish.id).join(claimer, claimer.id == Claim.member_id)
            .join(resident, resident.id == Wish.resident_id)
            .where(Claim.member_id != Wish.resident_id, claimer.phone.is_not(None), claimer.phone == resident.phone,
                   or_(Wish.contact_phone.is_(None), Wish.contact_phone != claimer.phone))
            .group_by(Wish.id).order_by(Wish.id))
    return _ids(uow, _scoped(stmt, community_id))


def fast_closes(uow: UnitOfWork, settings: Settings, *, community_id: int | None = None) -> tuple[int, ...]:
    if uow.dialect == "sqlite":  # naive UTC text: compare day fractions
        quick = (func.julianday(Wish.closed_at) - func.julianday(Wish.claimed_at)) < settings.min_close_hours / 24
    else:
        quick = (Wish.closed_at - Wish.claimed_at) < timedelta(hours=settings.min_close_hours)
    stmt = (select(Wish.id).where(Wish.closed_at.is_not(None), Wish.claimed_at.is_not(None), quick)
            .order_by(Wish.id))
    return _ids(uow, _scoped(stmt, community_id))


def proxy_visits(uow: UnitOfWork, settings: Settings, *, community_id: int | None = None) -> list[Flag]:
    """Admins answering return visits on wishes they filed, at least `proxy_visit_flag_min` of them."""
    own_visit = and_(WishEvent.action == "visit", WishEvent.actor_id == Wish.filed_by_id)
    base = _scoped(select(WishEvent.actor_id).join(Wish, Wish.id == WishEvent.wish_id).where(own_visit), community_id)
    heavy = base.group_by(WishEvent.actor_id).having(func.count(func.distinct(Wish.id)) >= settings.proxy_visit_flag_min)
    actors = [a for a in uow.session.execute(heavy).scalars().all() if a is not None]
    if not actors:
        return []
    rows = uow.session.execute(
        _scoped(select(WishEvent.actor_id, Wish.id).join(Wish, Wish.id == WishEvent.wish_id)
                .where(own_visit, WishEvent.actor_id.in_(actors)), community_id)
        .group_by(WishEvent.actor_id, Wish.id).order_by(WishEvent.actor_id, Wish.id)).all()
    names = {p.id: p.name or messages.ROLE_NAMES["admin"] + str(p.id)
             for p in uow.session.execute(select(Person).where(Person.id.in_(actors))).scalars()}
    return [Flag("proxy_visits", tuple(w for a, w in rows if a == actor), names.get(actor)) for actor in actors]


def all_flags(uow: UnitOfWork, settings: Settings, *, community_id: int | None = None) -> list[Flag]:
    """Every flag with at least one wish, in KINDS order."""
    found = [Flag("self_claim", self_claims(uow, community_id=community_id)),
             Flag("shared_phone", shared_phones(uow, community_id=community_id)),
             Flag("fast_close", fast_closes(uow, settings, community_id=community_id))]
    return [f for f in found if f.wish_ids] + proxy_visits(uow, settings, community_id=community_id)


def flag_lines(flags: Sequence[Flag], settings: Settings) -> list[str]:
    return [f.line(settings) for f in flags]


def stats_section(uow: UnitOfWork, settings: Settings) -> str:
    """The `统计` block ("" when nothing needs checking)."""
    flags = all_flags(uow, settings)
    if not flags:
        return ""
    return "\n".join([messages.FLAGS_HEADER.format(n=len(flags)), *flag_lines(flags, settings)])


