"""A claim as a promise (issue 9): helpers of a group claim, the safety code, the lapse record.

The two clocks (contact and completion dates) are set by `claims.claim_wish`; the sweep that
lapses a claim whose contact date passed is `sweeps.sweep_contact_lapses`. A lapse stays on the
member's record (`Claim.outcome == "lapsed"`) and shows in `我的认领`, `统计` and the dashboard.
Helpers are stored on the lead's claim (`Claim.helpers`, person ids) and credited beside the
lead in quotas and branch rankings; the lead alone answers for the dates.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Sequence

from sqlalchemy import ColumnElement, case, func, select

from bot import messages
from bot.config import Settings
from bot.routing import Refused
from bot.services import notify
from bot.services.matching import year_start
from bot.services.members import member_label
from bot.timefmt import fmt_datetime
from storage.db import UnitOfWork
from storage.models import Claim, Person, Wish

SAFETY_CODE_DIGITS = 4
MAX_HELPERS = 5
NOT_CREDITED = ("released", "lapsed")  # a claim given back or lapsed earns no credit
LAPSE_NAMES_LISTED = 10


def new_safety_code() -> str:
    """Four random digits from the OS's secure source (said at the door, so never guessable)."""
    return f"{secrets.randbelow(10 ** SAFETY_CODE_DIGITS):0{SAFETY_CODE_DIGITS}d}"


# -- group claims ------------------------------------------------------------------------------

