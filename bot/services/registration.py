"""Admins' side of the lifecycle: registration (通过/驳回/暂缓/转办), return visits by phone, close-out.

Every function moves the wish through `uow.wishes.move` (the table decides) and tells the
resident what happened in plain words through the outbox, in the same transaction.
"""

from __future__ import annotations

from bot import messages
from bot.categories import is_category
from bot.config import Settings
from bot.lifecycle import Action, Party, Tier, TransitionError, WishStatus, decide
from bot.routing import Refused
from bot.services import guardians, notify, publishing
from bot.services.wishes import notify_resident, parties_for, reopen_after_feedback
from storage.db import UnitOfWork
from storage.models import Person, Wish


def pending_wishes(uow: UnitOfWork, *, limit: int = 50) -> list[Wish]:
    """Wishes waiting for registration, oldest first."""
    return list(uow.wishes.with_status(WishStatus.SUBMITTED, limit=limit))


def _set_category(uow: UnitOfWork, wish: Wish, admin: Person, category: str | None) -> None:
    if category is None or category == wish.category:
        return
    if not is_category(category):
        raise Refused(messages.DLG_BAD_CATEGORY.format(categories=messages.DLG_CATEGORY_SEPARATOR.join(messages.CATEGORIES)))
    wish.category = category
    uow.wishes.note(wish, action="category", actor=admin, actor_role=admin.role, now=uow.now, note=category)


def _check(wish: Wish, action: Action, parties: set[Party]) -> None:
    """Ask the table before touching anything (the refusal names the wish, as `move` does)."""
    try:
        decide(wish.status, action, parties)
    except TransitionError as exc:
        exc.wish_id = wish.id  # type: ignore[attr-defined]
        raise


def approve_wish(uow: UnitOfWork, *, wish_id: int, admin: Person, tier: Tier, settings: Settings,
                 minor: bool = False, category: str | None = None, unit: str | None = None) -> Wish:
    """Register a wish: personal → published (and posted); common/legacy → registered for 转办 (to `unit` at once if given)."""
    wish = uow.wishes.get(wish_id)
    parties = parties_for(wish, admin)
    _check(wish, Action.APPROVE, parties)  # registration happens once: from submitted (or deferred)
    _set_category(uow, wish, admin, category)
    minor = wish.concerns_minor or minor
    if minor:
        guardians.mark_minor(wish)
    if tier == Tier.PERSONAL and guardians.needs_consent(wish):  # issue 9: consent before publishing
        return guardians.hold_for_consent(uow, wish, admin=admin, tier=tier)
    if tier == Tier.PERSONAL:
        uow.wishes.move(wish, Action.APPROVE, parties=parties, actor=admin, actor_role=admin.role, now=uow.now,
                        note=messages.TIER_NAMES[tier.value],
                        changes={"tier": tier.value, "concerns_minor": minor, "published_at": uow.now})
        publishing.on_published(uow, wish, settings)
        notify_resident(uow, wish, messages.NOTICE_APPROVED.format(code=wish.id))
        return wish
    wish.tier, wish.concerns_minor = tier.value, minor
    uow.wishes.note(wish, action="approve", actor=admin, actor_role=admin.role, now=uow.now,
                    note=messages.TIER_NAMES[tier.value])
    if unit:
        return assign_wish(uow, wish_id=wish_id, admin=admin, unit=unit, settings=settings)
    notify_resident(uow, wish, messages.NOTICE_PROGRESS_ROUTED.format(code=wish.id, tier=messages.TIER_NAMES[tier.value]))
    return wish


def _move_with_reason(uow: UnitOfWork, action: Action, notice: str, *, wish_id: int, admin: Person, reason: str) -> Wish:
    """Move the wish, keep the reason on the timeline, and tell the resident in plain words."""
    wish = uow.wishes.get(wish_id)
    uow.wishes.move(wish, action, parties=parties_for(wish, admin), actor=admin, actor_role=admin.role,
                    now=uow.now, note=reason)
    notify_resident(uow, wish, notice.format(code=wish.id, reason=reason))
    return wish


def reject_wish(uow: UnitOfWork, *, wish_id: int, admin: Person, reason: str, settings: Settings) -> Wish:
    """Refuse the wish; the reason goes to the resident."""
    return _move_with_reason(uow, Action.REJECT, messages.NOTICE_REJECTED, wish_id=wish_id, admin=admin, reason=reason)


