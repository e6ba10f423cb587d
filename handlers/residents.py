"""Residents: submit a wish and follow it."""

from __future__ import annotations

from bot import messages
from bot.inbound import Inbound
from bot.messages import Keyword
from bot.routing import Context, Router
from bot.services import wishes
from bot.services.wishes import WishDraft

router = Router("residents")


@router.command(Keyword.WISH)
def wish(msg: Inbound, ctx: Context) -> str:
    """`许愿 <内容>`: store the wish and answer with its number."""
    created = wishes.submit_wish(ctx.uow, resident=ctx.user, draft=WishDraft(content=ctx.args), settings=ctx.settings)
    code = str(created.id)
    return messages.WISH_OK.format(code=code) + messages.WISH_OK_WALL.format(code=code)
