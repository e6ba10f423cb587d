"""Honest numbers (issue 9): wishes whose figures an admin should check before reporting them.

Each flag is one SQL query (no Python loop over the table). At 1M wishes none of
them reads every claim or every closed wish: they start from the few claimers (or, for fast closes,
from an index on the close duration) and look up only what can match, so all-time stays cheap:
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

from sqlalchemy import and_, exists, func, or_, select, union
from sqlalchemy.orm import aliased

from bot import messages
from bot.config import Settings
from storage.db import UnitOfWork
from storage.models import Claim, Person, Wish, WishEvent, close_span

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


def _claimers() -> Any:
    """Everyone who ever claimed a wish (id), one index seek each on ix_claim_member_claimed (a loose
    index scan) rather than a pass over every claim: claimers are few (members and admins)."""
    seed = select(func.min(Claim.member_id).label("id")).cte("claimers", recursive=True)
    after = select(func.min(Claim.member_id)).where(Claim.member_id > seed.c.id).scalar_subquery()
    return seed.union_all(select(after).where(seed.c.id.is_not(None)))


def _claimed_by(claimers: Any) -> Any:
    """The wish has a claim by this claimer (on ix_claim_wish_id)."""
    return exists().where(Claim.wish_id == Wish.id, Claim.member_id == claimers.c.id)


def _sorted_ids(uow: UnitOfWork, parts: list[Any], community_id: int | None) -> tuple[int, ...]:
    """The distinct wish ids the parts find, in id order.

    The community is a filter on the few wishes found: on SQLite, which has no statistics, `+ 0`
    keeps it off the indexes (else it may walk the community's every wish). The few ids are sorted
    here rather than by an ORDER BY id that SQLite may answer by scanning the table in id order.
    """
    if community_id is not None:
        community = Wish.community_id + 0 if uow.dialect == "sqlite" else Wish.community_id
        parts = [p.where(community == community_id) for p in parts]
    stmt = parts[0] if len(parts) == 1 else union(*parts)
    return tuple(sorted(set(uow.session.execute(stmt).scalars().all())))


def self_claims(uow: UnitOfWork, *, community_id: int | None = None) -> tuple[int, ...]:
    """Wishes a claimer claimed although they are its resident, filed it, or gave their phone as its contact.

    Each case starts from the claimers and looks up only their own wishes: by resident
    (ix_wish_resident_status); by contact phone (ix_wish_contact_phone); and for a claimer who has
    filed any wish (ix_wish_filed_by), their claims (ix_claim_member_claimed): one person's claims are
    few, an admin's 代办 wishes may be many.
    """
    m, claimer = _claimers(), aliased(Person)
    resident = select(Wish.id).select_from(m).join(Wish, Wish.resident_id == m.c.id).where(_claimed_by(m))
    filed = aliased(Wish)
    files = exists().where(filed.filed_by_id == m.c.id)  # the few admins who file (代办)
    filer = (select(Wish.id).select_from(m).join(Claim, Claim.member_id == m.c.id).join(Wish, Wish.id == Claim.wish_id)
             .where(files, Wish.filed_by_id == m.c.id))
    contact = (select(Wish.id).select_from(m).join(claimer, claimer.id == m.c.id)
               .join(Wish, Wish.contact_phone == claimer.phone)
               .where(claimer.phone.is_not(None), Wish.contact_phone.is_not(None), _claimed_by(m)))
    return _sorted_ids(uow, [resident, filer, contact], community_id)


def shared_phones(uow: UnitOfWork, *, community_id: int | None = None) -> tuple[int, ...]:
    """Resident and claimer share a phone (not already a self_claim through the contact phone).

    From each claimer with a phone to the people with that phone (ix_person_phone) and their wishes.
    """
    m, claimer, resident = _claimers(), aliased(Person), aliased(Person)
    stmt = (select(Wish.id).select_from(m).join(claimer, claimer.id == m.c.id)
            .join(resident, resident.phone == claimer.phone).join(Wish, Wish.resident_id == resident.id)
            .where(claimer.phone.is_not(None), resident.phone.is_not(None), Wish.resident_id != m.c.id,
                   or_(Wish.contact_phone.is_(None), Wish.contact_phone != claimer.phone), _claimed_by(m)))
    return _sorted_ids(uow, [stmt], community_id)


def fast_closes(uow: UnitOfWork, settings: Settings, *, community_id: int | None = None) -> tuple[int, ...]:
    """Closed less than `min_close_hours` after the claim: a range of ix_wish_close_span (same expression)."""
    span = close_span(Wish.closed_at, Wish.claimed_at)
    if uow.dialect == "sqlite":  # naive UTC text: compare day fractions
        quick = span < settings.min_close_hours / 24
    else:
        quick = span < timedelta(hours=settings.min_close_hours)
    stmt = select(Wish.id).where(Wish.closed_at.is_not(None), Wish.claimed_at.is_not(None), quick)
    return _sorted_ids(uow, [stmt], community_id)


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


