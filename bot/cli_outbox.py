"""`microwish menu push`: create the Official Account menu of the interface (protocol §4.5)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from bot import messages
from bot.config import Settings


def menu_definition() -> dict[str, Any]:
    """Three top-level buttons, the third with sub-buttons; the keys route like the commands."""
    def click(name: str, key: str) -> dict[str, str]:
        return {"type": "click", "name": name, "key": key}

    return {"button": [
        click(messages.MENU_WISH_NEW, "WISH_NEW"),
        click(messages.MENU_WISH_MINE, "WISH_MINE"),
        {"name": messages.MENU_MORE, "sub_button": [
            click(messages.MENU_HALL, "HALL"),
            click(messages.MENU_CLAIMS_MINE, "CLAIMS_MINE"),
            click(messages.MENU_HELP, "HELP"),
        ]},
    ]}


async def push_menu(settings: Settings) -> dict[str, Any]:
    import aiohttp

    from bot.clock import SystemClock
    from bot.outbox import endpoints_for
    from bot.wechat_api import WeChatAPI
    from storage.db import Database

    database = Database(settings.database_url)
    try:
        async with aiohttp.ClientSession() as session:
            api = WeChatAPI(settings, database, session, base=endpoints_for(settings).api_base)
            return await api.create_menu(menu_definition(), SystemClock().now())
    finally:
        await asyncio.get_running_loop().run_in_executor(None, database.close)


def cmd_menu_push(args: argparse.Namespace, settings: Settings) -> int:
    from storage.migrate import upgrade
    from bot.wechat_api import TransportError, WeChatError

    upgrade(settings.database_url)  # the token cache lives in the database
    try:
        asyncio.run(push_menu(settings))
    except (WeChatError, TransportError) as exc:
        print(messages.MENU_PUSH_FAILED.format(error=exc), file=sys.stderr)
        return 1
    names = [b["name"] for b in menu_definition()["button"]]
    print(messages.MENU_PUSHED.format(buttons=" | ".join(names)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    menu = sub.add_parser("menu", help="the Official Account menu").add_subparsers(dest="menu_command", required=True)
    menu.add_parser("push", help="create the menu through menu/create").set_defaults(func=cmd_menu_push)
