"""Residents' side of the lifecycle: submitting and following wishes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot import messages, privacy
from bot.categories import suggest_category
from bot.config import Settings
from bot.lifecycle import WishStatus
from bot.routing import Refused
from storage.db import UnitOfWork
from storage.models import Person, Wish


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
                filed_by: Person | None = None) -> Wish:
    """Collect and store a wish (status submitted) with its first timeline event."""
    content = check_content(draft.content, settings)
    check_limits(uow, resident, settings)
    split = privacy.split_private(content)
    phone = draft.phone or (split.phones[0] if split.phones else None)
    community = uow.org.ensure("community", draft.community) if draft.community else None
    wish = Wish(
        resident_id=resident.id or 0,
        status=WishStatus.SUBMITTED.value,
        category=draft.category or suggest_category(split.text),
        content=split.text,
        masked=privacy.mask(split.text),
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


