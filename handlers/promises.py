"""Guardian consent for wishes concerning a minor (issue 9): residents and admins alike."""

from __future__ import annotations

from bot import messages
from bot.inbound import Inbound
from bot.messages import Keyword
from bot.routing import Context, Router, parse_code
from bot.services import guardians

router = Router("promises")


@router.command(Keyword.CONSENT)
def consent(msg: Inbound, ctx: Context) -> str:
    """`监护人同意` (the resident's latest such wish) or `监护人同意 <编号>` (an admin, or the resident)."""
    code = parse_code(ctx.args.split()[0]) if ctx.args else None
    wish, published = guardians.record_consent(ctx.uow, wish_id=code, person=ctx.user, settings=ctx.settings)
    return (messages.CONSENT_PUBLISHED if published else messages.CONSENT_RECORDED).format(code=wish.id)
