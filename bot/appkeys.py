"""Typed application keys for the resources `create_app` wires up."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.clock import Clock
from bot.config import Settings
from bot.metrics import Metrics
from bot.presence import Presence
from bot.routing import Dispatcher
from storage.db import Database

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)  # type: ignore[type-abstract]
DATABASE = web.AppKey("database", Database)
METRICS = web.AppKey("metrics", Metrics)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
OUTBOX_WAKE = web.AppKey("outbox_wake", asyncio.Event)
PRESENCE = web.AppKey("presence", Presence)
