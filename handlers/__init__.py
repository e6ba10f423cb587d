"""Builds the dispatcher: residents → members → admins → the later areas → common, then the fallback."""

from __future__ import annotations

from bot.routing import Context, Dispatcher, Router
from bot.inbound import Inbound
from handlers import admins, budgets, common, members, outreach, promises, residents
from handlers.common import MENU_KEYS

ROUTERS: list[Router] = [residents.router, members.router, admins.router, outreach.router, promises.router, budgets.router,
                         common.router]


def _menu_click(msg: Inbound, ctx: Context) -> "str | None":
    """A CLICK event runs the same handler as the command its key stands for."""
    keyword = MENU_KEYS.get(msg.event_key)
    if keyword is None:
        return common.fallback(msg, ctx)
    as_text = Inbound(msg_type="text", source=msg.source, target=msg.target, create_time=msg.create_time, content=keyword.value)
    handler = DISPATCHER.resolve(as_text, ctx)
    return handler if isinstance(handler, str) else handler(as_text, ctx)


common.router.event("click")(_menu_click)
DISPATCHER = Dispatcher(ROUTERS, common.fallback)


def build_dispatcher() -> Dispatcher:
    return DISPATCHER
