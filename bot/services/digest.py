"""The admins' digests: weekly, ten-day and monthly figures over the last complete period.

Definitions (interface: "Rules and defaults"), all figures as of the period's end:
- counts: distinct wishes with a timeline event of that kind inside the period (new = submit,
  published = approve to published, claimed, fulfilled, closed, deferred, assigned);
- the cohort: wishes whose `published_at` lies in the period. Over it: response = first claim
  within `claim_sla_hours` of publishing / published; resolution = fulfilled / claimed;
  satisfaction = ratings >= 4 / ratings;
- medians: publishing → first claim, first claim → first fulfilment, over the cohort;
- branch ranking: claims made in the period by the branch's members (a group claim counts once for
  each branch among its lead and helpers), rate = claims the lead fulfilled by the period's end /
  claims; community ranking: the cohort by the wish's community, rate = fulfilled / published.
  Only units with >= `ranking_min_items` enter.
The action lists (overdue claims, phone visits) are as of the clock, for admins to act on.
"""

from __future__ import annotations

import base64
import hashlib
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import BigInteger, Integer, and_, case, cast, func, literal, or_, select, union_all

from bot import messages
from bot.config import Settings
from bot.inbound import MAX_REPLY_BYTES, split_utf8
from bot.lifecycle import WishStatus
from bot.services import flags, notify, promises
from bot.services.sweeps import member_name, on_phone_list, title_of
from bot.timefmt import fmt_date, local
from storage.db import UnitOfWork
from storage.models import Claim, OrgUnit, Outbox, Person, Wish, WishEvent

PERIOD_KINDS = ("week", "tenday", "month")
COUNT_KEYS = ("new", "published", "claimed", "fulfilled", "closed", "deferred", "assigned")
EVENT_OF_COUNT = {"new": "submit", "published": "approve", "claimed": "claim", "fulfilled": "fulfil",
                  "closed": "close", "deferred": "defer", "assigned": "assign"}
WEBHOOK_MARKDOWN_BYTES = 4096
SEND_HOUR = 9
LIST_MAX = 20
ADMIN_LIST_MAX = 5


@dataclass(frozen=True)
class Period:
    kind: str
    start: datetime  # local midnight, aware
    end: datetime  # local midnight after the last day (exclusive)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.start.date().isoformat()}"

    @property
    def last_day(self) -> date:
        return self.end.date() - timedelta(days=1)

    @property
    def send_at(self) -> datetime:
        """09:00 local on the day after the period: when the digest is due."""
        return datetime.combine(self.end.date(), time(SEND_HOUR), tzinfo=self.end.tzinfo)


def _midnight(d: date, settings: Settings) -> datetime:
    return datetime.combine(d, time(0), tzinfo=settings.tz)


def _tenday_start(d: date) -> date:
    return d.replace(day=1 if d.day <= 10 else 11 if d.day <= 20 else 21)


def last_complete_period(kind: str, now: datetime, settings: Settings) -> Period:
    """The last complete week (Mon–Mon), ten-day (1–10, 11–20, 21–end) or month before `now` (local)."""
    today = local(now, settings).date()
    if kind == "week":
        end = today - timedelta(days=today.weekday())
        start = end - timedelta(days=7)
    elif kind == "tenday":
        end = _tenday_start(today)
        start = _tenday_start(end - timedelta(days=1))
    elif kind == "month":
        end = today.replace(day=1)
        start = (end - timedelta(days=1)).replace(day=1)
    else:
        raise ValueError(f"unknown digest period {kind!r} (week, tenday, month)")
    return Period(kind, _midnight(start, settings), _midnight(end, settings))


@dataclass(frozen=True)
class Ranked:
    name: str
    num: int
    den: int


