"""Handlers every user shares: the welcome, help, menu clicks and the fallback hint."""

from __future__ import annotations

from bot import messages
from bot.inbound import Inbound
from bot.lifecycle import Role
from bot.messages import Keyword
from bot.routing import Context, Router

router = Router("common")

# Official Account menu keys (interface: `microwish menu push`) → the command they stand for.
MENU_KEYS: dict[str, Keyword] = {
    "WISH_NEW": Keyword.WISH,
    "WISH_MINE": Keyword.MINE,
    "HALL": Keyword.HALL,
    "CLAIMS_MINE": Keyword.MY_CLAIMS,
    "HELP": Keyword.HELP,
}


def help_text(role: Role) -> str:
    text = messages.HELP_RESIDENT
    if role == Role.MEMBER:
        text += messages.HELP_MEMBER
    elif role == Role.ADMIN:
        text += messages.HELP_ADMIN
    else:
        text += messages.HELP_MEMBER_BIND
    return text


@router.read_only(Keyword.HELP)
def show_help_fast(msg: Inbound, role: Role) -> str:
    """What the sender's role may do (served without a write: see bot/gateway.py)."""
    return help_text(role)


@router.command(Keyword.HELP)
def show_help(msg: Inbound, ctx: Context) -> str:
    """The same, when help is reached through a menu click or inside a unit of work."""
    return help_text(ctx.role)


@router.event("subscribe")
def welcome(msg: Inbound, ctx: Context) -> str:
    return messages.WELCOME


@router.event("unsubscribe")
def goodbye(msg: Inbound, ctx: Context) -> None:
    ctx.user.subscribed = False
    return None


def fallback(msg: Inbound, ctx: Context) -> str | None:
    if msg.msg_type == "event":
        return None  # VIEW, LOCATION, TEMPLATESENDJOBFINISH…: acknowledge silently
    if msg.msg_type == "text":
        return messages.HINT
    return messages.NOT_TEXT
