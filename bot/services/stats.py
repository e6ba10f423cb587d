"""`统计`: the current figures. Other areas contribute sections, listed in `sections()`."""

from __future__ import annotations

from typing import Callable

from bot import messages
from bot.config import Settings
from bot.lifecycle import WishStatus
from storage.db import UnitOfWork

StatsSection = Callable[[UnitOfWork, Settings], str]



def sections() -> list[StatsSection]:
    """The other areas' blocks, in a fixed order (each returns "" when it has nothing to say)."""
    from bot.services import flags, promises, quotas, sweeps

    return [sweeps.phone_visit_section, promises.lapse_section, quotas.quota_section, flags.stats_section]


def stats_text(uow: UnitOfWork, settings: Settings) -> str:
    """Counts by state, the outbox's pending and dead rows, then every registered section."""
    by_status = uow.wishes.count_by_status()
    outbox = uow.outbox.count_by_state()
    counts = {s.value: by_status.get(s.value, 0) for s in WishStatus}
    text = messages.STATS_TEXT.format(total=sum(by_status.values()), outbox_pending=outbox.get("pending", 0),
                                      outbox_dead=outbox.get("dead", 0), **counts)
    extra = [block for block in (section(uow, settings) for section in sections()) if block]
    return messages.STATS_SECTION_SEPARATOR.join([text, *extra])
