"""Budgets (issue 10): `批准 <编号>` lets an admin approve a cost past the community's remaining budget."""

from __future__ import annotations

from bot.inbound import Inbound
from bot.lifecycle import Role
from bot.messages import Keyword
from bot.routing import Context, Router
from bot.services import budgets
from handlers.residents import wish_code

router = Router("budgets")


@router.command(Keyword.APPROVE_COST, roles=[Role.ADMIN])
def approve_cost(msg: Inbound, ctx: Context) -> str:
    """`批准 <编号>`: the cost counts even past what remains; one of two simultaneous approvals wins."""
    code = wish_code(ctx, ctx.args.split()[0] if ctx.args else None)
    return budgets.approve_cost(ctx.uow, wish_id=code, admin=ctx.user, settings=ctx.settings)
