"""The ceiling: a bare aiohttp handler that answers `success` (run as its own process)."""

from __future__ import annotations

import sys

from aiohttp import web


async def success(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="success")


def main() -> None:
    app = web.Application()
    app.router.add_post("/wechat", success)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