@dataclass
class Digest:
    period: Period
    now: datetime
    counts: dict[str, int]
    rates: dict[str, tuple[int, int]]  # name → (numerator, denominator)
    median_claim_hours: float | None
    median_fulfil_hours: float | None
    branches: list[Ranked]
    communities: list[Ranked]
    idle_members: list[str]
    overdue: list[str] = field(default_factory=list)  # the first LIST_MAX lines; the count is overdue_total
    phone_visits: list[str] = field(default_factory=list)
    overdue_total: int | None = None  # None: len(overdue)
    phone_total: int | None = None
    flags: list[str] = field(default_factory=list)  # issue 9: figures to check (bot/services/flags.py)
    budget_year: int = 0  # issue 10: budget, spent, committed, remaining per community (bot/services/budgets.py)
    budgets: list[str] = field(default_factory=list)


def epoch_us(column: Any, dialect: str) -> Any:
    """A UTC datetime column as exact integer microseconds since 1970 (SQL), for durations and medians.

    SQLite stores naive UTC text `YYYY-MM-DD HH:MM:SS.ffffff`: whole seconds from `strftime('%s')`
    of the first 19 characters (the fraction left out, since SQLite would round it to milliseconds)
    plus the six digits of the fraction. PostgreSQL's `extract(epoch …)` is an exact numeric.
    """
    if dialect == "sqlite":
        return (cast(func.strftime("%s", func.substr(column, 1, 19)), BigInteger) * _US
                + cast(func.substr(column, 21, 6), BigInteger))
    return cast(func.extract("epoch", column) * _US, BigInteger)


_US = 1_000_000


def _us_hours(us: int) -> float:
    """Integer microseconds → hours, the same float as `timedelta.total_seconds() / 3600`."""
    return us / _US / 3600


def _first_event_us(action: str, end: datetime, dialect: str) -> Any:
    """The first `action` event of the outer wish before `end`, as epoch microseconds (NULL: none)."""
    return (select(epoch_us(func.min(WishEvent.at), dialect))  # one aggregate, one index seek per wish
            .where(WishEvent.wish_id == Wish.id, WishEvent.action == action, WishEvent.at < end)
            .scalar_subquery())


def _cohort(uow: UnitOfWork, period: Period) -> Any:
    """The wishes published in the period, one row each: community, published/first claim/first fulfilment (µs), rating.

    Only the period's rows are read (the `published_at` index); the first events are index seeks
    (`ix_wish_event_wish_action_at`). Materialised once per statement.
    """
    d, end = uow.dialect, period.end
    rated = and_(Wish.rating.is_not(None), Wish.rated_at.is_not(None), Wish.rated_at < end)
    return (select(Wish.community_id.label("community_id"), epoch_us(Wish.published_at, d).label("p"),
                   _first_event_us("claim", end, d).label("fc"), _first_event_us("fulfil", end, d).label("ff"),
                   case((rated, Wish.rating), else_=None).label("rating"))
            .where(Wish.published_at >= period.start, Wish.published_at < end)
            .cte("cohort").prefix_with("MATERIALIZED"))


@dataclass
class _CohortFigures:
    """The cohort's figures: per community (published, responded, claimed, fulfilled, rated, satisfied), medians (µs)."""

    communities: dict[int | None, list[int]] = field(default_factory=dict)
    claim_middle: list[int] = field(default_factory=list)  # the one or two middle values of publish → first claim
    fulfil_middle: list[int] = field(default_factory=list)  # … of first claim → first fulfilment

    def total(self, i: int) -> int:
        return sum(row[i] for row in self.communities.values())


