"""Dashboard page of issue 10: yearly budgets per community, with a chart, per-branch spending and the
wishes whose costs wait for approval. Forms set a budget, record a wish's estimated cost and approve a
cost (the same services as `microwish budget set` and `批准 <编号>`); every POST carries the CSRF token.
A community admin sees and changes their own community only.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any, Callable, Sequence, TypeVar

from aiohttp import web
from sqlalchemy import or_, select

from bot import messages
from bot.admin_web import FORM, admin_page, current_admin, render
from bot.admin_web import queries as q
from bot.appkeys import CLOCK, DATABASE, SETTINGS
from bot.auth import AdminView
from bot.config import Settings
from bot.lifecycle import WishStatus
from bot.routing import DomainError, refusal_for
from bot.services import budgets
from storage.db import UnitOfWork
from storage.models import OrgUnit, Wish

T = TypeVar("T")
WIDTH, ROW, PAD, LABEL = 640, 34, 8, 110
COLOURS = (("spent", "#c00000"), ("committed", "#f4b6b6"), ("remaining", "#99cc99"))


async def _run(request: web.Request, job: Callable[[UnitOfWork], T], *, write: bool) -> T:
    db, now = request.app[DATABASE], request.app[CLOCK].now()
    return await (db.write(job, now=now) if write else db.read(job, now=now))


def budget_svg(rows: Sequence[budgets.Figures]) -> str:
    """One bar per community: spent, committed and remaining stacked against the budget (inline SVG)."""
    if not rows:
        return ""
    top = max(1.0, *(max(f.amount or 0, f.spent + f.committed + f.pending) for f in rows))
    scale = (WIDTH - LABEL - PAD) / top
    height = PAD * 2 + ROW * len(rows)
    parts = [f'<svg viewBox="0 0 {WIDTH} {height}" width="100%" role="img" class="budget" xmlns="http://www.w3.org/2000/svg">']
    for i, f in enumerate(rows):
        y, x = PAD + i * ROW, float(LABEL)
        parts.append(f'<text x="{LABEL - 6}" y="{y + 20}" font-size="12" text-anchor="end">{escape(f.community)}</text>')
        for key, colour in COLOURS:
            value = max(0.0, getattr(f, key))
            width = value * scale
            if width > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y + 4}" width="{width:.1f}" height="{ROW - 10}" fill="{colour}">'
                             f'<title>{escape(messages.DASH[key])} {budgets.money(value)}</title></rect>')
                x += width
        if f.amount:
            bx = LABEL + f.amount * scale
            parts.append(f'<line x1="{bx:.1f}" y1="{y}" x2="{bx:.1f}" y2="{y + ROW - 2}" stroke="#222" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


@dataclass
class BudgetPage:
    year: int
    figures: list[budgets.Figures]
    branches: list[tuple[str, float]]
    waiting: Sequence[Wish]
    communities: Sequence[OrgUnit]


def budget_page(uow: UnitOfWork, admin: AdminView, settings: Settings, year: int) -> BudgetPage:
    scope = admin.community_id
    waiting = select(Wish).where(or_(Wish.cost_pending.is_(True),
                                     (Wish.est_cost.is_not(None)) & Wish.cost_approved_at.is_(None)
                                     & (Wish.status == WishStatus.PUBLISHED.value)))
    if scope is not None:
        waiting = waiting.where(Wish.community_id == scope)
    return BudgetPage(year, budgets.all_figures(uow, year, settings, community_id=scope),
                      budgets.spent_by_branch(uow, year, settings, community_id=scope),
                      uow.session.execute(waiting.order_by(Wish.id.desc()).limit(100)).scalars().all(),
                      q.communities(uow, admin))


async def _page(request: web.Request, *, error: str | None = None, done: str | None = None,
                status: int = 200) -> web.Response:
    admin, settings = current_admin(request), request.app[SETTINGS]
    year_text = request.query.get("year", "")
    year = int(year_text) if year_text.isdigit() and 2000 <= int(year_text) <= 2100 else \
        budgets.year_of(request.app[CLOCK].now(), settings)
    page = await _run(request, lambda uow: budget_page(uow, admin, settings, year), write=False)
    return render("budgets.html", request, {"p": page, "chart": budget_svg(page.figures), "money": budgets.money,
                                            "error": error, "done": done or (messages.DASH["done"] if request.query.get("done") else None)},
                  status=status)


@admin_page
async def budgets_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@admin_page
async def set_budget(request: web.Request) -> web.StreamResponse:
    admin, form = current_admin(request), request[FORM]
    amount = budgets.parse_amount(form.get("amount", ""))
    year, community = form.get("year", "").strip(), form.get("community", "").strip()
    if amount is None or not year.isdigit() or not 2000 <= int(year) <= 2100 or not community.isdigit():
        return await _page(request, error=messages.DASH["budget_bad"], status=400)
    if admin.community_id is not None and int(community) != admin.community_id:
        raise web.HTTPNotFound()

    def job(uow: UnitOfWork) -> None:
        unit = uow.org.get(int(community))
        if unit is None or unit.kind != "community":
            raise q.OutOfScope(community)
        budgets.set_budget(uow, community_id=unit.id or 0, year=int(year), amount=amount)

    try:
        await _run(request, job, write=True)
    except q.OutOfScope:
        raise web.HTTPNotFound() from None
    raise web.HTTPSeeOther(f"/admin/budgets?year={year}&done=1")


WishJob = Callable[[UnitOfWork, Any, int, dict[str, str], Settings], Any]


def _wish_action(fn: WishJob) -> Callable[[web.Request], Any]:
    """A POST naming a wish (`code`): scoped to the admin, refusals shown on the page."""
    @admin_page
    async def handler(request: web.Request) -> web.StreamResponse:
        admin, form, settings = current_admin(request), request[FORM], request.app[SETTINGS]
        code = form.get("code", "").strip().lstrip("#＃Ww")
        if not code.isdigit():
            return await _page(request, error=messages.BAD_NUMBER.format(text=code), status=400)

        def job(uow: UnitOfWork) -> Any:
            q.scoped_wish(uow, admin, int(code))
            return fn(uow, uow.people.get(admin.person_id), int(code), form, settings)

        try:
            result = await _run(request, job, write=True)
        except q.OutOfScope:
            raise web.HTTPNotFound() from None
        except (DomainError, LookupError) as exc:
            return await _page(request, error=refusal_for(exc, code) or str(exc), status=409)
        if form.get("back") == "wish":  # posted from the wish's own page: back there
            raise web.HTTPSeeOther(f"/admin/wishes/{code}?done=1")
        return await _page(request, done=result if isinstance(result, str) else messages.DASH["done"])

    return handler


def _estimate(uow: UnitOfWork, admin: Any, code: int, form: dict[str, str], settings: Settings) -> None:
    text = form.get("amount", "").strip()
    amount = budgets.parse_amount(text) if text else None
    if text and amount is None:
        raise DomainError(messages.COST_BAD_AMOUNT.format(code=code))
    budgets.set_estimate(uow, wish_id=code, amount=amount, admin=admin)


def _approve(uow: UnitOfWork, admin: Any, code: int, form: dict[str, str], settings: Settings) -> str:
    return budgets.approve_cost(uow, wish_id=code, admin=admin, settings=settings)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/budgets", budgets_page)
    r.add_post("/admin/budgets", set_budget)
    r.add_post("/admin/budgets/estimate", _wish_action(_estimate))
    r.add_post("/admin/budgets/approve", _wish_action(_approve))