def defer_wish(uow: UnitOfWork, *, wish_id: int, admin: Person, reason: str, settings: Settings) -> Wish:
    """Archive as pending (infeasible for now) with an explanation to the resident."""
    return _move_with_reason(uow, Action.DEFER, messages.NOTICE_DEFERRED, wish_id=wish_id, admin=admin, reason=reason)


def assign_wish(uow: UnitOfWork, *, wish_id: int, admin: Person, unit: str, settings: Settings) -> Wish:
    """Hand the wish to a department or leader; a member's open claim on it ends."""
    wish = uow.wishes.get(wish_id)
    claimer_id, claim_id = wish.claimer_id, wish.claim_id
    uow.wishes.move(wish, Action.ASSIGN, parties=parties_for(wish, admin), actor=admin, actor_role=admin.role,
                    now=uow.now, note=unit, changes={"assigned_unit": unit, "claimer_id": None, "claim_id": None})
    claim = uow.claims.get(claim_id) if claim_id else None
    if claim is not None and claim.ended_at is None:
        claim.ended_at, claim.outcome = uow.now, "reassigned"
        notify.to_person(uow, uow.people.get(claimer_id) if claimer_id else None,
                         messages.NOTICE_REASSIGNED_CLAIMER.format(code=wish.id, unit=unit))
    if wish.tier == Tier.PERSONAL.value:
        text = messages.NOTICE_ASSIGNED.format(code=wish.id, unit=unit)
    else:
        text = messages.NOTICE_ROUTED.format(code=wish.id, tier=messages.TIER_NAMES[wish.tier], unit=unit)
    notify_resident(uow, wish, text)
    uow.flush()
    return wish


def close_wish(uow: UnitOfWork, *, wish_id: int, admin: Person, settings: Settings) -> Wish:
    """Close out a wish that has its feedback (rated); explain when it has none yet."""
    wish = uow.wishes.get(wish_id)
    if wish.status == WishStatus.FULFILLED.value:
        raise Refused(messages.CLOSE_NEEDS_VISIT.format(code=wish.id))
    uow.wishes.move(wish, Action.CLOSE, parties=parties_for(wish, admin), actor=admin, actor_role=admin.role,
                    now=uow.now, changes={"closed_at": uow.now})
    notify_resident(uow, wish, messages.NOTICE_CLOSED.format(code=wish.id))
    return wish


def record_visit(uow: UnitOfWork, *, wish_id: int, admin: Person, answer: str, rating: int | None,
                 note: str | None, settings: Settings) -> Wish:
    """An admin's phone or door return visit; never by the wish's own claimer.

    On a wish assigned to a unit it first records the unit's work as done (the unit has no chat).
    """
    wish = uow.wishes.get(wish_id)
    if admin.id is not None and admin.id == wish.claimer_id:
        raise Refused(messages.VISIT_BY_CLAIMER.format(code=wish.id))
    if rating is not None and not 1 <= rating <= 5:
        raise Refused(messages.RATE_BAD_SCORE.format(code=wish.id))
    parties = parties_for(wish, admin)
    answer_name = messages.FEEDBACK_NAMES[answer]
    if wish.status == WishStatus.ASSIGNED.value:  # the unit has no chat of its own: the visit records its result
        uow.wishes.move(wish, Action.FULFIL, parties=parties, actor=admin, actor_role=admin.role, now=uow.now,
                        note=wish.assigned_unit, changes={"fulfilled_at": uow.now})
    uow.wishes.move(wish, Action.VISIT, parties=parties, actor=admin, actor_role=admin.role, now=uow.now,
                    note=" ".join(p for p in (answer_name, str(rating) if rating else "", note or "") if p),
                    changes={"feedback": answer, "rating": rating if rating is not None else wish.rating,
                             "feedback_note": note, "rated_at": uow.now})
    notify_resident(uow, wish, messages.NOTICE_VISIT_RECORDED.format(code=wish.id, answer=answer_name))
    if answer != "solved" or (rating is not None and rating < settings.close_min_rating):
        reopen_after_feedback(uow, wish, answer=answer_name, rating=rating, words=note, parties=parties,
                              actor=admin, actor_role=admin.role, settings=settings)
    return wish