def split_helpers(words: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """(words before `协助`, helper names after it, or None when there is no `协助`)."""
    for i, word in enumerate(words):
        if word.lower() in messages.HELPER_WORDS:
            return list(words[:i]), [w for w in words[i + 1:] if w]
    return list(words), None


def find_helpers(uow: UnitOfWork, *, lead: Person, names: Iterable[str], wish_id: int) -> list[Person]:
    """Bound members by name, the lead's own branch first; unknown names are refused by name."""
    wanted = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not wanted:
        return []
    if len(wanted) > MAX_HELPERS:
        raise Refused(messages.CLAIM_HELPERS_TOO_MANY.format(max=MAX_HELPERS))
    if lead.name in wanted:
        raise Refused(messages.CLAIM_HELPERS_SELF)
    found = uow.session.execute(
        select(Person).where(Person.role == "member", Person.name.in_(wanted), Person.id != lead.id).order_by(Person.id)
    ).scalars().all()
    chosen: dict[str, Person] = {}
    for person in sorted(found, key=lambda p: (p.branch_id != lead.branch_id, p.id or 0)):
        chosen.setdefault(person.name or "", person)
    missing = [n for n in wanted if n not in chosen]
    if missing:
        raise Refused(messages.CLAIM_HELPERS_UNKNOWN.format(names=messages.LIST_SEP.join(missing)))
    return [chosen[n] for n in wanted]


def tell_helpers(uow: UnitOfWork, wish: Wish, lead: Person, helpers: Sequence[Person], settings: Settings) -> None:
    """Each helper is told privately who leads, which wish and by when (no resident details)."""
    if not helpers:
        return
    name, branch = member_label(uow, lead)
    text = messages.NOTICE_HELPER.format(branch=branch, lead=name, code=wish.id, title=wish.masked[:20],
                                         due=fmt_datetime(wish.due_at, settings))
    for helper in helpers:
        notify.to_person(uow, helper, text, kind="notice", dedupe_key=f"helper:{wish.claim_id}:{helper.id}")


def claim_reply(uow: UnitOfWork, claim: Claim, settings: Settings) -> str:
    """The lead's reply to `认领`: the completion date, the contact date, and the helpers named."""
    text = messages.CLAIM_OK.format(code=claim.wish_id, due=fmt_datetime(claim.due_at, settings))
    text += messages.CLAIM_CONTACT_TAIL.format(code=claim.wish_id, contact_due=fmt_datetime(claim.contact_due_at, settings))
    if claim.helpers:
        text += messages.CLAIM_HELPERS_TAIL.format(names=messages.LIST_SEP.join(helper_names(uow, claim)))
    return text


def helper_names(uow: UnitOfWork, claim: Claim) -> list[str]:
    people = [uow.people.get(i) for i in claim.helpers or []]
    return [p.name or str(p.id) for p in people if p is not None]


def helping(uow: UnitOfWork, member: Person) -> list[Claim]:
    """Open claims on which `member` is a helper (read in Python: JSON lists differ by backend)."""
    rows = uow.session.execute(select(Claim).where(Claim.ended_at.is_(None)).order_by(Claim.due_at)).scalars().all()
    return [c for c in rows if member.id in (c.helpers or [])]


def helping_lines(uow: UnitOfWork, claims: Sequence[Claim], settings: Settings) -> list[str]:
    lines = []
    for c in claims:
        wish = uow.wishes.find(c.wish_id)
        lead, _ = member_label(uow, uow.people.get(c.member_id))
        lines.append(messages.MY_CLAIMS_HELP_LINE.format(code=c.wish_id, text=(wish.masked if wish else "")[:20],
                                                         lead=lead, due=fmt_datetime(c.due_at, settings)))
    return lines


@dataclass
class HelperCredits:
    """What helpers earned since a date: claims per member, fulfilled wishes per extra branch."""

    claims: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    branch_fulfilled: dict[int, int] = field(default_factory=lambda: defaultdict(int))


def has_helpers(dialect: str) -> ColumnElement[bool]:
    """SQL: the claim names at least one helper (`[]`, JSON null and SQL NULL do not).

    SQLite's json_array_length is 0 for a non-array. PostgreSQL's raises on one (`helpers` is
    `json`, not `jsonb`), and AND does not fix the order of evaluation there, so only an array is
    measured (CASE does).
    """
    if dialect == "postgresql":
        length = case((func.json_typeof(Claim.helpers) == "array", func.json_array_length(Claim.helpers)), else_=0)
    else:
        length = func.json_array_length(Claim.helpers)
    return length > 0


def _with_helpers(uow: UnitOfWork, since: datetime, until: datetime | None = None) -> list[Claim]:
    """Group claims made since `since` (before `until`): filtered in SQL, the period's other claims
    are never loaded."""
    stmt = select(Claim).where(Claim.claimed_at >= since, has_helpers(uow.dialect))
    if until is not None:
        stmt = stmt.where(Claim.claimed_at < until)
    return list(uow.session.execute(stmt.order_by(Claim.id)).scalars().all())


def helper_branches(uow: UnitOfWork, claims: Iterable[Claim]) -> dict[int, set[int]]:
    """claim id → the branches of its helpers (one query for all helpers)."""
    claims = [c for c in claims if c.helpers]
    ids = {h for c in claims for h in c.helpers}
    if not ids:
        return {}
    branch_of = dict(uow.session.execute(select(Person.id, Person.branch_id).where(Person.id.in_(ids))).all())
    return {c.id or 0: {b for h in c.helpers if (b := branch_of.get(h)) is not None} for c in claims}


def helper_credits(uow: UnitOfWork, since: datetime) -> HelperCredits:
    """Credits for quotas: each helper gets the claim; each helper's other branch gets the fulfilled wish."""
    return credits_from(uow, _with_helpers(uow, since), since)


def credits_from(uow: UnitOfWork, group_claims: Iterable[Claim], since: datetime) -> HelperCredits:
    """`helper_credits` over the given group claims of the period (those with helpers)."""
    credits = HelperCredits()
    claims = [c for c in group_claims if c.outcome not in NOT_CREDITED]
    branches = helper_branches(uow, claims)
    for c in claims:
        for h in set(c.helpers):
            credits.claims[h] += 1
        if c.outcome == "fulfilled" and c.ended_at is not None and c.ended_at >= since:
            for b in branches.get(c.id or 0, set()) - {c.branch_id}:
                credits.branch_fulfilled[b] += 1
    return credits


# -- lapses --------------------------------------------------------------------------------

def lapse_count(uow: UnitOfWork, member_id: int) -> int:
    """Claims of this member that lapsed (contact date missed), ever: they stay on the record."""
    return int(uow.session.execute(select(func.count()).select_from(Claim).where(
        Claim.member_id == member_id, Claim.outcome == "lapsed")).scalar_one())


def lapses_by_member(uow: UnitOfWork, member_ids: Iterable[int] | None = None,
                     since: datetime | None = None) -> dict[int, int]:
    stmt = select(Claim.member_id, func.count()).where(Claim.outcome == "lapsed")
    if member_ids is not None:
        stmt = stmt.where(Claim.member_id.in_(list(member_ids)))
    if since is not None:
        stmt = stmt.where(Claim.ended_at >= since)
    return {int(m): int(n) for m, n in uow.session.execute(stmt.group_by(Claim.member_id)).all()}


def lapse_section(uow: UnitOfWork, settings: Settings) -> str:
    """The lapse line of `统计`: this year's lapses, with the members named."""
    by_member = lapses_by_member(uow, since=year_start(uow.now, settings))
    if not by_member:
        return ""
    people = {p.id: p for p in uow.session.execute(select(Person).where(Person.id.in_(list(by_member)))).scalars()}
    ranked = sorted(by_member.items(), key=lambda kv: (-kv[1], kv[0]))[:LAPSE_NAMES_LISTED]
    names = messages.LIST_SEP.join(
        messages.STATS_LAPSE_NAME.format(name=(people[m].name if m in people and people[m].name else m), n=n)
        for m, n in ranked)
    return messages.STATS_LAPSES.format(n=sum(by_member.values())) + messages.STATS_LAPSE_NAMES.format(names=names)

