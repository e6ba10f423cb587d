"""Scheduled sweeps: each asks the database "what is due now?" and acts on it once.

A sweep is a function of `(uow, settings)` that reads `uow.now` as the clock. What has been
done is recorded in columns (`Wish.return_visit_prompted_at`, `Claim.reminded_due_at`, …) or in
`SweepRun` for once-per-period jobs, so a restart loses nothing, a missed run catches up at the
next tick, and a second run sends nothing twice. With several processes on PostgreSQL each due
row is taken by one of them: candidates are read `FOR UPDATE SKIP LOCKED`, and every row is
then marked with a conditional UPDATE that only the first taker wins (SQLite serialises writers
with BEGIN IMMEDIATE, and the conditional UPDATE is the guard there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import groupby
from operator import itemgetter
from typing import Any, Callable, Sequence

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update

from bot import messages
from bot.config import Settings
from bot.lifecycle import WishStatus
from bot.services import notify
from bot.timefmt import fmt_date, fmt_datetime, local
from storage.db import Database, UnitOfWork
from storage.models import Claim, Person, Wish

TITLE_CHARS = 20  # interface: `{title}` is the masked text cut to fit 20 characters
CLAIM_REMINDER_HOURS = 24
NUDGE_HOUR = 9
REPOST_AFTER_DAYS = 3
PHONE_CODES_SHOWN = 20  # the stats reply lists this many phone-visit codes, then counts the rest
NUDGE_BATCH_ROWS = 1000  # the Monday nudge reads open claims this many rows at a time

FULFILLED = WishStatus.FULFILLED.value


# -- time rules ----------------------------------------------------------------------------

def is_quiet(at: datetime, settings: Settings) -> bool:
    """Inside residents' quiet hours (default 21:00–08:00 local)?"""
    start, end, hour = settings.quiet_start_hour, settings.quiet_end_hour, local(at, settings).hour
    if start == end:
        return False
    return start <= hour < end if start < end else (hour >= start or hour < end)


def out_of_quiet_hours(at: datetime, settings: Settings) -> datetime:
    """`at`, or the end of the quiet hours it falls in (interface: "N days after")."""
    if not is_quiet(at, settings):
        return at
    loc = local(at, settings)
    end_today = datetime.combine(loc.date(), time(settings.quiet_end_hour), tzinfo=settings.tz)
    moved = end_today if end_today > loc else end_today + timedelta(days=1)
    return moved.astimezone(at.tzinfo)


def return_visit_due_at(fulfilled_at: datetime, settings: Settings) -> datetime:
    """When the first return-visit prompt goes out for a wish fulfilled at `fulfilled_at`."""
    return out_of_quiet_hours(fulfilled_at + timedelta(days=settings.return_visit_after_days), settings)


def title_of(wish: Wish) -> str:
    return _title(wish.masked)


def _title(masked: str) -> str:
    text = " ".join(masked.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


def _stamp(dt: datetime) -> str:
    return str(int(dt.timestamp()))


# -- taking due rows once ------------------------------------------------------------------

def _candidates(uow: UnitOfWork, stmt: Select[Any], of: Any, limit: int = 200) -> Sequence[Any]:
    stmt = stmt.limit(limit)
    if uow.dialect == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=of)
    return uow.session.execute(stmt).scalars().all()


