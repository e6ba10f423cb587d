"""`create_app`: the one place the aiohttp application and its resources are wired."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from aiohttp import web

from bot import admin_web, server, wall
from bot.appkeys import CLOCK, DATABASE, DISPATCHER, METRICS, OUTBOX_WAKE, PRESENCE, SETTINGS
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.metrics import Metrics
from bot.presence import Presence
from bot.routing import Dispatcher
from storage.db import Database


def create_app(settings: Settings, *, clock: Clock | None = None, database: Database | None = None,
               background: bool = True, dispatcher: Dispatcher | None = None) -> web.Application:
    """The bot. `background=False` leaves out the outbox sender and scheduler (tests drive them)."""
    from handlers import build_dispatcher

    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[METRICS] = Metrics()
    app[DISPATCHER] = dispatcher or build_dispatcher()
    app[OUTBOX_WAKE] = asyncio.Event()
    app[PRESENCE] = Presence()

    async def open_database(app: web.Application) -> AsyncIterator[None]:
        owned = database is None
        app[DATABASE] = database or Database(settings.database_url)
        app[METRICS].watch_database(app[DATABASE])
        yield
        if owned:
            await asyncio.get_running_loop().run_in_executor(None, app[DATABASE].close)

    app.cleanup_ctx.append(open_database)
    app.cleanup_ctx.append(server.flush_presence)
    app.on_startup.append(warm_up_categories)
    if background:
        for step in background_steps():
            app.cleanup_ctx.append(step)
    server.add_routes(app)
    admin_web.setup(app)
    wall.setup(app)  # issue 10: the public wish wall
    if settings.sandbox_enabled:
        from bot import sandbox

        sandbox.setup(app)
    return app


async def warm_up_categories(app: web.Application) -> None:
    """Load jieba's dictionary (about 1–2 s) before the first wish, not inside WeChat's 5-second window."""
    from bot.categories import warm_up

    await asyncio.get_running_loop().run_in_executor(None, warm_up)


def background_steps() -> list:  # type: ignore[type-arg]
    """Cleanup-context steps that run beside the server (outbox sender, scheduler)."""
    from bot.outbox import run_outbox_sender
    from bot.scheduler import run_scheduler

    return [run_outbox_sender, run_scheduler]
