"""Yearly claim quotas: each member's claims this year, each branch's finished wishes this year.

Seed figures: at least one claim per member and three finished wishes per branch a year
(`member_yearly_quota`, `branch_yearly_quota`). The section is appended to `统计`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from bot import messages
from bot.config import Settings
from bot.services import promises
from bot.services.matching import member_stats, year_start
from storage.db import UnitOfWork
from storage.models import Claim, OrgUnit

BELOW_LISTED = 10  # names shown of members still below the quota


@dataclass(frozen=True)
class QuotaFigures:
    year: int
    members_total: int
    members_done: int
    members_below: list[str]
    branches: list[tuple[str, int]]  # (branch name, wishes finished this year)


def quota_figures(uow: UnitOfWork, settings: Settings) -> QuotaFigures:
    members = list(uow.people.members())
    by_member = member_stats(uow, [m.id or 0 for m in members], settings)
    since = year_start(uow.now, settings)
    credits = promises.helper_credits(uow, since)  # issue 9: helpers of a group claim count too
    done = [m for m in members
            if by_member[m.id or 0].claims_this_year + credits.claims.get(m.id or 0, 0) >= settings.member_yearly_quota]
    below = [m.name or str(m.id) for m in members if m not in done]
    finished = dict(uow.session.execute(
        select(Claim.branch_id, func.count()).where(Claim.outcome == "fulfilled", Claim.ended_at >= since)
        .group_by(Claim.branch_id)).all())
    branches = uow.session.execute(select(OrgUnit).where(OrgUnit.kind == "branch").order_by(OrgUnit.name)).scalars().all()
    return QuotaFigures(since.year, len(members), len(done), below,
                        [(b.name, int(finished.get(b.id, 0)) + credits.branch_fulfilled.get(b.id or 0, 0))
                         for b in branches])


def quota_section(uow: UnitOfWork, settings: Settings) -> str:
    """The quota lines of `统计`."""
    f = quota_figures(uow, settings)
    lines = [messages.QUOTA_HEADER.format(year=f.year)]
    if not f.members_total:
        lines.append(messages.QUOTA_NO_MEMBERS)
    else:
        lines.append(messages.QUOTA_MEMBERS.format(done=f.members_done, total=f.members_total,
                                                   quota=settings.member_yearly_quota))
        if f.members_below:
            names = messages.LIST_SEP.join(f.members_below[:BELOW_LISTED]) + ("…" if len(f.members_below) > BELOW_LISTED else "")
            lines.append(messages.QUOTA_MEMBERS_BELOW.format(names=names))
    for name, n in f.branches:
        lines.append(messages.QUOTA_BRANCH_LINE.format(branch=name, n=n, quota=settings.branch_yearly_quota))
    return "\n".join(lines)

