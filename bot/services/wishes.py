"""Residents' side of the lifecycle: submitting and following wishes."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime

from bot import messages, privacy, timefmt, workdays
from bot.categories import suggest_category
from bot.config import Settings
from bot.lifecycle import Action, Party, Role, WishStatus
from bot.routing import Refused
from bot.services import notify
from storage.db import UnitOfWork
from storage.models import Person, Wish, WishEvent


@dataclass
class WishDraft:
    content: str
    category: str | None = None
    phone: str | None = None
    community: str | None = None
    location_label: str | None = None
    concerns_minor: bool = False
    source: str = "text"
    voice_media_id: str | None = None


def local_day_start(now: datetime, settings: Settings) -> datetime:
    local = now.astimezone(settings.tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def check_content(content: str, settings: Settings) -> str:
    content = " ".join(content.split())
    if not content:
        raise Refused(messages.WISH_EMPTY)
    if len(content) < settings.wish_min_chars:
        raise Refused(messages.WISH_TOO_SHORT.format(min=settings.wish_min_chars))
    if len(content) > settings.wish_max_chars:
        raise Refused(messages.WISH_TOO_LONG.format(max=settings.wish_max_chars))
    return content


def check_limits(uow: UnitOfWork, resident: Person, settings: Settings) -> None:
    """At most N open wishes per resident and M submissions a local day."""
    open_wishes = uow.wishes.open_of_resident(resident.id or 0)
    if len(open_wishes) >= settings.resident_max_open:
        raise Refused(messages.WISH_TOO_MANY_OPEN.format(n=len(open_wishes)))
    today = uow.wishes.count_submitted_since(resident.id or 0, local_day_start(uow.now, settings))
    if today >= settings.resident_max_per_day:
        raise Refused(messages.WISH_TOO_MANY_TODAY.format(n=today))


def submit_wish(uow: UnitOfWork, *, resident: Person, draft: WishDraft, settings: Settings,
                filed_by: Person | None = None, limits_checked: bool = False) -> Wish:
    """Collect and store a wish (status submitted) with its first timeline event.

    `limits_checked`: the caller already applied `check_limits` in this transaction.
    """
    content = check_content(draft.content, settings)
    if not limits_checked:
        check_limits(uow, resident, settings)
    split = privacy.split_private(content)
    phone = draft.phone or (split.phones[0] if split.phones else None)
    community = uow.org.ensure("community", draft.community) if draft.community else None
    wish = Wish(
        resident_id=resident.id or 0,
        status=WishStatus.SUBMITTED.value,
        category=draft.category or suggest_category(split.text),
        content=split.text,
        masked=messages.MINOR_MASKED if draft.concerns_minor else privacy.mask(split.text),  # issue 9: minors
        public=not draft.concerns_minor,
        private_details=split.details,
        contact_phone=phone,
        community_id=community.id if community else resident.community_id,
        location_label=draft.location_label,
        source=draft.source,
        voice_media_id=draft.voice_media_id,
        concerns_minor=draft.concerns_minor,
        filed_by_id=filed_by.id if filed_by else None,
        created_at=uow.now,
    )
    actor = filed_by or resident
    return uow.wishes.add(wish, actor=actor, actor_role=actor.role, now=uow.now)


def wish_of_resident(uow: UnitOfWork, *, wish_id: int, resident: Person, action: str) -> Wish:
    wish = uow.wishes.get(wish_id)
    if wish.resident_id != resident.id:
        raise Refused(messages.NOT_YOUR_WISH.format(code=wish_id, action=action))
    return wish


# -- who is acting ------------------------------------------------------------------------------


def parties_for(wish: Wish, person: Person) -> set[Party]:
    """How `person` stands to `wish`, in the terms of the transition table."""
    parties: set[Party] = set()
    if person.id is not None and person.id == wish.resident_id:
        parties.add(Party.OWNER)
    if person.id is not None and person.id == wish.claimer_id:
        parties.add(Party.CLAIMER)
    if person.role == Role.MEMBER.value:
        parties.add(Party.MEMBER)
    if person.role == Role.ADMIN.value:
        parties.add(Party.ADMIN)
    return parties


def notify_resident(uow: UnitOfWork, wish: Wish, text: str) -> None:
    """A progress notice to the wish's resident (template placeholders {code} and {status})."""
    notify.to_person(uow, uow.people.get(wish.resident_id), text, kind="progress",
                     template={"code": str(wish.id), "status": messages.STATUS_NAMES[wish.status]})


# -- similar wishes -----------------------------------------------------------------------------


