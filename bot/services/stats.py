"""`统计`: the current figures. Other areas append their own sections through STATS_SECTIONS."""

from __future__ import annotations

from typing import Callable

from bot import messages
from bot.config import Settings
from bot.lifecycle import WishStatus
from storage.db import UnitOfWork

StatsSection = Callable[[UnitOfWork, Settings], str]

# Each function returns a block of text (or "" for nothing); they are shown in list order.
STATS_SECTIONS: list[StatsSection] = []


def stats_text(uow: UnitOfWork, settings: Settings) -> str:
    """Counts by state, the outbox's pending and dead rows, then every registered section."""
    by_status = uow.wishes.count_by_status()
    outbox = uow.outbox.count_by_state()
    counts = {s.value: by_status.get(s.value, 0) for s in WishStatus}
    text = messages.STATS_TEXT.format(total=sum(by_status.values()), outbox_pending=outbox.get("pending", 0),
                                      outbox_dead=outbox.get("dead", 0), **counts)
    extra = [block for block in (section(uow, settings) for section in STATS_SECTIONS) if block]
    return messages.STATS_SECTION_SEPARATOR.join([text, *extra])
