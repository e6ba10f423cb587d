"""What happens when a wish is published: the claim-channel post and direct recommendations.

Called by the lifecycle services in the same transaction as the publish, so the post is an
outbox row that commits (or not) with it. Issue 4 owns the matching and recommendations.
"""

from __future__ import annotations

from bot import messages
from bot.config import Settings
from bot.services import notify
from storage.db import UnitOfWork
from storage.models import Wish


def on_published(uow: UnitOfWork, wish: Wish, settings: Settings) -> None:
    """Post the (masked) wish to the claim channel."""
    community = uow.org.get(wish.community_id)
    text = messages.CHANNEL_POST.format(code=wish.id, category=wish.category,
                                        community=community.name if community else messages.UNKNOWN_COMMUNITY,
                                        text=wish.masked, waited="")
    notify.to_claim_channel(uow, text, dedupe_key=f"post:{wish.id}:{wish.version}")
