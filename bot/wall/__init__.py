"""The public wish wall at /wall and /wall/<community> (issue 10): no login, no JavaScript.

A busy group chat may open a shared link thousands of times a minute, so each page is built at
most once per `TTL` (a per-key in-process cache on the app's clock, with one build in flight per
key: concurrent misses wait for the same build) and is sent with `Cache-Control: public,
max-age=30` so WeChat's browser and proxies may keep it too.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from aiohttp import web

from bot.appkeys import CLOCK, DATABASE, SETTINGS

TTL = timedelta(seconds=30)
MAX_KEYS = 512
CACHE_CONTROL = f"public, max-age={int(TTL.total_seconds())}"


@dataclass(frozen=True)
class CachedPage:
    status: int
    body: bytes
    expires_at: datetime


class PageCache:
    """Pages by key until they expire; at most `max_keys` kept (the oldest built goes first)."""

    def __init__(self, ttl: timedelta = TTL, max_keys: int = MAX_KEYS) -> None:
        self.ttl, self.max_keys = ttl, max_keys
        self._pages: OrderedDict[str, CachedPage] = OrderedDict()
        self._building: dict[str, asyncio.Future[CachedPage]] = {}
        self.builds = 0

    async def get(self, key: str, now: datetime, build: Callable[[], Awaitable[tuple[int, bytes]]]) -> CachedPage:
        page = self._pages.get(key)
        if page is not None and page.expires_at > now:
            return page
        pending = self._building.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[CachedPage] = asyncio.get_running_loop().create_future()
        self._building[key] = fut
        try:
            status, body = await build()
            self.builds += 1
            page = CachedPage(status, body, now + self.ttl)
            self._pages[key] = page
            self._pages.move_to_end(key)
            while len(self._pages) > self.max_keys:
                self._pages.popitem(last=False)
            fut.set_result(page)
            return page
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except Exception as exc:
            fut.set_exception(exc)
            fut.exception()  # marked retrieved: the waiters get it, nobody else must
            raise
        finally:
            del self._building[key]


WALL_CACHE = web.AppKey("wall_cache", PageCache)


async def wall(request: web.Request) -> web.Response:
    from bot.wall.page import render_not_found, render_wall

    community = request.match_info.get("community")
    if community is not None and len(community) > 64:
        raise web.HTTPNotFound()
    settings, now = request.app[SETTINGS], request.app[CLOCK].now()

    async def build() -> tuple[int, bytes]:
        html = await request.app[DATABASE].read(lambda uow: render_wall(uow, settings, community), now=now)
        return (404, render_not_found().encode("utf-8")) if html is None else (200, html.encode("utf-8"))

    page = await request.app[WALL_CACHE].get("*" if community is None else f"c:{community.strip()}", now, build)
    return web.Response(body=page.body, status=page.status, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": CACHE_CONTROL})


def setup(app: web.Application) -> None:
    """Register /wall and /wall/<community> on `app` (called once from `create_app`)."""
    app[WALL_CACHE] = PageCache()
    app.router.add_get("/wall", wall)
    app.router.add_get("/wall/", wall)
    app.router.add_get("/wall/{community}", wall)
