"""What the public wish wall shows: one read job, rendered to HTML in the same worker thread.

Only wishes a resident left public (`Wish.public`), never one concerning a minor, and only the
states whose progress residents follow: published, claimed, fulfilled, rated and closed (the
results are what "结果接受群众检验" asks to show). Text is `wish.masked`, masked once more here as
a second guard; members' names are never shown, only the claiming branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import jinja2
from sqlalchemy import select

from bot import messages, privacy
from bot.admin_web.queries import RATE_DAYS, Rate, period_rates
from bot.config import Settings
from bot.lifecycle import WishStatus
from bot.timefmt import fmt_date, fmt_iso_local
from storage.db import UnitOfWork
from storage.models import Claim, OrgUnit, Wish

PAGE_SIZE = 100
SHOWN = (WishStatus.PUBLISHED.value, WishStatus.CLAIMED.value, WishStatus.FULFILLED.value,
         WishStatus.RATED.value, WishStatus.CLOSED.value)
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("bot.wall", "templates"), autoescape=True)


@dataclass(frozen=True)
class WallRow:
    code: int
    category: str
    text: str
    status: str
    state: str  # css class: waiting | doing | done
    waited: str
    branch: str
    community: str
    fulfilled: str


def span_text(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, hours = divmod(minutes // 60, 24)
    if days and hours:
        return messages.SPAN_DAYS_HOURS.format(days=days, hours=hours)
    if days:
        return messages.SPAN_DAYS.format(days=days)
    if hours:
        return messages.SPAN_HOURS.format(hours=hours)
    if minutes:
        return messages.SPAN_MINUTES.format(minutes=minutes)
    return messages.WALL["just_now"]


def find_community(uow: UnitOfWork, key: str) -> OrgUnit | None:
    """A community by its id (digits) or its exact name."""
    key = key.strip()
    if key.isdigit():
        unit = uow.org.get(int(key))
        return unit if unit is not None and unit.kind == "community" else None
    return uow.org.by_name("community", key)


def _rows(uow: UnitOfWork, community_id: int | None, settings: Settings) -> list[WallRow]:
    stmt = select(Wish).where(Wish.public.is_(True), Wish.concerns_minor.is_(False), Wish.status.in_(SHOWN))
    if community_id is not None:
        stmt = stmt.where(Wish.community_id == community_id)
    wishes = list(uow.session.execute(stmt.order_by(Wish.id.desc()).limit(PAGE_SIZE)).scalars())
    claim_ids = {w.claim_id for w in wishes if w.claim_id}
    branch_of = dict(uow.session.execute(select(Claim.id, Claim.branch_id).where(Claim.id.in_(claim_ids))).all()) if claim_ids else {}
    unit_ids = {b for b in branch_of.values() if b} | {w.community_id for w in wishes if w.community_id}
    names = dict(uow.session.execute(select(OrgUnit.id, OrgUnit.name).where(OrgUnit.id.in_(unit_ids))).all()) if unit_ids else {}
    rows = []
    for w in wishes:
        claimed_at = w.claimed_at or (w.fulfilled_at if w.status != WishStatus.PUBLISHED.value else None)
        if claimed_at is not None:
            waited = messages.WALL["waited_claimed"].format(span=span_text(claimed_at - w.created_at))
        else:
            waited = messages.WALL["waiting"].format(span=span_text(uow.now - w.created_at))
        state = ("waiting" if w.status == WishStatus.PUBLISHED.value
                 else "doing" if w.status == WishStatus.CLAIMED.value else "done")
        rows.append(WallRow(code=w.id or 0, category=w.category, text=privacy.mask(w.masked),
                            status=messages.WALL["status"][w.status], state=state, waited=waited,
                            branch=names.get(branch_of.get(w.claim_id or 0) or 0, ""),
                            community=names.get(w.community_id or 0, ""), fulfilled=fmt_date(w.fulfilled_at, settings)))
    return rows


def render_wall(uow: UnitOfWork, settings: Settings, community: str | None) -> str | None:
    """The wall's HTML for the whole deployment (`community` None) or one community; None: no such community."""
    unit = find_community(uow, community) if community is not None else None
    if community is not None and unit is None:
        return None
    end = uow.now
    start = end - timedelta(days=RATE_DAYS)
    rates: tuple[Rate, Rate, Rate] = period_rates(uow, unit.id if unit else None, start, end, settings)
    communities = [] if unit else list(uow.org.all_of_kind("community"))
    title = messages.WALL["title_community"].format(community=unit.name) if unit else messages.WALL["title"]
    return _ENV.get_template("wall.html").render(
        W=messages.WALL, title=title, unit=unit, rows=_rows(uow, unit.id if unit else None, settings),
        rates=zip(("response", "resolution", "satisfaction"), rates), communities=communities,
        hours=settings.claim_sla_hours, start=fmt_date(start, settings), end=fmt_date(end, settings),
        updated=fmt_iso_local(end, settings))


def render_not_found() -> str:
    return _ENV.get_template("wall.html").render(W=messages.WALL, title=messages.WALL["title"], unit=None, rows=[],
                                                 rates=[], communities=[], not_found=True)
