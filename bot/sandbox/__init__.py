"""The sandbox: try the whole bot without a WeChat account.

In sandbox mode `create_app` calls `setup(app)`: the emulator (bot/sandbox/emulator.py) is
mounted at `/sandbox/wx` (WeChat API) and `/sandbox/wecom` (group robots), the outbox sends
there, and `/sandbox` serves a chat page that talks to `/wechat` with signed callbacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.config import Settings
from bot.sandbox.emulator import EmulatorState, create_emulator_app

CLAIM_ROBOT_KEY = "claim-channel"
ADMIN_ROBOT_KEY = "admin-group"
SANDBOX_ADMIN = "o_sandbox_admin_000000000001"


@dataclass
class SandboxState:
    emulator: EmulatorState
    self_url: str | None = None  # learnt from the first request: where our own server listens
    transcript: list[dict[str, Any]] = field(default_factory=list)


SANDBOX = web.AppKey("sandbox", SandboxState)


def emulator_urls(settings: Settings, sandbox_url: str | None = None) -> dict[str, str]:
    """The emulator's endpoints inside our own server (the outbox sends there in sandbox mode)."""
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    base = (sandbox_url or f"http://{host}:{settings.port}").rstrip("/")
    return {
        "api_base": f"{base}/sandbox/wx",
        "claim_webhook": f"{base}/sandbox/wecom/cgi-bin/webhook/send?key={CLAIM_ROBOT_KEY}",
        "admin_webhook": f"{base}/sandbox/wecom/cgi-bin/webhook/send?key={ADMIN_ROBOT_KEY}",
    }


def own_url(app: web.Application) -> str | None:
    state = app.get(SANDBOX)
    return state.self_url if state is not None else None


def setup(app: web.Application) -> None:
    """Mount the emulator and the chat page (sandbox mode only)."""
    from bot.appkeys import CLOCK, SETTINGS
    from bot.sandbox import page

    settings = app[SETTINGS]
    if SANDBOX_ADMIN not in settings.admin_openids:  # the page's admin persona is an admin from the start
        settings.admin_openids = [*settings.admin_openids, SANDBOX_ADMIN]
    state = SandboxState(emulator=EmulatorState(clock=app[CLOCK], webhook_per_minute=settings.webhook_per_minute))
    app[SANDBOX] = state
    app.add_subapp("/sandbox/wx", create_emulator_app(state.emulator))
    app.add_subapp("/sandbox/wecom", create_emulator_app(state.emulator))
    page.add_routes(app)