def _cohort_figures(uow: UnitOfWork, period: Period, settings: Settings) -> _CohortFigures:
    """One statement over the period's cohort: the counts per community and the middle durations.

    The medians' middle values are picked with `row_number()` over the durations in SQL, so only
    one or two values per median leave the database.
    """
    c = _cohort(uow, period)
    sla_us = int(timedelta(hours=settings.claim_sla_hours) / timedelta(microseconds=1))
    claimed, fulfilled = c.c.fc.is_not(None), c.c.ff.is_not(None)

    def count_if(cond: Any) -> Any:
        return func.sum(case((cond, 1), else_=0))

    counts = (select(literal("n").label("part"), c.c.community_id, func.count().label("v0"),
                     count_if(and_(claimed, c.c.fc - c.c.p <= sla_us)).label("v1"), count_if(claimed).label("v2"),
                     count_if(fulfilled).label("v3"), count_if(c.c.rating.is_not(None)).label("v4"),
                     count_if(c.c.rating >= 4).label("v5"))
              .group_by(c.c.community_id))

    def middle(part: str, duration: Any, *where: Any) -> Any:
        ranked = select(duration.label("us"), func.row_number().over(order_by=duration).label("rn"),
                        func.count().over().label("n")).where(*where).subquery()
        zero = literal(0, BigInteger)
        return select(literal(part), cast(literal(None), Integer), ranked.c.us, zero, zero, zero, zero, zero).where(
            ranked.c.rn.in_([(ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2]))

    stmt = union_all(counts, middle("c", c.c.fc - c.c.p, claimed), middle("f", c.c.ff - c.c.fc, claimed, fulfilled))
    out = _CohortFigures()
    for part, community, *values in uow.session.execute(stmt):
        if part == "n":
            out.communities[community] = [int(v or 0) for v in values]
        else:
            (out.claim_middle if part == "c" else out.fulfil_middle).append(int(values[0]))
    return out


def _median_hours(middle: list[int]) -> float | None:
    """The median in hours from the one or two middle µs values: equal to `statistics.median` over every duration."""
    return statistics.median(_us_hours(v) for v in sorted(middle)) if middle else None


def _counts(uow: UnitOfWork, start: datetime, end: datetime) -> dict[str, int]:
    """Distinct wishes per counted event in the period, counted in SQL over the `(action, at)` index range."""
    published = or_(WishEvent.action != "approve", WishEvent.to_status == WishStatus.PUBLISHED.value)
    rows = uow.session.execute(
        select(WishEvent.action, func.count(func.distinct(WishEvent.wish_id)))
        .where(WishEvent.action.in_(list(EVENT_OF_COUNT.values())), WishEvent.at >= start, WishEvent.at < end, published)
        .group_by(WishEvent.action)
    ).all()
    seen = {action: int(n) for action, n in rows}
    return {key: seen.get(action, 0) for key, action in EVENT_OF_COUNT.items()}


def _rank(groups: dict[str, tuple[int, int]], minimum: int) -> list[Ranked]:
    ranked = [Ranked(name, num, den) for name, (num, den) in groups.items() if den >= max(minimum, 1)]
    return sorted(ranked, key=lambda r: (-r.num / r.den, -r.den, r.name))


def _unit_names(uow: UnitOfWork, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {u.id: u.name for u in uow.session.execute(select(OrgUnit).where(OrgUnit.id.in_(ids))).scalars()}


def _branch_ranking(uow: UnitOfWork, period: Period, settings: Settings) -> list[Ranked]:
    """Claims made in the period per branch, and how many of them the lead fulfilled by the period's end.

    Tallied in SQL per lead branch; only group claims (with helpers, whose branches share the
    credit) are loaded to add their helpers' other branches.
    """
    start, end = period.start, period.end
    fulfilled = (select(WishEvent.id)
                 .where(WishEvent.wish_id == Claim.wish_id, WishEvent.action == "fulfil",
                        WishEvent.actor_id == Claim.member_id, WishEvent.at >= Claim.claimed_at,
                        WishEvent.at >= start, WishEvent.at < end)
                 .exists())
    done = case((fulfilled, 1), else_=0)
    lead = func.coalesce(Claim.branch_id, Person.branch_id)
    in_period = (Claim.claimed_at >= start, Claim.claimed_at < end)
    has_helpers = promises.has_helpers(uow.dialect)  # JSON null counts as none on both backends
    tally: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    groups = 0
    for branch, num, den, with_helpers in uow.session.execute(
            select(lead, func.sum(done), func.count(), func.sum(case((has_helpers, 1), else_=0)))
            .join(Person, Person.id == Claim.member_id).where(*in_period).group_by(lead)):
        groups += int(with_helpers or 0)
        if branch is not None:
            tally[int(branch)] = [int(num or 0), int(den)]
    group_claims = uow.session.execute(
        select(Claim, Person.branch_id, done).join(Person, Person.id == Claim.member_id).where(*in_period, has_helpers)
    ).all() if groups else []
    helper_branches = promises.helper_branches(uow, [c for c, _, _ in group_claims])  # issue 9
    for claim, person_branch, was_done in group_claims:
        lead_branch = claim.branch_id or person_branch
        for branch in helper_branches.get(claim.id or 0, set()) - {lead_branch}:
            tally[branch][1] += 1
            tally[branch][0] += int(was_done)
    names = _unit_names(uow, set(tally))
    return _rank({names.get(b, str(b)): (n, d) for b, (n, d) in tally.items()}, settings.ranking_min_items)


def _idle_members(uow: UnitOfWork, since: datetime, end: datetime) -> list[str]:
    """Members without a claim made in [since, end): one index seek per member, not a scan of the claims."""
    claimed = (select(Claim.id).where(Claim.member_id == Person.id, Claim.claimed_at >= since, Claim.claimed_at < end)
               .exists())
    idle = uow.session.execute(select(Person).where(Person.role == "member", ~claimed).order_by(Person.id)).scalars()
    return [member_name(p) for p in idle]


def build_digest(uow: UnitOfWork, settings: Settings, period: Period) -> Digest:
    """Every figure of one period's digest, read from the database as of the period's end.

    Aggregated in SQL over the period's rows only (index ranges); no table is loaded into Python.
    """
    start, end, now = period.start, period.end, uow.now
    cohort = _cohort_figures(uow, period, settings)
    published, responded, claimed, fulfilled, rated, satisfied = (cohort.total(i) for i in range(6))
    rates = {"response": (responded, published), "resolution": (fulfilled, claimed), "satisfaction": (satisfied, rated)}
    by_community = {cid: (row[3], row[0]) for cid, row in cohort.communities.items() if cid is not None}
    names = _unit_names(uow, set(by_community))
    communities = _rank({names.get(c, str(c)): nd for c, nd in by_community.items()}, settings.ranking_min_items)

    year_start = _midnight(local(end - timedelta(microseconds=1), settings).date().replace(month=1, day=1), settings)
    return Digest(period=period, now=now, counts=_counts(uow, start, end), rates=rates,
                  median_claim_hours=_median_hours(cohort.claim_middle),
                  median_fulfil_hours=_median_hours(cohort.fulfil_middle),
                  branches=_branch_ranking(uow, period, settings), communities=communities,
                  idle_members=_idle_members(uow, year_start, end),
                  **_action_lists(uow, settings),
                  flags=flags.flag_lines(flags.all_flags(uow, settings), settings),
                  **_budget_fields(uow, settings, period))


def _budget_fields(uow: UnitOfWork, settings: Settings, period: Period) -> dict[str, object]:
    """The year the period ends in, and one line per community (as of the clock)."""
    from bot.services import budgets

    year = local(period.end - timedelta(microseconds=1), settings).year
    lines = [messages.DIGEST_BUDGET_LINE.format(community=f.community, summary=f.summary())
             for f in budgets.all_figures(uow, year, settings)]
    return {"budget_year": year, "budgets": lines}


def _action_lists(uow: UnitOfWork, settings: Settings) -> dict[str, object]:
    """Overdue claims and the phone-visit list: counted in SQL, only the lines a digest can show loaded."""
    overdue_where = (Claim.ended_at.is_(None), Wish.status == WishStatus.CLAIMED.value, Claim.due_at < uow.now)
    overdue_total = uow.session.execute(
        select(func.count()).select_from(Claim).join(Wish, Wish.id == Claim.wish_id).where(*overdue_where)).scalar_one()
    rows = uow.session.execute(
        select(Claim, Wish).join(Wish, Wish.id == Claim.wish_id).where(*overdue_where)
        .order_by(Claim.due_at, Claim.id).limit(LIST_MAX)
    ).all()
    overdue = [messages.DIGEST_OVERDUE_LINE.format(code=w.id, name=member_name(uow.people.get(c.member_id)),
                                                   due=fmt_date(c.due_at, settings), title=title_of(w)) for c, w in rows]
    phone_total = uow.session.execute(select(func.count()).select_from(Wish).where(*on_phone_list())).scalar_one()
    wishes = uow.session.execute(
        select(Wish).where(*on_phone_list()).order_by(Wish.phone_visit_since, Wish.id).limit(LIST_MAX)
    ).scalars().all()
    phone = [messages.DIGEST_PHONE_LINE.format(code=w.id, fulfilled_at=fmt_date(w.fulfilled_at, settings), title=title_of(w))
             for w in wishes]
    return {"overdue": overdue, "overdue_total": int(overdue_total), "phone_visits": phone, "phone_total": int(phone_total)}


# -- rendering -------------------------------------------------------------------------------

def percent(num: int, den: int) -> str:
    return f"{num / den:.0%}" if den else messages.DIGEST_NA


def duration_text(hours: float | None) -> str:
    if hours is None:
        return messages.DIGEST_NA
    if hours < 48:
        return messages.DIGEST_HOURS.format(n=f"{hours:.1f}".removesuffix(".0"))
    return messages.DIGEST_DAYS.format(n=f"{hours / 24:.1f}".removesuffix(".0"))


def title_text(period: Period) -> str:
    return f"{messages.DIGEST_NAMES[period.kind]} {period.start.date():%m.%d}—{period.last_day:%m.%d}"


def _list(header: str, lines: list[str], limit: int, total: int | None = None) -> list[str]:
    total = len(lines) if total is None else total
    shown = lines[:limit]
    out = [header] + (shown or [messages.DIGEST_NONE])
    if total > len(shown):
        out.append(messages.DIGEST_MORE.format(n=total - len(shown)))
    return out


def _ranking(header: str, ranked: list[Ranked], minimum: int) -> list[str]:
    lines = [messages.DIGEST_RANK_LINE.format(rank=i, name=r.name, pct=percent(r.num, r.den), num=r.num, den=r.den)
             for i, r in enumerate(ranked, 1)]
    return [header.format(min=minimum)] + (lines or [messages.DIGEST_RANK_EMPTY.format(min=minimum)])


def render_digest(d: Digest, settings: Settings, *, list_max: int = LIST_MAX) -> str:
    """The digest as markdown that also reads well as plain text; lists cut at `list_max` lines."""
    p = d.period
    out = [messages.DIGEST_TITLE.format(name=messages.DIGEST_NAMES[p.kind], start=fmt_date(p.start, settings),
                                        end=fmt_date(p.end - timedelta(seconds=1), settings)),
           messages.DIGEST_COUNTS.format(**d.counts), "", messages.DIGEST_RATES_HEADER]
    out += [messages.DIGEST_RATE_LINE.format(name=messages.DIGEST_RATE_NAMES[k], pct=percent(n, m), num=n, den=m)
            for k, (n, m) in d.rates.items()]
    out += [messages.DIGEST_RATE_DEFINITIONS.format(sla=settings.claim_sla_hours),
            messages.DIGEST_MEDIANS.format(claim=duration_text(d.median_claim_hours),
                                           fulfil=duration_text(d.median_fulfil_hours)), ""]
    out += _ranking(messages.DIGEST_RANK_BRANCHES, d.branches[:list_max], settings.ranking_min_items)
    out += [""] + _ranking(messages.DIGEST_RANK_COMMUNITIES, d.communities[:list_max], settings.ranking_min_items)
    names = d.idle_members[: list_max * 2]
    shown = messages.DIGEST_NAME_SEP.join(names) or messages.DIGEST_NONE
    if len(d.idle_members) > len(names):
        shown += messages.DIGEST_MORE.format(n=len(d.idle_members) - len(names))
    out += ["", messages.DIGEST_IDLE_MEMBERS.format(n=len(d.idle_members), names=shown)]
    overdue_total = len(d.overdue) if d.overdue_total is None else d.overdue_total
    phone_total = len(d.phone_visits) if d.phone_total is None else d.phone_total
    out += [""] + _list(messages.DIGEST_OVERDUE_HEADER.format(n=overdue_total), d.overdue, list_max, overdue_total)
    out += [""] + _list(messages.DIGEST_PHONE_HEADER.format(n=phone_total), d.phone_visits, list_max, phone_total)
    out += [""] + _list(messages.DIGEST_FLAGS_HEADER.format(n=len(d.flags)), d.flags, list_max)
    if d.budgets:
        out += [""] + _list(messages.DIGEST_BUDGET_HEADER.format(year=d.budget_year), d.budgets, list_max)
    return "\n".join(out)


def admin_message(d: Digest, settings: Settings) -> str:
    """The digest for one admin on the Official Account: one message of at most 2,048 bytes."""
    text = render_digest(d, settings, list_max=ADMIN_LIST_MAX)
    if len(text.encode("utf-8")) <= MAX_REPLY_BYTES:
        return text
    tail = "\n" + messages.DIGEST_CUT
    return split_utf8(text, MAX_REPLY_BYTES - len(tail.encode("utf-8")))[0] + tail


def queue_digest(uow: UnitOfWork, settings: Settings, d: Digest) -> int:
    """Queue the digest: the admins' WeCom group (markdown ≤ 4,096 bytes, the chart) and each admin.

    Returns the rows queued; a digest already queued for its period queues nothing again.
    """
    text = render_digest(d, settings)
    key = f"digest:{d.period.key}"
    queued = 0
    if settings.admin_webhook is not None:
        for i, chunk in enumerate(split_utf8(text, WEBHOOK_MARKDOWN_BYTES)):
            queued += uow.outbox.add(channel=notify.ADMIN_CHANNEL, kind="digest", now=uow.now, dedupe_key=f"{key}:md:{i}",
                                     payload={"msgtype": "markdown", "content": chunk}) is not None
        if not _queued(uow, f"{key}:image"):  # the chart is drawn only when it is to be sent
            from bot.charts import digest_chart_png  # matplotlib (~60 MB) is loaded only to draw one

            png = digest_chart_png(d, settings)
            uow.outbox.add(channel=notify.ADMIN_CHANNEL, kind="digest", now=uow.now, dedupe_key=f"{key}:image",
                           payload={"msgtype": "image", "base64": base64.b64encode(png).decode("ascii"),
                                    "md5": hashlib.md5(png).hexdigest()})
            queued += 1
    template = {"period": title_text(d.period), "count": str(d.counts["new"])}
    message = admin_message(d, settings)  # one row each, so outside the window it is one template
    for admin in uow.people.admins():
        admin_key = f"{key}:admin:{admin.id}"
        if admin.openid and not _queued(uow, f"{admin_key}:0"):
            notify.to_person(uow, admin, message, kind="digest", template=template, dedupe_key=admin_key)
            queued += 1
    return queued


def _queued(uow: UnitOfWork, dedupe_key: str) -> bool:
    return uow.session.execute(select(Outbox.id).where(Outbox.dedupe_key == dedupe_key)).first() is not None
