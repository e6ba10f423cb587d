"""The WeCom group robots (claim channel, admins' group): POST and pacing (protocol §5).

A robot takes 20 messages a minute. Pacing is a sliding window kept in the database, so it holds
across a burst and across several `serve` processes: a webhook row may be claimed only while the
robot's rows sent in the last minute plus the rows leased for sending stay under the limit.
The claim runs in the dispatcher's claiming transaction (row locks on PostgreSQL, the single
writer on SQLite), so two processes cannot both take the last slot.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import and_, func, select, text

from bot.wechat_api import TransportError, WeChatError, post_json
from storage.db import UnitOfWork
from storage.models import Outbox

WINDOW = timedelta(minutes=1)
TRANSIENT_ERRORS = frozenset({-1, 45009})


async def post(session: aiohttp.ClientSession, url: str, payload: dict[str, Any]) -> None:
    """Send one message to a group robot; raise WeChatError / TransportError."""
    body = {"msgtype": payload.get("msgtype", "markdown")}
    if body["msgtype"] == "image":
        body["image"] = {"base64": payload["base64"], "md5": payload["md5"]}
    else:
        body[body["msgtype"]] = {"content": payload.get("content", "")}
    answer = await post_json(session, url, body)
    code = int(answer.get("errcode", 0) or 0)
    if code != 0:
        raise WeChatError(code, str(answer.get("errmsg", "")))


def is_transient(exc: Exception) -> bool:
    return isinstance(exc, TransportError) or (isinstance(exc, WeChatError) and exc.errcode in TRANSIENT_ERRORS)


class Pacer:
    """How many more rows a robot may take now, and when the next slot frees up."""

    def __init__(self, uow: UnitOfWork, channels: tuple[str, ...], per_minute: int) -> None:
        self.uow, self.channels, self.per_minute = uow, channels, per_minute
        if uow.dialect == "postgresql":  # one claimer per robot at a time, across processes
            uow.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": "robot:" + ",".join(channels)})
        now = uow.now
        since = now - WINDOW
        sent = select(Outbox.sent_at).where(Outbox.channel.in_(channels), Outbox.state == "sent", Outbox.sent_at > since)
        self.sent_times = sorted(t for t in uow.session.execute(sent).scalars() if t is not None)
        in_flight = select(func.count()).select_from(Outbox).where(
            Outbox.channel.in_(channels), Outbox.state == "pending",
            and_(Outbox.lease_until.is_not(None), Outbox.lease_until > now))
        self.in_flight = int(uow.session.execute(in_flight).scalar_one())
        self.taken = 0

    def take(self) -> bool:
        if len(self.sent_times) + self.in_flight + self.taken >= self.per_minute:
            return False
        self.taken += 1
        return True

    def next_slot(self) -> datetime:
        """When the oldest send in the window leaves it (or a fair share of a minute from now)."""
        if self.sent_times:
            return max(self.sent_times[0] + WINDOW, self.uow.now + timedelta(seconds=1))
        return self.uow.now + WINDOW / max(self.per_minute, 1)
