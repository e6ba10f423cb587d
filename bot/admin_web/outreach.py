"""Dashboard pages of issue 9: the flags and common-problem page, transcribing a voice wish, merging.

Writes go through the same services as the chat (`proxy.transcribe_wish`,
`common_problems.merge_wishes`); every POST carries the session's CSRF token (`admin_page`).
A community admin sees and acts on their own community only.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from aiohttp import web

from bot import messages
from bot.admin_web import FORM, admin_page, current_admin, render
from bot.admin_web import queries as q
from bot.appkeys import CLOCK, DATABASE, SETTINGS
from bot.routing import refusal_for
from bot.services import common_problems, flags, proxy
from storage.db import UnitOfWork

T = TypeVar("T")


async def _run(request: web.Request, job: Callable[[UnitOfWork], T], *, write: bool) -> T:
    db, now = request.app[DATABASE], request.app[CLOCK].now()
    return await (db.write(job, now=now) if write else db.read(job, now=now))


async def _flags_page(request: web.Request, *, error: str | None = None, status: int = 200) -> web.Response:
    admin, settings = current_admin(request), request.app[SETTINGS]

    def job(uow: UnitOfWork) -> tuple[list[flags.Flag], list[common_problems.Proposal]]:
        return (flags.all_flags(uow, settings, community_id=admin.community_id),
                common_problems.proposals(uow, settings, community_id=admin.community_id))

    found, proposals = await _run(request, job, write=False)
    return render("flags.html", request, {"flags": found, "proposals": proposals, "settings": settings, "error": error,
                                          "done": request.query.get("done") == "1"}, status=status)


@admin_page
async def flags_page(request: web.Request) -> web.StreamResponse:
    return await _flags_page(request)


@admin_page
async def merge(request: web.Request) -> web.StreamResponse:
    """Merge a proposed group (or any wishes the admin lists) into one common problem for a unit."""
    admin, settings, form = current_admin(request), request.app[SETTINGS], request[FORM]
    unit = form.get("unit", "").strip()
    if not unit:
        return await _flags_page(request, error=messages.MERGE_USAGE, status=400)

    def job(uow: UnitOfWork) -> None:
        codes = common_problems.parse_codes(form.get("codes", ""))
        for code in codes:
            q.scoped_wish(uow, admin, code)
        common_problems.merge_wishes(uow, wish_ids=codes, admin=uow.people.get(admin.person_id), unit=unit,
                                     settings=settings)

    try:
        await _run(request, job, write=True)
    except q.OutOfScope:
        raise web.HTTPNotFound() from None
    except Exception as exc:  # a domain refusal is shown on the page; anything else propagates
        text = refusal_for(exc)
        if text is None:
            raise
        return await _flags_page(request, error=text, status=409)
    raise web.HTTPSeeOther("/admin/flags?done=1")


@admin_page
async def transcribe(request: web.Request) -> web.StreamResponse:
    """Write down what a voice wish says (recorded on the timeline as 语音转文字)."""
    from bot.admin_web.views import act_on_wish

    admin, settings, form = current_admin(request), request.app[SETTINGS], request[FORM]
    wish_id = int(request.match_info["wish_id"])

    def job(uow: UnitOfWork) -> Any:
        q.scoped_wish(uow, admin, wish_id)
        return proxy.transcribe_wish(uow, wish_id=wish_id, admin=uow.people.get(admin.person_id),
                                     text=form.get("text", ""), settings=settings)

    return await act_on_wish(request, wish_id, job)


@admin_page
async def voice(request: web.Request) -> web.StreamResponse:
    """The voice of a voice wish, fetched from WeChat's temporary media (kept there for 3 days)."""
    import aiohttp

    from bot.outbox import endpoints_for
    from bot.wechat_api import TransportError, WeChatAPI, WeChatError

    admin, settings = current_admin(request), request.app[SETTINGS]
    wish_id = int(request.match_info["wish_id"])
    try:
        media_id = await _run(request, lambda uow: q.scoped_wish(uow, admin, wish_id).voice_media_id, write=False)
    except q.OutOfScope:
        raise web.HTTPNotFound() from None
    if not media_id:
        raise web.HTTPNotFound()
    sandbox_url = None
    if settings.sandbox_enabled:
        from bot.sandbox import own_url

        sandbox_url = own_url(request.app)
    async with aiohttp.ClientSession() as session:
        api = WeChatAPI(settings, request.app[DATABASE], session, base=endpoints_for(settings, sandbox_url=sandbox_url).api_base)
        try:
            data, kind = await api.get_media(media_id, request.app[CLOCK].now())
        except (WeChatError, TransportError):
            raise web.HTTPBadGateway(text=messages.DASH["voice_unavailable"]) from None
    return web.Response(body=data, content_type=kind, headers={
        "Content-Disposition": f'attachment; filename="voice-{wish_id}.amr"', "Cache-Control": "private, no-store"})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/flags", flags_page)
    r.add_post("/admin/flags/merge", merge)
    r.add_post(r"/admin/transcribe/{wish_id:\d+}", transcribe)
    r.add_get(r"/admin/voice/{wish_id:\d+}", voice)
