"""The WeChat / WeCom emulator for tests (it lives in bot/sandbox so the sandbox can mount it)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from aiohttp import web

from bot.clock import Clock
from bot.sandbox.emulator import EmulatorState, Failure, Recorded, create_emulator_app

__all__ = ["EmulatorState", "Failure", "Recorded", "create_emulator_app", "running_emulator"]


@asynccontextmanager
async def running_emulator(clock: Clock, **kwargs: Any) -> AsyncIterator[EmulatorState]:
    """The emulator served over real HTTP on 127.0.0.1 (a free port); `state.base_url` points at it."""
    state = EmulatorState(clock=clock, **kwargs)
    runner = web.AppRunner(create_emulator_app(state), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.base_url = f"http://{host}:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()
