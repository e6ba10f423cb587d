"""Matching members and wishes (README, section "Matching").

    score = skill·[a skill tag fits the wish] + grid·[same grid] + community·[same community, other grid]
            + quota·[claims this year < member_yearly_quota] + satisfaction·(mean rating − 3) / 2
            − load·open claims / member_max_open_claims

A member at the open-claims cap is left out. Ties go to fewer claims this year, then to the
member bound first. The weights come from `MICROWISH_MATCH_WEIGHTS` (JSON), over DEFAULT_WEIGHTS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

from sqlalchemy import func, select

from bot.categories import KEYWORDS
from bot.config import Settings
from bot.lifecycle import Role, WishStatus
from storage.db import UnitOfWork
from storage.models import Claim, Person, Wish

DEFAULT_WEIGHTS: dict[str, float] = {
    "skill": 3.0, "grid": 2.0, "community": 1.0, "quota": 2.0, "satisfaction": 1.0, "load": 1.0,
}


@dataclass(frozen=True)
class MemberStats:
    open_claims: int = 0
    claims_this_year: int = 0
    mean_rating: float | None = None


@dataclass(frozen=True)
class Match:
    member: Person
    score: float
    stats: MemberStats


def weights(settings: Settings) -> dict[str, float]:
    return DEFAULT_WEIGHTS | {k: float(v) for k, v in settings.match_weights.items() if k in DEFAULT_WEIGHTS}


def year_start(now: datetime, settings: Settings) -> datetime:
    """1 January 00:00 local time of the year `now` falls in."""
    return now.astimezone(settings.tz).replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)


def member_stats(uow: UnitOfWork, member_ids: Iterable[int], settings: Settings) -> dict[int, MemberStats]:
    """Open claims, claims this year and mean rating of fulfilled claims, for each member, in three queries."""
    ids = list(member_ids)
    if not ids:
        return {}
    s = uow.session
    open_n = dict(s.execute(select(Claim.member_id, func.count()).where(Claim.member_id.in_(ids), Claim.ended_at.is_(None))
                            .group_by(Claim.member_id)).all())
    year_n = dict(s.execute(select(Claim.member_id, func.count()).where(
        Claim.member_id.in_(ids), Claim.claimed_at >= year_start(uow.now, settings),
        (Claim.outcome.is_(None)) | (Claim.outcome.not_in(("released", "lapsed")))).group_by(Claim.member_id)).all())
    ratings = dict(s.execute(select(Claim.member_id, func.avg(Wish.rating)).join(Wish, Wish.id == Claim.wish_id).where(
        Claim.member_id.in_(ids), Claim.outcome == "fulfilled", Wish.rating.is_not(None)).group_by(Claim.member_id)).all())
    return {i: MemberStats(int(open_n.get(i, 0)), int(year_n.get(i, 0)),
                           float(ratings[i]) if ratings.get(i) is not None else None) for i in ids}


def skill_fits(member: Person, wish: Wish) -> bool:
    """A tag names the wish's category, appears in its text, or is one of the category's keywords."""
    tags = member.skills.split()
    words = KEYWORDS.get(wish.category, ())
    return any(t == wish.category or t in wish.masked or t in words for t in tags)


def score(member: Person, wish: Wish, stats: MemberStats, settings: Settings) -> float | None:
    """The member's score for the wish, or None when the member is at the open-claims cap."""
    if stats.open_claims >= settings.member_max_open_claims:
        return None
    w = weights(settings)
    total = w["skill"] * skill_fits(member, wish)
    if wish.grid_id is not None and member.grid_id == wish.grid_id:
        total += w["grid"]
    elif wish.community_id is not None and member.community_id == wish.community_id:
        total += w["community"]
    total += w["quota"] * (stats.claims_this_year < settings.member_yearly_quota)
    if stats.mean_rating is not None:
        total += w["satisfaction"] * (stats.mean_rating - 3) / 2
    total -= w["load"] * stats.open_claims / settings.member_max_open_claims
    return round(total, 6)


def rank_members(uow: UnitOfWork, wish: Wish, settings: Settings, *, exclude: Iterable[int] = ()) -> list[Match]:
    """Every member who may take the wish, best first."""
    skip = set(exclude)
    members = [m for m in uow.people.members() if m.id not in skip and m.role == Role.MEMBER]
    stats = member_stats(uow, [m.id or 0 for m in members], settings)
    ranked = []
    for m in members:
        st = stats[m.id or 0]
        value = score(m, wish, st, settings)
        if value is not None:
            ranked.append(Match(m, value, st))
    ranked.sort(key=lambda x: (-x.score, x.stats.claims_this_year, x.member.id or 0))
    return ranked


def hall_for(uow: UnitOfWork, member: Person, settings: Settings, *, exclude: Iterable[int] = (),
             limit: int = 10) -> list[Wish]:
    """Published, unclaimed wishes, best for this member first (then the longest waiting)."""
    skip = set(exclude)
    wishes: Sequence[Wish] = uow.wishes.with_status(WishStatus.PUBLISHED, limit=500)
    stats = member_stats(uow, [member.id or 0], settings)[member.id or 0]
    stats = MemberStats(0, stats.claims_this_year, stats.mean_rating)  # the hall lists even at the cap
    scored = [(score(member, w, stats, settings) or 0.0, w) for w in wishes if w.id not in skip]
    scored.sort(key=lambda sw: (-sw[0], sw[1].published_at or sw[1].created_at, sw[1].id or 0))
    return [w for _, w in scored[:limit]]