def _plain(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


def is_similar(a: str, b: str, threshold: float) -> bool:
    """Nearly the same words (difflib ratio), or one contained in the other."""
    pa, pb = _plain(a), _plain(b)
    if not pa or not pb:
        return False
    if pa in pb or pb in pa:
        return True
    return difflib.SequenceMatcher(None, pa, pb).ratio() >= threshold


def similar_open_wish(uow: UnitOfWork, *, resident: Person, content: str, settings: Settings) -> Wish | None:
    """The resident's open wish that a new `content` nearly repeats, if any."""
    text = privacy.split_private(" ".join(content.split())).text
    for wish in uow.wishes.open_of_resident(resident.id or 0):
        if is_similar(text, wish.content, settings.similar_threshold):
            return wish
    return None


# -- the resident following and answering ---------------------------------------------------


def cancel_wish(uow: UnitOfWork, *, wish_id: int, resident: Person, settings: Settings) -> Wish:
    """Withdraw the resident's own wish while nobody has claimed it."""
    wish = wish_of_resident(uow, wish_id=wish_id, resident=resident, action=messages.CANCEL_ACTION)
    uow.wishes.move(wish, Action.CANCEL, parties=parties_for(wish, resident), actor=resident,
                    actor_role=resident.role, now=uow.now)
    return wish


def make_private(uow: UnitOfWork, *, wish_id: int, resident: Person) -> Wish:
    """Keep the wish off the public wall."""
    wish = wish_of_resident(uow, wish_id=wish_id, resident=resident, action=messages.PRIVATE_NOT_YOURS_ACTION)
    wish.public = False
    uow.flush()
    return wish


def _awaiting(uow: UnitOfWork, wish_id: int | None, resident: Person, nothing: str) -> Wish:
    if wish_id is None:
        wish = uow.wishes.latest_awaiting_feedback(resident.id or 0)
        if wish is None:
            raise Refused(nothing)
        return wish
    return wish_of_resident(uow, wish_id=wish_id, resident=resident, action=messages.RATE_ACTION)


def rate_wish(uow: UnitOfWork, *, wish_id: int | None, resident: Person, rating: int, note: str | None,
              settings: Settings) -> Wish:
    """The resident's score: a good one closes the wish, a poor one sends it back (same transaction)."""
    wish = _awaiting(uow, wish_id, resident, messages.RATE_NOTHING_OPEN)
    if not 1 <= rating <= 5:
        raise Refused(messages.RATE_BAD_SCORE.format(code=wish.id))
    uow.wishes.move(wish, Action.RATE, parties=parties_for(wish, resident), actor=resident, actor_role=resident.role,
                    now=uow.now, note=note, changes={"rating": rating, "feedback_note": note, "rated_at": uow.now})
    if rating >= settings.close_min_rating:
        close_by_system(uow, wish)
    else:
        reopen_after_feedback(uow, wish, answer=messages.FEEDBACK_NAMES["unsolved"], rating=rating, words=note,
                              parties={Party.SYSTEM}, actor=None, actor_role=Party.SYSTEM.value,
                              settings=settings)
    return wish


def answer_feedback(uow: UnitOfWork, *, wish_id: int | None, resident: Person, answer: str,
                    settings: Settings) -> Wish:
    """已解决 closes the wish; 部分解决 and 未解决 send it back and alert the admins."""
    wish = _awaiting(uow, wish_id, resident, messages.FEEDBACK_NOTHING_OPEN)
    uow.wishes.move(wish, Action.RATE, parties=parties_for(wish, resident), actor=resident, actor_role=resident.role,
                    now=uow.now, note=messages.FEEDBACK_NAMES[answer],
                    changes={"feedback": answer, "rated_at": uow.now})
    if answer == "solved":
        close_by_system(uow, wish)
    else:
        reopen_after_feedback(uow, wish, answer=messages.FEEDBACK_NAMES[answer], rating=None, words=None,
                              parties={Party.SYSTEM}, actor=None, actor_role=Party.SYSTEM.value,
                              settings=settings)
    return wish


def close_by_system(uow: UnitOfWork, wish: Wish) -> None:
    uow.wishes.move(wish, Action.CLOSE, parties={Party.SYSTEM}, actor=None, actor_role=Party.SYSTEM.value,
                    now=uow.now, changes={"closed_at": uow.now})


# A reopened wish is fulfilled again later and then gets a fresh return visit.
_FRESH_VISIT = {"fulfilled_at": None, "return_visit_prompted_at": None, "return_visit_reminded_at": None,
                "phone_visit_since": None}


def reopen_after_feedback(uow: UnitOfWork, wish: Wish, *, answer: str, rating: int | None, words: str | None,
                          parties: set[Party], actor: Person | None, actor_role: str, settings: Settings) -> None:
    """Back to the same claimer (REOPEN) or to the unit it was assigned to (REWORK); alert the admins."""
    claim = uow.claims.get(wish.claim_id) if wish.claim_id and wish.claimer_id else None
    if wish.claimer_id:
        due = workdays.add_days(uow.now, settings.claim_default_days, settings)  # a fresh promise for the second try
        uow.wishes.move(wish, Action.REOPEN, parties=parties, actor=actor, actor_role=actor_role, now=uow.now,
                        note=words or answer, changes={**_FRESH_VISIT, "due_at": due})
        if claim is not None:
            claim.ended_at, claim.outcome, claim.due_at = None, None, due
        notify.to_person(uow, uow.people.get(wish.claimer_id), messages.NOTICE_REOPENED_CLAIMER.format(
            code=wish.id, answer=answer, words=words or messages.ALERT_NO_WORDS))
        back = messages.ALERT_BACK_CLAIMER
    else:
        uow.wishes.move(wish, Action.REWORK, parties=parties, actor=actor, actor_role=actor_role, now=uow.now,
                        note=words or answer, changes=_FRESH_VISIT)
        back = messages.ALERT_BACK_UNIT.format(unit=wish.assigned_unit or "")
    notify.to_admins(uow, messages.ALERT_REOPENED.format(
        code=wish.id, answer=answer, rating=messages.ALERT_RATING.format(rating=rating) if rating else "",
        words=words or messages.ALERT_NO_WORDS, back=back))
    uow.flush()


# -- reading ------------------------------------------------------------------------------------


def _who(uow: UnitOfWork, wish: Wish, event: WishEvent, viewer: Person) -> str:
    role = event.actor_role
    if role == Role.MEMBER.value and event.actor_id:
        member = uow.people.get(event.actor_id)
        branch = uow.org.get(member.branch_id) if member else None
        return messages.TRACK_MEMBER.format(branch=branch.name if branch else "",
                                            name=(member.name if member and member.name else messages.TRACK_MEMBER_UNNAMED))
    if role == Role.RESIDENT.value and event.actor_id == wish.resident_id and viewer.id == wish.resident_id:
        return messages.TRACK_YOU
    return messages.ROLE_NAMES.get(role, messages.ROLE_NAMES["system"])


def track(uow: UnitOfWork, *, wish_id: int, viewer: Person, settings: Settings) -> str:
    """The wish's timeline like a parcel's: every step, its local time and who acted (owner or admin only)."""
    wish = uow.wishes.get(wish_id)
    if viewer.id != wish.resident_id and viewer.role != Role.ADMIN.value:
        raise Refused(messages.TRACK_NOT_YOURS.format(code=wish_id))
    lines = [messages.TRACK_HEADER.format(code=wish.id, status=messages.STATUS_NAMES[wish.status], text=wish.content)]
    if wish.assigned_unit:
        lines[0] += messages.TRACK_UNIT.format(unit=wish.assigned_unit)
    for event in uow.wishes.events(wish.id or 0):
        line = messages.TRACK_LINE.format(time=timefmt.fmt_datetime(event.at, settings),
                                          step=messages.ACTION_NAMES.get(event.action, event.action),
                                          who=messages.TRACK_WHO.format(name=_who(uow, wish, event, viewer)))
        if event.note and event.action != "submit":
            line += messages.TRACK_NOTE.format(note=event.note)
        lines.append(line)
    claim = uow.claims.get(wish.claim_id) if wish.claim_id else None
    if (claim is not None and claim.safety_code and viewer.id == wish.resident_id
            and wish.status == WishStatus.CLAIMED.value):
        lines.append(messages.TRACK_SAFETY.format(safety_code=claim.safety_code))
    return "\n".join(lines)


def mine(uow: UnitOfWork, *, resident: Person, settings: Settings) -> str:
    """The resident's wishes, newest first, with their states."""
    wishes = uow.wishes.of_resident(resident.id or 0)
    if not wishes:
        return messages.MINE_EMPTY
    lines = [messages.MINE_HEADER]
    for wish in wishes:
        text = wish.content if len(wish.content) <= 20 else wish.content[:20] + "…"
        lines.append(messages.MINE_LINE.format(code=wish.id, status=messages.STATUS_NAMES[wish.status], text=text))
    return "\n".join(lines) + messages.MINE_MORE
