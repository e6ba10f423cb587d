"""Claims: a member promises a published wish, fulfils it (with a photo) or gives it back.

Exactly one member wins a wish: `WishRepository.move()` is a compare-and-set, so of several
simultaneous claims one moves the wish and the others find it already claimed; they are told
who was faster and offered their next best match from the hall.

A claim is a promise with two clocks (issue 9): first contact by `contact_due_at` (a missed one
lapses the claim: `sweeps.sweep_contact_lapses`) and completion by `due_at`, both in working days
when `settings.working_days` (bot/workdays.py). Its safety code reaches only the resident and the
claimer; helpers of a group claim live in `Claim.helpers` (bot/services/promises.py).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot import messages
from bot.config import Settings
from bot.logs import get_logger
from bot.lifecycle import Action, IllegalTransition, Party, WishStatus
from bot.routing import Refused
from bot import workdays
from bot.services import budgets, matching, notify, promises, publishing
from bot.services.members import member_label
from bot.services.sweeps import out_of_quiet_hours
from bot.timefmt import fmt_date, fmt_datetime
from storage.db import UnitOfWork
from storage.models import Claim, Person, Wish
from storage.repositories import WishChanged

log = get_logger("microwish.claims")
EVIDENCE_WINDOW = timedelta(hours=24)  # photos sent this long after 完成 are kept as evidence


def parties(wish: Wish, person: Person) -> set[Party]:
    """How a member stands to a wish: any member, and its claimer when it is theirs."""
    found = {Party.MEMBER}
    if wish.claimer_id is not None and wish.claimer_id == person.id:
        found.add(Party.CLAIMER)
    return found


def _faster(uow: UnitOfWork, wish: Wish, member: Person, settings: Settings) -> Refused:
    """The refusal for a member who lost the race, naming the winner and the next best wish."""
    winner = uow.people.get(wish.claimer_id) if wish.claimer_id else None
    if winner is not None and winner.id == member.id:
        return Refused(messages.CLAIM_ALREADY_YOURS.format(code=wish.id, due=fmt_datetime(wish.due_at, settings)))
    name, branch = member_label(uow, winner)
    text = messages.CLAIM_FASTER.format(code=wish.id, name=name, branch=branch)
    nxt = matching.hall_for(uow, member, settings, exclude={wish.id or 0}, limit=1)
    if nxt:
        text += messages.CLAIM_NEXT_BEST.format(code=nxt[0].id, category=nxt[0].category, text=nxt[0].masked)
    return Refused(text)


def _check_days(days: int | None, wish_id: int, settings: Settings) -> int:
    days = settings.claim_default_days if days is None else days
    if not 1 <= days <= settings.claim_max_days:
        raise Refused(messages.CLAIM_BAD_DAYS.format(max=settings.claim_max_days, code=wish_id))
    return days


def _check_load(uow: UnitOfWork, member: Person, settings: Settings) -> None:
    # Lock the member's row first, so two claims by one member at once cannot both pass the cap
    # (PostgreSQL; SQLite has a single writer and ignores FOR UPDATE).
    uow.session.execute(select(Person.id).where(Person.id == member.id).with_for_update())
    held = uow.claims.open_of_member(member.id or 0)
    if len(held) >= settings.member_max_open_claims:
        codes = messages.LIST_SEP.join(messages.WISH_NO.format(code=c.wish_id) for c in held)
        raise Refused(messages.CLAIM_TOO_MANY.format(n=len(held), codes=codes, max=settings.member_max_open_claims))


def claim_wish(uow: UnitOfWork, *, wish_id: int, member: Person, days: int | None, settings: Settings,
               helpers: list[str] | None = None) -> Claim:
    """Claim a published wish for `days` (default settings.claim_default_days, at most claim_max_days).

    Two clocks start: first contact within `contact_default_days`, completion within `days`
    (working days when settings.working_days). `helpers` are names of members helping the lead.
    """
    days = _check_days(days, wish_id, settings)
    wish = uow.wishes.get(wish_id)
    if wish.claimer_id is not None and wish.status != WishStatus.PUBLISHED:
        raise _faster(uow, wish, member, settings)
    if wish.status != WishStatus.PUBLISHED:
        raise Refused(messages.CLAIM_NOT_PERSONAL.format(code=wish_id))
    if wish.resident_id == member.id:
        raise Refused(messages.CLAIM_OWN_WISH.format(code=wish_id))
    helper_people = promises.find_helpers(uow, lead=member, names=helpers or [], wish_id=wish_id)
    _check_load(uow, member, settings)
    due = out_of_quiet_hours(workdays.add_days(uow.now, days, settings), settings)  # interface: "N days after"
    contact_due = out_of_quiet_hours(workdays.add_days(uow.now, settings.contact_default_days, settings), settings)
    try:
        uow.wishes.move(wish, Action.CLAIM, parties={Party.MEMBER}, actor=member, actor_role=member.role, now=uow.now,
                        note=str(days), changes={"claimer_id": member.id, "claimed_at": uow.now, "due_at": due})
    except (WishChanged, IllegalTransition):
        uow.session.refresh(wish)  # the winner's commit is visible now (READ COMMITTED / same writer)
        raise _faster(uow, wish, member, settings) from None
    claim = uow.claims.add(Claim(wish_id=wish.id or 0, member_id=member.id or 0, branch_id=member.branch_id,
                                 claimed_at=uow.now, due_at=due, contact_due_at=min(contact_due, due),
                                 safety_code=promises.new_safety_code(),
                                 helpers=[h.id or 0 for h in helper_people]))
    wish.claim_id = claim.id
    uow.flush()
    log.info("wish.claimed", wish_id=wish.id, member_id=member.id, claim_id=claim.id, days=days,
             helpers=len(helper_people))
    _tell_claimed(uow, wish, member, claim, settings)
    promises.tell_helpers(uow, wish, member, helper_people, settings)
    return claim


def _tell_claimed(uow: UnitOfWork, wish: Wish, member: Person, claim: Claim, settings: Settings) -> None:
    """The claimer gets the unmasked details and the safety code privately; the resident learns who,
    from which branch, by when, and the same safety code (the only two people who ever see it)."""
    details = messages.CLAIM_DETAILS.format(code=wish.id, text=wish.content, phone=wish.contact_phone or messages.NO_PHONE,
                                            due=fmt_datetime(wish.due_at, settings))
    for kind, values in (wish.private_details or {}).items():
        if values:
            details += messages.CLAIM_DETAILS_EXTRA.format(label=messages.DETAIL_LABELS.get(kind, kind), values=messages.LIST_SEP.join(values))
    details += messages.CLAIM_SAFETY_TAIL.format(safety_code=claim.safety_code)
    notify.to_person(uow, member, details, kind="notice", dedupe_key=f"details:{wish.id}:{wish.claim_id}")
    name, branch = member_label(uow, member)
    resident = uow.people.get(wish.resident_id)
    notify.to_person(uow, resident, messages.NOTICE_CLAIMED.format(code=wish.id, name=name, branch=branch,
                                                                   due=fmt_date(wish.due_at, settings))
                     + messages.NOTICE_SAFETY_TAIL.format(safety_code=claim.safety_code),
                     kind="notice", dedupe_key=f"claimed:{wish.id}:{wish.claim_id}")
    notify.to_claim_channel(uow, messages.CHANNEL_CLAIMED.format(code=wish.id, name=name, branch=branch),
                            dedupe_key=f"claimed-post:{wish.id}:{wish.claim_id}")


def own_claimed_wish(uow: UnitOfWork, *, wish_id: int, member: Person, action: str) -> Wish:
    """The wish, if this member holds its claim; otherwise a refusal (nobody acts on another's claim)."""
    wish = uow.wishes.get(wish_id)
    if wish.claimer_id is None or wish.claimer_id != member.id:
        raise Refused(messages.NOT_YOUR_CLAIM.format(code=wish_id, action=messages.ACTION_NAMES.get(action, action)))
    return wish


def _end_claim(uow: UnitOfWork, claim_id: int | None, outcome: str) -> None:
    claim = uow.claims.get(claim_id) if claim_id else None
    if claim is not None and claim.ended_at is None:
        claim.ended_at, claim.outcome = uow.now, outcome


def release_wish(uow: UnitOfWork, *, wish_id: int, member: Person, reason: str, settings: Settings) -> Wish:
    """Give a claimed wish back to the hall, with a reason; it is re-posted and re-recommended."""
    if not reason.strip():
        raise Refused(messages.RELEASE_USAGE.format(code=wish_id))
    wish = own_claimed_wish(uow, wish_id=wish_id, member=member, action=Action.RELEASE.value)
    claim_id = wish.claim_id
    uow.wishes.move(wish, Action.RELEASE, parties=parties(wish, member), actor=member, actor_role=member.role,
                    now=uow.now, note=reason.strip(),
                    changes={"claimer_id": None, "claim_id": None, "claimed_at": None, "due_at": None,
                             "reposted_at": uow.now})
    _end_claim(uow, claim_id, "released")
    log.info("wish.released", wish_id=wish.id, member_id=member.id, claim_id=claim_id)
    notify.to_person(uow, uow.people.get(wish.resident_id), messages.NOTICE_RELEASED.format(code=wish.id),
                     kind="notice", dedupe_key=f"released:{wish.id}:{claim_id}")
    publishing.on_published(uow, wish, settings, repost=True, exclude={member.id or 0})
    return wish


def fulfil_wish(uow: UnitOfWork, *, wish_id: int, member: Person, note: str, settings: Settings) -> Wish:
    """Report a claimed wish fulfilled; the member's next photo becomes its evidence."""
    note, cost = budgets.split_cost(note, code=wish_id)  # issue 10: `完成 <编号> <说明> 费用 <元>`
    if not note.strip():
        raise Refused(messages.DONE_USAGE.format(code=wish_id))
    wish = own_claimed_wish(uow, wish_id=wish_id, member=member, action=Action.FULFIL.value)
    uow.wishes.move(wish, Action.FULFIL, parties=parties(wish, member), actor=member, actor_role=member.role,
                    now=uow.now, note=note.strip(), changes={"fulfilled_at": uow.now})
    _end_claim(uow, wish.claim_id, "fulfilled")
    claim = uow.claims.get(wish.claim_id) if wish.claim_id else None
    if claim is not None and claim.contacted_at is None:
        claim.contacted_at = uow.now  # fulfilment implies contact: a reopened claim must not lapse
    log.info("wish.fulfilled", wish_id=wish.id, member_id=member.id, claim_id=wish.claim_id)
    if cost is not None:
        budgets.record_actual(uow, wish=wish, cost=cost, member=member, settings=settings)
    member.pending_evidence_wish_id = wish.id
    notify.to_person(uow, uow.people.get(wish.resident_id), messages.NOTICE_FULFILLED.format(code=wish.id, note=note.strip()),
                     kind="notice", dedupe_key=f"fulfilled:{wish.id}:{wish.claim_id}")
    return wish


def attach_evidence(uow: UnitOfWork, *, member: Person, media_id: str, pic_url: str, settings: Settings) -> Wish | None:
    """Keep a photo on the timeline of the wish the member just reported fulfilled (None: no such wish)."""
    wish = uow.wishes.find(member.pending_evidence_wish_id) if member.pending_evidence_wish_id else None
    if wish is None or wish.fulfilled_at is None or uow.now - wish.fulfilled_at > EVIDENCE_WINDOW:
        member.pending_evidence_wish_id = None
        return None
    uow.wishes.note(wish, action="evidence", actor=member, actor_role=member.role, now=uow.now,
                    note=pic_url or None, media_id=media_id or None)
    return wish


def mark_contacted(uow: UnitOfWork, *, wish_id: int, member: Person, settings: Settings) -> Wish:
    """Record the first contact with the resident (the claim's first clock)."""
    wish = own_claimed_wish(uow, wish_id=wish_id, member=member, action="contacted")
    claim = uow.claims.get(wish.claim_id) if wish.claim_id else None
    if claim is not None and claim.contacted_at is None:  # a repeat changes nothing (the first contact counts)
        claim.contacted_at = uow.now
        uow.wishes.note(wish, action="contacted", actor=member, actor_role=member.role, now=uow.now)
        log.info("claim.contacted", wish_id=wish.id, claim_id=claim.id, member_id=member.id)
    return wish


def my_claims_text(uow: UnitOfWork, *, member: Person, settings: Settings) -> str:
    """`我的认领`: open claims (due dates, contact date, safety code), claims I help on, finished ones, lapses."""
    claims = uow.claims.of_member(member.id or 0, limit=30)
    helping = promises.helping(uow, member)
    if not claims and not helping:
        return messages.MY_CLAIMS_EMPTY
    open_lines, done_lines = [], []
    for c in claims:
        wish = uow.wishes.find(c.wish_id)
        text = (wish.masked if wish else "")[:20]
        if c.ended_at is None:
            due = fmt_datetime(c.due_at, settings)
            state = messages.MY_CLAIMS_OVERDUE.format(due=due) if c.due_at < uow.now else messages.MY_CLAIMS_DUE.format(due=due)
            if c.contacted_at is None and c.contact_due_at is not None:
                state += messages.MY_CLAIMS_CONTACT.format(contact_due=fmt_datetime(c.contact_due_at, settings))
            if c.safety_code:
                state += messages.MY_CLAIMS_SAFETY.format(safety_code=c.safety_code)
            open_lines.append(messages.MY_CLAIMS_LINE.format(code=c.wish_id, text=text, state=state))
        else:
            state = f"{messages.CLAIM_OUTCOMES.get(c.outcome or '', c.outcome or '')} {fmt_date(c.ended_at, settings)}"
            done_lines.append(messages.MY_CLAIMS_LINE.format(code=c.wish_id, text=text, state=state))
    parts = []
    if open_lines:
        parts += [messages.MY_CLAIMS_OPEN, *open_lines]
    if helping:
        parts += [messages.MY_CLAIMS_HELPING, *promises.helping_lines(uow, helping, settings)]
    if done_lines:
        parts += [messages.MY_CLAIMS_DONE, *done_lines]
    lapses = promises.lapse_count(uow, member.id or 0)
    if lapses:
        parts.append(messages.MY_CLAIMS_LAPSES.format(n=lapses))
    return "\n".join(parts)


def hall_text(uow: UnitOfWork, *, member: Person, settings: Settings) -> str:
    """`大厅`: published, unclaimed wishes, best matches for this member first."""
    wishes = matching.hall_for(uow, member, settings, limit=10)
    if not wishes:
        return messages.HALL_EMPTY
    lines = [messages.HALL_HEADER]
    for w in wishes:
        lines.append(messages.HALL_LINE.format(code=w.id, category=w.category, community=publishing.community_name(uow, w),
                                               text=w.masked[:40], waited=publishing.waited_text(w.created_at, uow.now)))
    lines.append(messages.HALL_FOOTER.format(code=wishes[0].id))
    return "\n".join(lines)
