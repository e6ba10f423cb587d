"""Budgets for material wishes (issue 10): a yearly amount per community, spent per wish and branch.

Figures for a community and a (local) year:
- spent: actual costs of wishes fulfilled that year, not counting costs still waiting for 批准;
- committed: estimated costs of wishes claimed but not yet fulfilled;
- remaining: budget − spent − committed (a community without a budget has 0).

A cost that would pass what remains needs an admin's `批准 <编号>` first. The estimate is checked
when a member claims (that is when it becomes committed): an unapproved claim past the remainder is
held — the wish stays in the hall and the admins are told. An actual cost reported with `完成 … 费用 <元>`
that passes the remainder (and is not covered by an approved estimate) is recorded, but counted as
spent only after 批准. Every check locks the community's budget row (`SELECT … FOR UPDATE` on
PostgreSQL; SQLite's single writer already serializes), so two claims or approvals at once cannot
both spend the same remainder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from bot import messages
from bot.config import Settings
from bot.lifecycle import WishStatus
from bot.logs import get_logger
from bot.routing import Refused
from bot.services import notify
from storage.db import UnitOfWork
from storage.models import Budget, Claim, OrgUnit, Person, Wish

log = get_logger("microwish.budgets")
CENT = 0.005
ESTIMATE_STATUSES = (WishStatus.SUBMITTED.value, WishStatus.DEFERRED.value, WishStatus.PUBLISHED.value)
_COST_RE = re.compile(rf"^(?P<note>.*?)\s*{messages.COST_WORD}\s*[:：]?\s*(?P<amount>\S*?)\s*{messages.YUAN}?\s*$", re.S)
_AMOUNT_RE = re.compile(r"^\d{1,9}(?:\.\d{1,2})?$")


def money(value: float | None) -> str:
    """`86.5`, `500`: yuan without trailing zeros."""
    return f"{value or 0:.2f}".rstrip("0").rstrip(".")


def parse_amount(text: str) -> float | None:
    text = text.strip().removesuffix(messages.YUAN).replace(",", "")
    return float(text) if _AMOUNT_RE.match(text) else None


def split_cost(note: str, *, code: int) -> tuple[str, float | None]:
    """`修好了 费用 86.5` → (`修好了`, 86.5); a note without `费用` is returned as it is."""
    m = _COST_RE.match(note.strip())
    if m is None or not any(ch.isdigit() for ch in m.group("amount")):
        return note, None  # `费用由社区出` is part of the note, not a cost
    amount = parse_amount(m.group("amount"))
    if amount is None:
        raise Refused(messages.COST_BAD_AMOUNT.format(code=code))
    return m.group("note"), amount


def year_of(now: datetime, settings: Settings) -> int:
    return now.astimezone(settings.tz).year


def _year_bounds(year: int, settings: Settings) -> tuple[datetime, datetime]:
    return datetime(year, 1, 1, tzinfo=settings.tz), datetime(year + 1, 1, 1, tzinfo=settings.tz)


@dataclass
class Figures:
    community_id: int | None
    community: str
    year: int
    amount: float | None  # None: no budget set
    spent: float
    committed: float
    pending: float

    @property
    def remaining(self) -> float:
        return round((self.amount or 0) - self.spent - self.committed, 2)

    def summary(self) -> str:
        amount = messages.BUDGET_AMOUNT.format(amount=money(self.amount)) if self.amount is not None else messages.BUDGET_NONE
        text = messages.BUDGET_SUMMARY.format(amount=amount, spent=money(self.spent), committed=money(self.committed),
                                              remaining=money(self.remaining))
        return text + (messages.BUDGET_PENDING_TAIL.format(pending=money(self.pending)) if self.pending else "")


def _sum(uow: UnitOfWork, column: object, *conds: object) -> float:
    return float(uow.session.execute(select(func.coalesce(func.sum(column), 0.0)).where(*conds)).scalar_one())


def figures(uow: UnitOfWork, community_id: int | None, year: int, settings: Settings, *,
            exclude_wish: int | None = None) -> Figures:
    """Budget, spent, committed and pending of one community and year (`exclude_wish`: leave one wish out)."""
    start, end = _year_bounds(year, settings)
    base = [Wish.community_id.is_(None) if community_id is None else Wish.community_id == community_id]
    if exclude_wish is not None:
        base.append(Wish.id != exclude_wish)
    done = [*base, Wish.fulfilled_at >= start, Wish.fulfilled_at < end, Wish.actual_cost.is_not(None)]
    budget = (uow.session.execute(select(Budget).where(Budget.community_id == community_id, Budget.year == year))
              .scalar_one_or_none() if community_id is not None else None)
    unit = uow.org.get(community_id)
    return Figures(community_id, unit.name if unit else messages.NO_COMMUNITY, year,
                   budget.amount if budget else None,
                   spent=_sum(uow, Wish.actual_cost, *done, Wish.cost_pending.is_(False)),
                   committed=_sum(uow, Wish.est_cost, *base, Wish.status == WishStatus.CLAIMED.value),
                   pending=_sum(uow, Wish.actual_cost, *done, Wish.cost_pending.is_(True)))


def all_figures(uow: UnitOfWork, year: int, settings: Settings, *, community_id: int | None = None) -> list[Figures]:
    """Every community with a budget that year or any cost on its wishes (one community when given)."""
    ids = set(uow.session.execute(select(Budget.community_id).where(Budget.year == year)).scalars())
    ids |= set(uow.session.execute(select(Wish.community_id).where(
        (Wish.est_cost.is_not(None)) | (Wish.actual_cost.is_not(None))).distinct()).scalars())
    if community_id is not None:
        ids = {community_id}
    found = [figures(uow, c, year, settings) for c in ids]
    return sorted(found, key=lambda f: (f.community_id is None, f.community))


def spent_by_branch(uow: UnitOfWork, year: int, settings: Settings, *, community_id: int | None = None) -> list[tuple[str, float]]:
    """Actual costs counted as spent that year, by the claiming branch (the claim's branch)."""
    start, end = _year_bounds(year, settings)
    stmt = (select(OrgUnit.name, func.sum(Wish.actual_cost)).join(Claim, Claim.id == Wish.claim_id)
            .join(OrgUnit, OrgUnit.id == Claim.branch_id)
            .where(Wish.fulfilled_at >= start, Wish.fulfilled_at < end, Wish.actual_cost.is_not(None),
                   Wish.cost_pending.is_(False)).group_by(OrgUnit.name))
    if community_id is not None:
        stmt = stmt.where(Wish.community_id == community_id)
    return sorted(((name, float(total)) for name, total in uow.session.execute(stmt)), key=lambda r: (-r[1], r[0]))


def lock(uow: UnitOfWork, community_id: int | None, year: int) -> None:
    """Hold the community's budget row until commit (PostgreSQL; SQLite writers are serialized already).

    Without a budget row the remainder is 0 and every cost needs 批准, so there is nothing to race for.
    """
    if community_id is not None:
        uow.session.execute(select(Budget.id).where(Budget.community_id == community_id, Budget.year == year)
                            .with_for_update())


def set_budget(uow: UnitOfWork, *, community_id: int, year: int, amount: float) -> Budget:
    """Create or change a community's budget for a year."""
    if amount < 0 or not 2000 <= year <= 2100:
        raise ValueError("the amount must be >= 0 and the year between 2000 and 2100")
    budget = uow.session.execute(select(Budget).where(Budget.community_id == community_id, Budget.year == year)
                                 .with_for_update()).scalar_one_or_none()
    if budget is None:
        budget = Budget(community_id=community_id, year=year, amount=amount, updated_at=uow.now)
        uow.session.add(budget)
    else:
        budget.amount, budget.updated_at = amount, uow.now
    uow.flush()
    log.info("budget.set", community_id=community_id, year=year, amount=amount)
    return budget


def set_estimate(uow: UnitOfWork, *, wish_id: int, amount: float | None, admin: Person) -> Wish:
    """An admin records (or clears) a wish's estimated cost before it is claimed (the claim checks it against
    the remainder; afterwards the member reports the actual cost). A changed estimate needs approval again."""
    wish = uow.wishes.get(wish_id)
    if amount is not None and amount < 0:
        raise Refused(messages.COST_BAD_AMOUNT.format(code=wish_id))
    if wish.status not in ESTIMATE_STATUSES:
        raise Refused(messages.COST_ESTIMATE_TOO_LATE.format(code=wish_id))
    if amount != wish.est_cost:
        wish.est_cost, wish.cost_approved_at = amount, None
        uow.wishes.note(wish, action="cost_estimate", actor=admin, actor_role=admin.role, now=uow.now,
                        note=f"{money(amount)}{messages.YUAN}" if amount is not None else None)
    return wish


def _title(wish: Wish) -> str:
    return wish.masked[:20]


def hold_claim(uow: UnitOfWork, *, wish_id: int, member: Person, settings: Settings) -> str | None:
    """The reply when claiming would commit an unapproved estimate past the remainder, else None.

    On None the budget row stays locked until the claim commits, so the check and the claim are one step.
    """
    wish = uow.wishes.find(wish_id)
    if (wish is None or wish.status != WishStatus.PUBLISHED.value or not wish.est_cost
            or wish.cost_approved_at is not None or wish.resident_id == member.id):
        return None
    year = year_of(uow.now, settings)
    lock(uow, wish.community_id, year)
    f = figures(uow, wish.community_id, year, settings)
    if wish.est_cost <= f.remaining + CENT:
        return None
    values = {"code": wish.id, "cost": money(wish.est_cost), "community": f.community, "year": year,
              "remaining": money(f.remaining)}
    notify.to_admins(uow, messages.COST_HELD_ADMIN.format(**values, title=_title(wish), name=member.name or ""),
                     dedupe_key=f"cost-held:{wish.id}:{money(wish.est_cost)}")
    log.info("budget.claim_held", wish_id=wish.id, member_id=member.id, cost=wish.est_cost, remaining=f.remaining)
    return messages.CLAIM_COST_HELD.format(**values)


def record_actual(uow: UnitOfWork, *, wish: Wish, cost: float, member: Person, settings: Settings) -> None:
    """Record a fulfilled wish's actual cost; past the remainder (and no approved estimate covering it) it waits
    for 批准 and does not count as spent until then."""
    year = year_of(uow.now, settings)
    lock(uow, wish.community_id, year)
    f = figures(uow, wish.community_id, year, settings, exclude_wish=wish.id)
    covered = wish.cost_approved_at is not None and wish.est_cost is not None and cost <= wish.est_cost + CENT
    pending = not covered and cost > f.remaining + CENT
    wish.actual_cost, wish.cost_pending = cost, pending
    if pending:
        wish.cost_approved_at = None
    uow.wishes.note(wish, action="cost_pending" if pending else "cost", actor=member, actor_role=member.role,
                    now=uow.now, note=f"{money(cost)}{messages.YUAN}")
    log.info("budget.cost_recorded", wish_id=wish.id, cost=cost, pending=pending)
    if pending:
        notify.to_admins(uow, messages.COST_PENDING_ADMIN.format(code=wish.id, cost=money(cost), community=f.community,
                                                                 year=year, remaining=money(f.remaining), title=_title(wish)),
                         dedupe_key=f"cost-pending:{wish.id}:{money(cost)}")


def cost_tail(uow: UnitOfWork, *, wish: Wish, settings: Settings) -> str:
    """The line added to the member's `完成` reply: where the reported cost went ("" without a cost)."""
    if wish.actual_cost is None:
        return ""
    year = year_of(uow.now, settings)
    f = figures(uow, wish.community_id, year, settings)
    template = messages.COST_TAIL_PENDING if wish.cost_pending else messages.COST_TAIL_OK
    return template.format(code=wish.id, cost=money(wish.actual_cost), community=f.community, year=year,
                           remaining=money(f.remaining))


def approve_cost(uow: UnitOfWork, *, wish_id: int, admin: Person, settings: Settings) -> str:
    """`批准 <编号>`: allow a wish's cost past the remainder. Exactly one of two simultaneous approvals wins."""
    wish = uow.wishes.get(wish_id)
    if wish.est_cost is None and wish.actual_cost is None:
        raise Refused(messages.COST_NONE.format(code=wish_id))
    year = year_of(uow.now, settings)
    lock(uow, wish.community_id, year)
    done = uow.session.execute(
        update(Wish).where(Wish.id == wish_id, Wish.cost_approved_at.is_(None))
        .values(cost_approved_at=uow.now, cost_pending=False).execution_options(synchronize_session=False))
    if not done.rowcount:
        raise Refused(messages.COST_ALREADY_APPROVED.format(code=wish_id))
    uow.session.refresh(wish)
    cost = wish.actual_cost if wish.actual_cost is not None else wish.est_cost
    uow.wishes.note(wish, action="approve_cost", actor=admin, actor_role=admin.role, now=uow.now,
                    note=f"{money(cost)}{messages.YUAN}")
    log.info("budget.cost_approved", wish_id=wish.id, admin_id=admin.id, cost=cost)
    if wish.status == WishStatus.PUBLISHED.value:
        notify.to_claim_channel(uow, messages.COST_APPROVED_CHANNEL.format(code=wish.id),
                                dedupe_key=f"cost-approved-post:{wish.id}")
    elif wish.actual_cost is not None and wish.claimer_id:
        notify.to_person(uow, uow.people.get(wish.claimer_id),
                         messages.COST_APPROVED_MEMBER.format(code=wish.id, cost=money(cost)),
                         dedupe_key=f"cost-approved:{wish.id}")
    f = figures(uow, wish.community_id, year, settings)
    return messages.COST_APPROVED.format(code=wish.id, cost=money(cost), community=f.community, year=year,
                                         summary=f.summary())