def _mark(uow: UnitOfWork, model: Any, row_id: int, values: dict[str, Any], *guard: ColumnElement[bool]) -> bool:
    """Set `values` on the row if `guard` still holds; True if this transaction won it."""
    result = uow.session.execute(
        update(model).where(model.id == row_id, *guard).values(**values).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    row = uow.session.get(model, row_id)
    if row is not None:
        uow.session.refresh(row)
    return True


# Guards: a wish still waiting for its resident's answer in the current fulfilment cycle
# (a reopened and re-fulfilled wish starts a new cycle, so columns are compared with fulfilled_at).
def _awaiting_answer() -> list[ColumnElement[bool]]:
    return [Wish.status == FULFILLED, Wish.fulfilled_at.is_not(None),
            or_(Wish.rated_at.is_(None), Wish.rated_at < Wish.fulfilled_at)]


def _prompt_open() -> ColumnElement[bool]:
    return or_(Wish.return_visit_prompted_at.is_(None), Wish.return_visit_prompted_at < Wish.fulfilled_at)


def _prompted_this_cycle() -> ColumnElement[bool]:
    return and_(Wish.return_visit_prompted_at.is_not(None), Wish.return_visit_prompted_at >= Wish.fulfilled_at)


def _not_on_phone_list() -> ColumnElement[bool]:
    return or_(Wish.phone_visit_since.is_(None), Wish.phone_visit_since < Wish.return_visit_prompted_at)


# -- return visits ---------------------------------------------------------------------------

def _rv_template(wish: Wish, settings: Settings) -> dict[str, str]:
    return {"code": str(wish.id), "title": title_of(wish), "fulfilled_at": fmt_datetime(wish.fulfilled_at, settings)}


def _put_on_phone_list(uow: UnitOfWork, wish: Wish, settings: Settings, text: str) -> None:
    uow.wishes.note(wish, action="phone_visit", actor=None, actor_role="system", now=uow.now)
    notify.to_admins(uow, text, kind="alert", dedupe_key=f"phone_visit:{wish.id}:{_stamp(wish.fulfilled_at)}")


def sweep_return_visit_prompts(uow: UnitOfWork, settings: Settings) -> int:
    """Ask residents, N days after fulfilment and outside quiet hours, whether the wish came true."""
    now = uow.now
    if is_quiet(now, settings):
        return 0  # a prompt that falls inside quiet hours waits until they end
    cutoff = now - timedelta(days=settings.return_visit_after_days)
    stmt = select(Wish).where(*_awaiting_answer(), _prompt_open(), Wish.fulfilled_at <= cutoff).order_by(Wish.id)
    done = 0
    for wish in _candidates(uow, stmt, Wish):
        if not _mark(uow, Wish, wish.id, {"return_visit_prompted_at": now}, *_awaiting_answer(), _prompt_open()):
            continue
        resident = uow.people.get(wish.resident_id)
        template = _rv_template(wish, settings)
        if resident is None or not resident.openid:
            # A proxy-filed resident without WeChat: straight to the phone-visit list, never silent.
            _mark(uow, Wish, wish.id, {"phone_visit_since": now})
            _put_on_phone_list(uow, wish, settings, messages.PHONE_VISIT_NO_WECHAT.format(**template))
        else:
            notify.to_person(uow, resident, messages.RETURN_VISIT_PROMPT.format(**template), kind="return_visit",
                             template=template, dedupe_key=f"rv:prompt:{wish.id}:{_stamp(wish.fulfilled_at)}")
        done += 1
    return done


def sweep_return_visit_reminders(uow: UnitOfWork, settings: Settings) -> int:
    """Ask once more, N days after the prompt, residents who have not answered."""
    now = uow.now
    if is_quiet(now, settings):
        return 0
    cutoff = now - timedelta(days=settings.return_visit_reminder_days)
    guard = [*_awaiting_answer(), _prompted_this_cycle(), _not_on_phone_list(),
             or_(Wish.return_visit_reminded_at.is_(None), Wish.return_visit_reminded_at < Wish.return_visit_prompted_at)]
    # a reminder caught up so late that the phone visit is due as well is left to the phone visit
    phone_due = now - timedelta(days=settings.return_visit_phone_days)
    stmt = select(Wish).where(*guard, Wish.return_visit_prompted_at <= cutoff,
                              Wish.return_visit_prompted_at > phone_due).order_by(Wish.id)
    done = 0
    for wish in _candidates(uow, stmt, Wish):
        if not _mark(uow, Wish, wish.id, {"return_visit_reminded_at": now}, *guard):
            continue
        template = _rv_template(wish, settings)
        notify.to_person(uow, uow.people.get(wish.resident_id), messages.RETURN_VISIT_REMINDER.format(**template),
                         kind="return_visit", template=template,
                         dedupe_key=f"rv:remind:{wish.id}:{_stamp(wish.fulfilled_at)}")
        done += 1
    return done


def sweep_phone_visits(uow: UnitOfWork, settings: Settings) -> int:
    """No answer N days after the prompt: onto the admins' phone-visit list, with an alert."""
    now = uow.now
    cutoff = now - timedelta(days=settings.return_visit_phone_days)
    guard = [*_awaiting_answer(), _prompted_this_cycle(), _not_on_phone_list()]
    stmt = select(Wish).where(*guard, Wish.return_visit_prompted_at <= cutoff).order_by(Wish.id)
    done = 0
    for wish in _candidates(uow, stmt, Wish):
        if not _mark(uow, Wish, wish.id, {"phone_visit_since": now}, *guard):
            continue
        text = messages.PHONE_VISIT_ALERT.format(**_rv_template(wish, settings), days=settings.return_visit_phone_days)
        _put_on_phone_list(uow, wish, settings, text)
        done += 1
    return done


# -- claims ----------------------------------------------------------------------------------

def _open_claims() -> list[ColumnElement[bool]]:
    return [Claim.ended_at.is_(None), Wish.id == Claim.wish_id, Wish.status == WishStatus.CLAIMED.value]


def member_name(person: Person | None) -> str:
    if person is None:
        return messages.UNNAMED_MEMBER.format(id="?")
    return person.name or messages.UNNAMED_MEMBER.format(id=person.id)


def sweep_claims_due_soon(uow: UnitOfWork, settings: Settings) -> int:
    """A claim due within 24 hours reminds its member once (again only if the due date moves).

    `Claim.reminded_due_at` records the due date the member was reminded of.
    """
    now = uow.now
    window = timedelta(hours=CLAIM_REMINDER_HOURS)
    not_reminded = or_(Claim.reminded_due_at.is_(None), Claim.reminded_due_at != Claim.due_at)
    stmt = (select(Claim).join(Wish, Wish.id == Claim.wish_id)
            .where(*_open_claims(), not_reminded, Claim.due_at > now, Claim.due_at <= now + window).order_by(Claim.id))
    done = 0
    for claim in _candidates(uow, stmt, Claim):
        if not _mark(uow, Claim, claim.id, {"reminded_due_at": claim.due_at}, Claim.ended_at.is_(None), not_reminded):
            continue
        wish = uow.wishes.get(claim.wish_id)
        due = fmt_datetime(claim.due_at, settings)
        notify.to_person(uow, uow.people.get(claim.member_id),
                         messages.CLAIM_DUE_SOON.format(code=wish.id, title=title_of(wish), due=due), kind="reminder",
                         template={"code": str(wish.id), "due": due},
                         dedupe_key=f"claim:due_soon:{claim.id}:{_stamp(claim.due_at)}")
        done += 1
    return done


def sweep_claims_overdue(uow: UnitOfWork, settings: Settings) -> int:
    """An overdue claim tells its member and the admins, once per promised date."""
    now = uow.now
    not_told = or_(Claim.overdue_notified_at.is_(None), Claim.overdue_notified_at < Claim.due_at)
    stmt = (select(Claim).join(Wish, Wish.id == Claim.wish_id)
            .where(*_open_claims(), not_told, Claim.due_at <= now).order_by(Claim.id))
    done = 0
    for claim in _candidates(uow, stmt, Claim):
        if not _mark(uow, Claim, claim.id, {"overdue_notified_at": now}, Claim.ended_at.is_(None), not_told):
            continue
        wish = uow.wishes.get(claim.wish_id)
        member = uow.people.get(claim.member_id)
        due = fmt_datetime(claim.due_at, settings)
        key = f"claim:overdue:{claim.id}:{_stamp(claim.due_at)}"
        notify.to_person(uow, member, messages.CLAIM_OVERDUE.format(code=wish.id, title=title_of(wish), due=due),
                         kind="reminder", template={"code": str(wish.id), "due": due}, dedupe_key=key)
        notify.to_admins(uow, messages.CLAIM_OVERDUE_ADMIN.format(code=wish.id, title=title_of(wish),
                                                                  name=member_name(member), due=due),
                         dedupe_key=f"{key}:admins")
        done += 1
    return done


def sweep_contact_lapses(uow: UnitOfWork, settings: Settings) -> int:
    """A claim whose contact date passed without `已联系` lapses: the wish goes back to the hall.

    The claim ends with outcome "lapsed" (it stays on the member's record), the wish moves LAPSE
    (by the system) and is re-posted, and the resident, the member and the admins are told.
    """
    from bot.lifecycle import Action, IllegalTransition, Party
    from bot.services import publishing
    from storage.repositories import WishChanged

    now = uow.now
    guard = [Claim.ended_at.is_(None), Claim.contacted_at.is_(None), Claim.contact_due_at.is_not(None)]
    stmt = (select(Claim).join(Wish, Wish.id == Claim.wish_id)
            .where(*_open_claims(), *guard, Wish.claim_id == Claim.id, Claim.contact_due_at <= now).order_by(Claim.id))
    done = 0
    for claim in _candidates(uow, stmt, Claim):
        wish = uow.wishes.get(claim.wish_id)
        try:
            with uow.session.begin_nested():  # the claim and the wish move together, or neither
                if not _mark(uow, Claim, claim.id, {"ended_at": now, "outcome": "lapsed"}, *guard):
                    continue
                uow.wishes.move(wish, Action.LAPSE, parties={Party.SYSTEM}, actor=None, actor_role=Party.SYSTEM.value,
                                now=now, changes={"claimer_id": None, "claim_id": None, "claimed_at": None,
                                                  "due_at": None, "reposted_at": now})
        except (WishChanged, IllegalTransition):
            continue  # the member acted at the same moment: their move stands
        member = uow.people.get(claim.member_id)
        contact_due = fmt_datetime(claim.contact_due_at, settings)
        key = f"claim:lapsed:{claim.id}"
        notify.to_person(uow, uow.people.get(wish.resident_id), messages.NOTICE_LAPSED.format(code=wish.id),
                         kind="progress", template={"code": str(wish.id), "status": messages.STATUS_NAMES[wish.status]},
                         dedupe_key=key)
        notify.to_person(uow, member, messages.NOTICE_LAPSED_MEMBER.format(code=wish.id, title=title_of(wish),
                                                                          contact_due=contact_due),
                         kind="reminder", template={"code": str(wish.id), "due": contact_due}, dedupe_key=f"{key}:member")
        notify.to_admins(uow, messages.LAPSED_ADMIN.format(code=wish.id, title=title_of(wish), name=member_name(member),
                                                           contact_due=contact_due), dedupe_key=f"{key}:admins")
        publishing.on_published(uow, wish, settings, repost=True, exclude={claim.member_id})
        done += 1
    return done


def week_key(at: datetime, settings: Settings) -> str:
    year, week, _ = local(at, settings).isocalendar()
    return f"{year}-W{week:02d}"


def sweep_monday_nudge(uow: UnitOfWork, settings: Settings) -> int:
    """Every Monday from 09:00 each member with open claims gets one nudge listing them."""
    now = uow.now
    loc = local(now, settings)
    monday: date = loc.date() - timedelta(days=loc.weekday())
    if now < datetime.combine(monday, time(NUDGE_HOUR), tzinfo=settings.tz):
        return 0
    week = week_key(now, settings)
    if not uow.sweeps.once(f"nudge:{week}", now):
        return 0
    # Streamed in member order, only the columns a line needs: one member's claims in memory at a
    # time, however many open claims there are (116,000 at 1M wishes were ORM pairs before).
    rows = uow.session.execute(
        select(Claim.member_id, Claim.due_at, Wish.id, Wish.masked).join(Wish, Wish.id == Claim.wish_id)
        .where(*_open_claims()).order_by(Claim.member_id, Claim.due_at, Claim.id)
        .execution_options(yield_per=NUDGE_BATCH_ROWS)
    )
    members = 0
    for member_id, group in groupby(rows, key=itemgetter(0)):
        items = [(due_at, code, masked) for _, due_at, code, masked in group]
        lines = [messages.NUDGE_HEADER.format(n=len(items))]
        lines += [messages.NUDGE_LINE.format(code=code, title=_title(masked), due=fmt_date(due_at, settings),
                                             overdue=messages.NUDGE_OVERDUE if due_at <= now else "").rstrip()
                  for due_at, code, masked in items]
        lines.append(messages.NUDGE_FOOTER)
        notify.to_person(uow, uow.people.get(member_id), "\n".join(lines), kind="reminder",
                         template={"code": ",".join(str(code) for _, code, _ in items),
                                   "due": fmt_date(items[0][0], settings)},
                         dedupe_key=f"nudge:{week}:{member_id}")
        members += 1
    return members


# -- the hall -------------------------------------------------------------------------------

def sweep_reposts(uow: UnitOfWork, settings: Settings) -> int:
    """A published wish unclaimed after 3 days is posted again and flagged to admins, once."""
    now = uow.now
    not_reposted = or_(Wish.reposted_at.is_(None), Wish.reposted_at < Wish.published_at)
    guard = [Wish.status == WishStatus.PUBLISHED.value, Wish.published_at.is_not(None), not_reposted]
    stmt = select(Wish).where(*guard, Wish.published_at <= now - timedelta(days=REPOST_AFTER_DAYS)).order_by(Wish.id)
    done = 0
    for wish in _candidates(uow, stmt, Wish):
        if not _mark(uow, Wish, wish.id, {"reposted_at": now}, *guard):
            continue
        days = max(REPOST_AFTER_DAYS, (now - wish.published_at).days)
        community = uow.org.get(wish.community_id)
        post = messages.CHANNEL_POST.format(code=wish.id, category=wish.category,
                                            community=community.name if community else messages.UNKNOWN_COMMUNITY,
                                            text=wish.masked, waited=messages.REPOST_WAITED.format(days=days))
        key = f"repost:{wish.id}:{_stamp(wish.published_at)}"
        notify.to_claim_channel(uow, post, kind="repost", dedupe_key=key)
        notify.to_admins(uow, messages.REPOST_ADMIN.format(code=wish.id, title=title_of(wish), days=days),
                         dedupe_key=f"{key}:admins")
        uow.wishes.note(wish, action="repost", actor=None, actor_role="system", now=now)
        done += 1
    return done


# -- digests --------------------------------------------------------------------------------

def sweep_digests(uow: UnitOfWork, settings: Settings) -> int:
    """Each digest once per period, from 09:00 after the period ends (catching up if it was missed)."""
    from bot.services import digest

    done = 0
    for kind in digest.PERIOD_KINDS:
        period = digest.last_complete_period(kind, uow.now, settings)
        if uow.now < period.send_at:
            continue
        if not uow.sweeps.once(f"digest:{period.key}", uow.now):
            continue
        digest.queue_digest(uow, settings, digest.build_digest(uow, settings, period))
        done += 1
    return done


# -- the phone-visit list in the stats reply ------------------------------------------------

def on_phone_list() -> list[ColumnElement[bool]]:
    """Wishes on the phone-visit list now: still unanswered, listed in the current fulfilment cycle."""
    return [Wish.status == FULFILLED, Wish.phone_visit_since.is_not(None), Wish.phone_visit_since >= Wish.fulfilled_at]


def phone_visit_section(uow: UnitOfWork, settings: Settings) -> str:
    """A block for the stats reply: wishes on the phone-visit list (no answer to the return visit)."""
    total = uow.session.execute(select(func.count()).select_from(Wish).where(*on_phone_list())).scalar_one()
    if not total:
        return ""
    ids = uow.session.execute(
        select(Wish.id).where(*on_phone_list()).order_by(Wish.id).limit(PHONE_CODES_SHOWN)
    ).scalars().all()
    codes = messages.STATS_CODE_SEP.join(str(i) for i in ids)
    if total > len(ids):  # a list that grows with the data is counted, and only its start is shown
        codes += messages.DIGEST_MORE.format(n=total - len(ids))
    return messages.STATS_PHONE_VISITS.format(n=total, codes=codes)




@dataclass(frozen=True)
class Sweep:
    name: str
    verb: str  # how the tick line reads: "return_visit_prompts: 2 prompted"
    run: Callable[[UnitOfWork, Settings], int]


SWEEPS: tuple[Sweep, ...] = (
    Sweep("return_visit_prompts", "prompted", sweep_return_visit_prompts),
    Sweep("return_visit_reminders", "reminded", sweep_return_visit_reminders),
    Sweep("phone_visits", "put on the phone-visit list", sweep_phone_visits),
    Sweep("contact_lapses", "claims lapsed", sweep_contact_lapses),
    Sweep("claims_due_soon", "members reminded", sweep_claims_due_soon),
    Sweep("claims_overdue", "overdue claims reported", sweep_claims_overdue),
    Sweep("monday_nudge", "members nudged", sweep_monday_nudge),
    Sweep("reposts", "wishes posted again", sweep_reposts),
    Sweep("digests", "digests queued", sweep_digests),
)


@dataclass(frozen=True)
class SweepOutcome:
    sweep: Sweep
    count: int
    error: str | None = None

    def line(self) -> str:
        if self.error is not None:
            return f"{self.sweep.name}: failed ({self.error})"
        return f"{self.sweep.name}: {self.count} {self.sweep.verb}"


def run_due_sweeps(database: Database, settings: Settings, now: datetime) -> list[SweepOutcome]:
    """Run every sweep once as of `now`, each in its own transaction; one failing does not stop the rest."""
    from bot.logs import get_logger

    log = get_logger("microwish.sweeps")
    outcomes = []
    for sweep in SWEEPS:
        try:
            count = database.run_sync(lambda uow, s=sweep: s.run(uow, settings), now)
        except Exception as exc:  # the job wrapper: log it and carry on with the next sweep
            log.exception("sweep.failed", sweep=sweep.name)
            outcomes.append(SweepOutcome(sweep, 0, type(exc).__name__))
            continue
        if count:
            log.info("sweep.done", sweep=sweep.name, count=count)
        outcomes.append(SweepOutcome(sweep, count))
    return outcomes
