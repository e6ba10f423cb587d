"""APScheduler inside `serve`: it only ticks; every job is an idempotent sweep over the database.

One interval job runs all sweeps (bot/services/sweeps.py) every minute, and once at start so a
run missed while the bot was down catches up at once. Sweeps run on a worker thread, never on
the event loop. With several processes each due item is still taken by only one of them.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.appkeys import CLOCK, DATABASE, OUTBOX_WAKE, SETTINGS
from bot.clock import SystemClock
from bot.logs import get_logger
from bot.services.sweeps import run_due_sweeps

SWEEP_SECONDS = 60
log = get_logger("microwish.scheduler")


async def tick(app: web.Application) -> int:
    """Run every due sweep as of the app's clock; wake the outbox sender if anything was queued."""
    settings, database = app[SETTINGS], app[DATABASE]
    now = app[CLOCK].now()
    try:
        outcomes = await asyncio.get_running_loop().run_in_executor(None, run_due_sweeps, database, settings, now)
    except Exception:  # the job wrapper: log and carry on at the next tick
        log.exception("scheduler.tick_failed")
        return 0
    done = sum(o.count for o in outcomes)
    if done:
        app[OUTBOX_WAKE].set()
    return done


async def run_scheduler(app: web.Application) -> AsyncIterator[None]:
    """Cleanup-context step: start the scheduler (with a catch-up run now), stop it on shutdown."""
    settings = app[SETTINGS]
    scheduler = AsyncIOScheduler(timezone=settings.tz,
                                 job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": SWEEP_SECONDS})
    running = asyncio.Lock()  # shutdown waits for a tick in flight before the database closes

    async def guarded_tick() -> None:
        async with running:
            await tick(app)

    scheduler.add_job(guarded_tick, IntervalTrigger(seconds=SWEEP_SECONDS, timezone=settings.tz), id="sweeps",
                      name="sweeps", next_run_time=SystemClock().now())  # catch-up at start
    scheduler.start()
    log.info("scheduler.started", every_seconds=SWEEP_SECONDS, timezone=settings.timezone)
    try:
        yield
    finally:
        scheduler.shutdown(wait=False)
        async with running:
            pass
