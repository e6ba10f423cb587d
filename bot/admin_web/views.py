"""Dashboard pages and actions. Every read and write runs as a database job, off the event loop."""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Any, Callable, TypeVar
from urllib.parse import quote, urlencode

from aiohttp import web

from bot import messages
from bot.admin_web import (FORM, admin_page, checked_form, clear_session, current_admin, fresh_session, render,
                           session_of, set_session)
from bot.admin_web import queries as q
from bot.admin_web.charts import trend_svg
from bot.appkeys import CLOCK, DATABASE, SETTINGS
from bot.auth import Session, attempt_login
from bot.lifecycle import Action, Tier, allowed_actions
from bot.privacy import mask_name, mask_phone
from bot.routing import refusal_for
from bot.services import ledger
from bot.timefmt import fmt_iso_local
from storage.db import UnitOfWork

T = TypeVar("T")
DASHBOARD_ACTIONS = (Action.APPROVE, Action.REJECT, Action.DEFER, Action.ASSIGN, Action.CLOSE)


async def _read(request: web.Request, job: Callable[[UnitOfWork], T]) -> T:
    return await request.app[DATABASE].read(job, now=request.app[CLOCK].now())


async def _write(request: web.Request, job: Callable[[UnitOfWork], T]) -> T:
    return await request.app[DATABASE].write(job, now=request.app[CLOCK].now())


def _helpers(request: web.Request) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    return {"fmt": lambda dt: fmt_iso_local(dt, settings), "mask_name": mask_name, "mask_phone": mask_phone}


# -- login ---------------------------------------------------------------------------------

async def login_form(request: web.Request) -> web.StreamResponse:
    session = session_of(request) or fresh_session()
    response = render("login.html", request, {"csrf": session.csrf, "error": None})
    set_session(request, response, session)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    form = await checked_form(request, session)
    settings = request.app[SETTINGS]
    result = await _write(request, lambda uow: attempt_login(uow, username=form.get("username", ""),
                                                             password=form.get("password", ""), settings=settings))
    if result.admin_id is None:
        error = (messages.DASH["login_locked"].format(minutes=settings.admin_lock_minutes) if result.locked
                 else messages.DASH["login_failed"])
        return render("login.html", request, {"csrf": session.csrf if session else "", "error": error}, status=401)
    response = web.HTTPSeeOther("/admin")
    set_session(request, response, Session(csrf=fresh_session().csrf, admin_id=result.admin_id))  # rotate on login
    return response


