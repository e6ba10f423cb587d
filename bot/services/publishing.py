"""What happens when a wish is published: the claim-channel post and direct recommendations.

Called by the lifecycle services in the same transaction as the publish (or a release back to
the hall), so the post and the notices are outbox rows that commit (or not) with it. Only the
masked text leaves here: the channel is a group chat.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

from bot import messages
from bot.config import Settings
from bot.services import matching, notify
from storage.db import UnitOfWork
from storage.models import Wish


def waited_text(since: datetime | None, now: datetime) -> str:
    """How long a wish has waited since it was submitted: `已等待2天3小时`."""
    if since is None:
        return messages.WAITED_JUST_NOW
    minutes = max(0, int((now - since).total_seconds() // 60))
    days, hours = divmod(minutes // 60, 24)
    if days and hours:
        span = messages.SPAN_DAYS_HOURS.format(days=days, hours=hours)
    elif days:
        span = messages.SPAN_DAYS.format(days=days)
    elif hours:
        span = messages.SPAN_HOURS.format(hours=hours)
    elif minutes >= 1:
        span = messages.SPAN_MINUTES.format(minutes=minutes)
    else:
        return messages.WAITED_JUST_NOW
    return messages.WAITED.format(span=span)


def community_name(uow: UnitOfWork, wish: Wish) -> str:
    community = uow.org.get(wish.community_id)
    return community.name if community else messages.UNKNOWN_COMMUNITY


def channel_post(uow: UnitOfWork, wish: Wish, *, repost: bool = False) -> str:
    template = messages.CHANNEL_REPOST if repost else messages.CHANNEL_POST
    return template.format(code=wish.id, category=wish.category, community=community_name(uow, wish),
                           text=wish.masked, waited=waited_text(wish.created_at, uow.now))


def recommend(uow: UnitOfWork, wish: Wish, settings: Settings, *, exclude: Iterable[int] = ()) -> list[int]:
    """A direct notice to the top `settings.recommend_top` matches; their person ids."""
    matches = matching.rank_members(uow, wish, settings, exclude=exclude)[: settings.recommend_top]
    text = messages.RECOMMEND.format(code=wish.id, category=wish.category, community=community_name(uow, wish),
                                     text=wish.masked, waited=waited_text(wish.created_at, uow.now))
    for m in matches:
        notify.to_person(uow, m.member, text, kind="notice", dedupe_key=f"rec:{wish.id}:{wish.version}:{m.member.id}")
    return [m.member.id or 0 for m in matches]


def on_published(uow: UnitOfWork, wish: Wish, settings: Settings, *, repost: bool = False,
                 exclude: Iterable[int] = ()) -> None:
    """Post the masked wish to the claim channel and recommend it to the best-matched members."""
    notify.to_claim_channel(uow, channel_post(uow, wish, repost=repost), dedupe_key=f"post:{wish.id}:{wish.version}")
    recommend(uow, wish, settings, exclude=exclude)
