"""Wishes concerning a minor (issue 9): never posted with the child's details, published only after
a guardian's consent.

A wish concerns a minor when the resident says so in the 许愿 dialogue or an admin marks it at
registration (`通过 <编号> <层级> 未成年`). From then on its masked text is a generic line, so the
claim channel, recommendations, the hall and the wall carry only category and community, and it
stays off the wall. `通过` of such a wish without consent records the registration (timeline step
"await_consent") and holds publishing; `监护人同意` from the resident, or `监护人同意 <编号>` from an
admin, records the consent and publishes a wish that was held.
"""

from __future__ import annotations

from sqlalchemy import select

from bot import messages
from bot.config import Settings
from bot.lifecycle import Action, Party, Role, Tier, WishStatus
from bot.logs import get_logger
from bot.routing import Refused
from bot.services import notify, publishing
from storage.db import UnitOfWork
from storage.models import Person, Wish, WishEvent

log = get_logger("microwish.guardians")
HELD = "await_consent"
WAITING_STATUSES = (WishStatus.SUBMITTED.value, WishStatus.DEFERRED.value)


def mark_minor(wish: Wish) -> None:
    """From now on only a generic line stands for the wish outside the resident, admins and claimer."""
    wish.concerns_minor, wish.public, wish.masked = True, False, messages.MINOR_MASKED


def needs_consent(wish: Wish) -> bool:
    return wish.concerns_minor and wish.guardian_consent_at is None


def _progress(uow: UnitOfWork, wish: Wish, text: str, key: str) -> None:
    notify.to_person(uow, uow.people.get(wish.resident_id), text, kind="progress", dedupe_key=key,
                     template={"code": str(wish.id), "status": messages.STATUS_NAMES[wish.status]})


def hold_for_consent(uow: UnitOfWork, wish: Wish, *, admin: Person, tier: Tier) -> Wish:
    """Record the registration, keep the wish unpublished, tell the resident how to consent."""
    wish.tier = tier.value
    uow.wishes.note(wish, action=HELD, actor=admin, actor_role=admin.role, now=uow.now,
                    note=messages.TIER_NAMES[tier.value])
    log.info("wish.held_for_consent", wish_id=wish.id, admin_id=admin.id)
    _progress(uow, wish, messages.NOTICE_CONSENT_NEEDED.format(code=wish.id), f"consent-needed:{wish.id}")
    return wish


def is_held(uow: UnitOfWork, wish: Wish) -> bool:
    """Registered by an admin and waiting only for the consent."""
    if wish.status != WishStatus.SUBMITTED.value:  # deferred meanwhile: an admin decides again
        return False
    return uow.session.execute(select(WishEvent.id).where(WishEvent.wish_id == wish.id, WishEvent.action == HELD)
                               .limit(1)).first() is not None


def _waiting_wish(uow: UnitOfWork, resident: Person) -> Wish:
    wish = uow.session.execute(
        select(Wish).where(Wish.resident_id == resident.id, Wish.concerns_minor.is_(True),
                           Wish.guardian_consent_at.is_(None), Wish.status.in_(WAITING_STATUSES))
        .order_by(Wish.id.desc()).limit(1)).scalars().first()
    if wish is None:
        raise Refused(messages.CONSENT_NOTHING)
    return wish


def record_consent(uow: UnitOfWork, *, wish_id: int | None, person: Person, settings: Settings) -> tuple[Wish, bool]:
    """The guardian's consent (the resident's own word, or an admin recording it); (wish, published now?)."""
    is_admin = person.role == Role.ADMIN.value
    if wish_id is None:
        wish = _waiting_wish(uow, person)
    else:
        wish = uow.wishes.get(wish_id)
        if not is_admin and wish.resident_id != person.id:
            raise Refused(messages.NOT_YOUR_WISH.format(code=wish_id, action=messages.CONSENT_ACTION))
    if not wish.concerns_minor:
        raise Refused(messages.CONSENT_NOT_MINOR.format(code=wish.id))
    if wish.guardian_consent_at is not None:
        raise Refused(messages.CONSENT_ALREADY.format(code=wish.id))
    wish.guardian_consent_at = uow.now
    uow.wishes.note(wish, action="consent", actor=person, actor_role=person.role, now=uow.now)
    log.info("wish.guardian_consent", wish_id=wish.id, by_admin=is_admin)
    if not is_held(uow, wish):
        if is_admin:
            _progress(uow, wish, messages.NOTICE_CONSENT_BY_ADMIN.format(code=wish.id), f"consent:{wish.id}")
        return wish, False
    uow.wishes.move(wish, Action.APPROVE, parties={Party.SYSTEM}, actor=None, actor_role=Party.SYSTEM.value,
                    now=uow.now, note=messages.ACTION_NAMES["consent"], changes={"published_at": uow.now})
    publishing.on_published(uow, wish, settings)
    _progress(uow, wish, messages.NOTICE_APPROVED.format(code=wish.id), f"approved:{wish.id}")
    return wish, True
