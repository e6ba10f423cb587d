"""The admins' dashboard at /admin: server-rendered pages behind a login.

`setup(app)` is called once from `create_app`. Templates live in this package and are rendered
by an aiohttp-jinja2 environment under its own app key, so other areas may keep their own.
"""

from __future__ import annotations

import functools
from typing import Awaitable, Callable

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot import messages
from bot.appkeys import CLOCK, DATABASE, SETTINGS
from bot.auth import COOKIE_NAME, SESSION_MAX_AGE, AdminView, Session, SessionSigner, check_csrf, load_admin, new_csrf, session_secret

JINJA_KEY = web.AppKey("admin_jinja", jinja2.Environment)
SIGNER = web.AppKey("admin_signer", SessionSigner)
ADMIN = web.RequestKey("admin_view", AdminView)
SESSION = web.RequestKey("admin_session", Session)
FORM = web.RequestKey("admin_form", dict)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def setup(app: web.Application) -> None:
    """Register the dashboard's routes and template environment on `app`."""
    from bot.admin_web import budgets, outreach, views

    aiohttp_jinja2.setup(app, loader=jinja2.PackageLoader("bot.admin_web", "templates"), app_key=JINJA_KEY,
                         autoescape=True, default_helpers=False)
    app[SIGNER] = SessionSigner(session_secret(app[SETTINGS]))
    views.add_routes(app)
    outreach.add_routes(app)  # issue 9: flags, common problems, transcription
    budgets.add_routes(app)  # issue 10: budgets, estimates, cost approvals


def session_of(request: web.Request) -> Session | None:
    return request.app[SIGNER].loads(request.cookies.get(COOKIE_NAME))


def set_session(request: web.Request, response: web.StreamResponse, session: Session) -> None:
    settings = request.app[SETTINGS]
    response.set_cookie(COOKIE_NAME, request.app[SIGNER].dumps(session), path="/admin", httponly=True,
                        samesite="Lax", max_age=SESSION_MAX_AGE,
                        secure=request.secure or settings.public_url.startswith("https://"))


def clear_session(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE_NAME, path="/admin")


async def checked_form(request: web.Request, session: Session | None) -> dict[str, str]:
    """The posted form, or 403 when its CSRF token is missing or not this session's."""
    form = await request.post()
    token = form.get("csrf")
    if not check_csrf(session, token if isinstance(token, str) else None):
        raise web.HTTPForbidden(text="CSRF token missing or invalid")
    return {k: v for k, v in form.items() if isinstance(v, str)}


def admin_page(handler: Handler | None = None, *, global_only: bool = False) -> Callable[..., Handler]:
    """Login required; POSTs must carry the session's CSRF token; community-only admins get 404 where asked."""

    def wrap(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            session = session_of(request)
            if request.method == "POST":
                request[FORM] = await checked_form(request, session)
            if session is None or session.admin_id is None:
                if request.method == "POST":
                    raise web.HTTPForbidden(text="login required")
                raise web.HTTPSeeOther("/admin/login")
            admin_id = session.admin_id
            admin = await request.app[DATABASE].read(lambda uow: load_admin(uow, admin_id), now=request.app[CLOCK].now())
            if admin is None:
                response = web.HTTPSeeOther("/admin/login")
                clear_session(response)
                raise response
            if global_only and not admin.is_global:
                raise web.HTTPNotFound()
            request[ADMIN], request[SESSION] = admin, session
            return await fn(request)

        return wrapped

    return wrap(handler) if handler is not None else wrap


def current_admin(request: web.Request) -> AdminView:
    return request[ADMIN]  # type: ignore[no-any-return]


def render(name: str, request: web.Request, context: dict[str, object], *, status: int = 200) -> web.Response:
    session: Session | None = request.get(SESSION)
    base = {"L": messages.DASH, "STATUS_NAMES": messages.STATUS_NAMES, "TIER_NAMES": messages.TIER_NAMES,
            "admin": request.get(ADMIN), "csrf": session.csrf if session else ""}
    return aiohttp_jinja2.render_template(name, request, base | context, app_key=JINJA_KEY, status=status)


def fresh_session() -> Session:
    return Session(csrf=new_csrf())
