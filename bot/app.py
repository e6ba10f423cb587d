"""`create_app`: the one place the aiohttp application and its resources are wired."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from aiohttp import web

from bot import server
from bot.appkeys import CLOCK, DATABASE, DISPATCHER, METRICS, OUTBOX_WAKE, SETTINGS
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.metrics import Metrics
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

    async def open_database(app: web.Application) -> AsyncIterator[None]:
        owned = database is None
        app[DATABASE] = database or Database(settings.database_url)
        yield
        if owned:
            await asyncio.get_running_loop().run_in_executor(None, app[DATABASE].close)

    app.cleanup_ctx.append(open_database)
    if background:
        for step in background_steps():
            app.cleanup_ctx.append(step)
    server.add_routes(app)
    return app


def background_steps() -> list:  # type: ignore[type-arg]
    """Cleanup-context steps that run beside the server (outbox sender, scheduler)."""
    steps = []
    try:
        from bot.outbox import run_outbox_sender
        steps.append(run_outbox_sender)
    except ImportError:
        pass
    try:
        from bot.scheduler import run_scheduler
        steps.append(run_scheduler)
    except ImportError:
        pass
    return steps