@admin_page
async def logout(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther("/admin/login")
    clear_session(response)
    return response


# -- pages ---------------------------------------------------------------------------------

@admin_page
async def overview(request: web.Request) -> web.StreamResponse:
    admin, settings = current_admin(request), request.app[SETTINGS]
    ov = await _read(request, lambda uow: q.overview(uow, admin, settings))
    return render("overview.html", request, {"ov": ov, "chart": trend_svg(ov.trend, settings),
                                             "hours": settings.claim_sla_hours, **_helpers(request)})


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _filter(request: web.Request) -> q.WishFilter:
    g = request.query.get
    return q.WishFilter(state=g("state", ""), category=g("category", ""), tier=g("tier", ""),
                        community=_int(g("community")), branch=_int(g("branch")), overdue=g("overdue") == "1",
                        phone_visit=g("phone_visit") == "1", before=_int(g("before")))


@admin_page
async def wishes(request: web.Request) -> web.StreamResponse:
    admin, flt = current_admin(request), _filter(request)

    def job(uow: UnitOfWork) -> tuple[q.WishPage, Any, Any]:
        return q.wishes_page(uow, admin, flt), q.communities(uow, admin), q.branch_units(uow, admin)

    page, communities, branches = await _read(request, job)
    next_url = "/admin/wishes?" + urlencode(flt.query(before=page.next_cursor)) if page.next_cursor else None
    return render("wishes.html", request, {
        "page": page, "flt": flt, "communities": communities, "branches": branches, "next_url": next_url,
        "categories": messages.CATEGORIES, "export_query": urlencode(flt.query(before=None)), **_helpers(request)})


async def _wish_page(request: web.Request, wish_id: int, *, error: str | None = None, status: int = 200) -> web.Response:
    admin = current_admin(request)
    try:
        detail = await _read(request, lambda uow: q.wish_detail(uow, admin, wish_id))
    except q.OutOfScope:
        raise web.HTTPNotFound() from None
    actions = [a.value for a in DASHBOARD_ACTIONS if a in allowed_actions(detail.wish.status)]
    return render("wish.html", request, {"d": detail, "w": detail.wish, "actions": actions, "error": error,
                                         "done": request.query.get("done") == "1", "tiers": list(Tier),
                                         "ACTION_NAMES": messages.ACTION_NAMES, "ROLE_NAMES": messages.ROLE_NAMES,
                                         **_helpers(request)}, status=status)


@admin_page
async def wish(request: web.Request) -> web.StreamResponse:
    return await _wish_page(request, int(request.match_info["wish_id"]))


@admin_page
async def wish_action(request: web.Request) -> web.StreamResponse:
    """Approve, reject, defer, assign or close through the same services as the chat commands."""
    admin, settings, form = current_admin(request), request.app[SETTINGS], request[FORM]
    wish_id, action = int(request.match_info["wish_id"]), request.match_info["action"]
    if action not in {a.value for a in DASHBOARD_ACTIONS}:
        raise web.HTTPNotFound()
    reason, unit = form.get("reason", "").strip(), form.get("unit", "").strip()
    if (action in ("reject", "defer") and not reason) or (action == "assign" and not unit):
        return await _wish_page(request, wish_id, error=messages.DASH["need_text"], status=400)

    def job(uow: UnitOfWork) -> None:
        from bot.services import registration

        q.scoped_wish(uow, admin, wish_id)
        person = uow.people.get(admin.person_id)
        common = {"wish_id": wish_id, "admin": person, "settings": settings}
        if action == "approve":
            registration.approve_wish(uow, tier=Tier(form.get("tier", "personal")), minor=form.get("minor") == "1",
                                      **({"unit": unit} if unit else {}), **common)
        elif action == "reject":
            registration.reject_wish(uow, reason=reason, **common)
        elif action == "defer":
            registration.defer_wish(uow, reason=reason, **common)
        elif action == "assign":
            registration.assign_wish(uow, unit=unit, **common)
        else:
            registration.close_wish(uow, **common)

    return await act_on_wish(request, wish_id, job)


async def act_on_wish(request: web.Request, wish_id: int, job: Callable[[UnitOfWork], Any]) -> web.StreamResponse:
    """Run an action on one wish: a domain refusal is shown on its page, success goes back to it."""
    try:
        await _write(request, job)
    except q.OutOfScope:
        raise web.HTTPNotFound() from None
    except Exception as exc:  # anything that is not a domain refusal propagates
        text = refusal_for(exc, str(wish_id))
        if text is None:
            raise
        return await _wish_page(request, wish_id, error=text, status=409)
    raise web.HTTPSeeOther(f"/admin/wishes/{wish_id}?done=1")


@admin_page
async def members(request: web.Request) -> web.StreamResponse:
    admin, settings = current_admin(request), request.app[SETTINGS]
    rows = await _read(request, lambda uow: q.members(uow, admin, settings))
    return render("members.html", request, {"rows": rows, "quota": settings.member_yearly_quota})


@admin_page
async def branches(request: web.Request) -> web.StreamResponse:
    admin, settings = current_admin(request), request.app[SETTINGS]
    rows = await _read(request, lambda uow: q.branches(uow, admin, settings))
    return render("branches.html", request, {"rows": rows, "quota": settings.branch_yearly_quota})


@admin_page(global_only=True)
async def outbox(request: web.Request) -> web.StreamResponse:
    rows = await _read(request, q.dead_outbox)
    return render("outbox.html", request, {"rows": rows, "done": request.query.get("done") == "1", **_helpers(request)})


@admin_page(global_only=True)
async def outbox_retry(request: web.Request) -> web.StreamResponse:
    outbox_id = int(request.match_info["outbox_id"])
    await _write(request, lambda uow: q.retry_outbox(uow, outbox_id))
    raise web.HTTPSeeOther("/admin/outbox?done=1")


# -- the ledger ----------------------------------------------------------------------------

def _attachment(name: str) -> str:
    return f"attachment; filename=\"ledger.{name.rsplit('.', 1)[1]}\"; filename*=UTF-8''{quote(name)}"


@admin_page
async def export(request: web.Request) -> web.StreamResponse:
    """The ledger, streamed: CSV batch by batch, XLSX built in a worker thread then sent in chunks."""
    admin, settings, db = current_admin(request), request.app[SETTINGS], request.app[DATABASE]
    fmt, now = request.match_info["fmt"], request.app[CLOCK].now()
    scope = admin.community_id
    name = f"{messages.LEDGER_FILENAME}.{fmt}"
    if fmt == "csv":
        response = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8",
                                               "Content-Disposition": _attachment(name)})
        await response.prepare(request)
        await response.write((ledger.CSV_BOM + ledger.csv_chunk([], header=True)).encode("utf-8"))
        last = 0
        while True:
            last, rows = await db.read(lambda uow: ledger.fetch_batch(uow, after_id=last, settings=settings,
                                                                      community_id=scope), now=now)
            if not rows:
                break
            await response.write(ledger.csv_chunk(rows).encode("utf-8"))
        await response.write_eof()
        return response
    fd, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(fd)
    try:
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: ledger.write_xlsx(ledger.iter_batches(db, settings, now, community_id=scope), path,
                                            budget=db.run_sync(lambda uow: ledger.budget_rows(uow, settings, community_id=scope),
                                                               now, write=False)))
        response = web.StreamResponse(headers={
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "Content-Disposition": _attachment(name), "Content-Length": str(os.path.getsize(path))})
        await response.prepare(request)
        with open(path, "rb") as fh:
            while chunk := await asyncio.get_running_loop().run_in_executor(None, fh.read, 256 * 1024):
                await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        os.unlink(path)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin", overview)
    r.add_get("/admin/", overview)
    r.add_get("/admin/login", login_form)
    r.add_post("/admin/login", login)
    r.add_post("/admin/logout", logout)
    r.add_get("/admin/wishes", wishes)
    r.add_get(r"/admin/wishes/{wish_id:\d+}", wish)
    r.add_post(r"/admin/wishes/{wish_id:\d+}/{action:[a-z]+}", wish_action)
    r.add_get("/admin/members", members)
    r.add_get("/admin/branches", branches)
    r.add_get("/admin/outbox", outbox)
    r.add_post(r"/admin/outbox/{outbox_id:\d+}/retry", outbox_retry)
    r.add_get("/admin/export.{fmt:csv|xlsx}", export)
