"""One inbound message, end to end inside one unit of work: dedupe → person → route → handler.

`handle_job` is the write job the callback submits. The dedupe row, every change the handler
makes and the outbox rows it queues commit together, and the reply is stored on the dedupe
row so a WeChat retry gets the very same answer and changes nothing.
"""

from __future__ import annotations

from typing import Callable

from bot.config import Settings
from bot.inbound import Inbound
from bot.logs import get_logger
from bot.presence import Presence
from bot.routing import Context, Dispatcher, refusal_for
from storage.db import BatchedJob, UnitOfWork

log = get_logger("microwish.gateway")


class Duplicate:
    """The reply stored for a message already handled."""

    __slots__ = ("reply",)

    def __init__(self, reply: str | None) -> None:
        self.reply = reply


class BatchItem:
    """What a command's group function gets for one message (see `Router.command(batch=…)`)."""

    __slots__ = ("msg", "args", "settings", "presence")

    def __init__(self, msg: Inbound, args: str, settings: Settings, presence: Presence | None) -> None:
        self.msg, self.args, self.settings, self.presence = msg, args, settings, presence


def handle_job(msg: Inbound, settings: Settings, dispatcher: Dispatcher, presence: Presence | None = None,
               on_outbox: Callable[[], None] | None = None) -> BatchedJob:
    """The message's write job; for a command with a set-wise path it may run with others of its kind.

    `on_outbox` runs after the commit when the message queued outbound messages (it wakes the
    sender; a message that queued none leaves the sender asleep).
    """
    def job(uow: UnitOfWork) -> "str | None | Duplicate":
        if presence is not None and presence.pending():
            presence.flush(uow)
        key = msg.dedupe_key
        if not uow.inbound.reserve(key, msg_type=msg.event or msg.msg_type, now=uow.now):
            return Duplicate(uow.inbound.reply_of(key))  # a retry, or a concurrent copy that committed first
        person = uow.people.ensure(msg.source, now=uow.now, admin_openids=settings.admin_openids)
        if not msg.is_event or msg.event in ("click", "subscribe", "scan"):
            uow.people.note_inbound(person, uow.now)
        ctx = Context(uow=uow, user=person, now=uow.now, settings=settings)
        handler = dispatcher.resolve(msg, ctx)
        if isinstance(handler, str):
            reply: str | None = handler
        else:
            try:
                with uow.session.begin_nested():
                    reply = handler(msg, ctx)
            except Exception as exc:
                reply = refusal_for(exc)
                if reply is None:
                    raise
                uow.session.expire_all()
        uow.flush()
        uow.inbound.store_reply(key, reply)
        if on_outbox is not None and uow.outbox.added:
            uow.after_commit(on_outbox)
        if presence is not None:
            role = person.role
            uow.after_commit(lambda: presence.remember(msg.source, role))
        return reply

    batch = dispatcher.batch_for(msg)
    if batch is None:
        return BatchedJob(job, order_key=msg.source)
    group, args = batch
    return BatchedJob(job, order_key=msg.source, group=group, item=BatchItem(msg, args, settings, presence))
