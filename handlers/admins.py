"""Admins: registration, routing, close-out, return visits by phone, figures (issue 3)."""

from __future__ import annotations

from bot import messages
from bot.categories import is_category
from bot.inbound import Inbound
from bot.lifecycle import Role, Tier, WishStatus
from bot.messages import Keyword
from bot.routing import Context, Refused, Router, split_args
from bot.services import common_problems, registration, stats
from handlers.residents import wish_code

router = Router("admins")
ADMIN = [Role.ADMIN]


@router.command(Keyword.PENDING, roles=ADMIN)
def pending(msg: Inbound, ctx: Context) -> str:
    """`待审`: wishes waiting for registration."""
    waiting = registration.pending_wishes(ctx.uow)
    common = common_problems.pending_section(ctx.uow, ctx.settings)  # issue 9: proposed 共性 groups
    if not waiting:
        return "\n".join(p for p in (messages.PENDING_EMPTY, common) if p)
    lines = [messages.PENDING_HEADER.format(n=len(waiting))]
    for w in waiting:
        line = messages.PENDING_LINE.format(code=w.id, category=w.category, text=w.content)
        if w.tier != Tier.PERSONAL.value:
            line += messages.PENDING_TIER.format(tier=messages.TIER_NAMES[w.tier])
        if w.concerns_minor:
            line += messages.PENDING_MINOR
        lines.append(line)
    return "\n".join(lines + ([common] if common else []))


@router.command(Keyword.APPROVE, roles=ADMIN)
def approve(msg: Inbound, ctx: Context) -> str:
    """`通过 <编号> [个性|共性|老大难] [未成年] [类别] [承办单位]`."""
    parts = split_args(ctx.args, 2)
    code = wish_code(ctx, parts[0] if parts else None)
    tier, minor, category, rest = Tier.PERSONAL, False, None, (parts[1].split() if len(parts) > 1 else [])
    while rest:
        word = rest[0]
        if word in messages.TIER_WORDS:
            tier = Tier(messages.TIER_WORDS[word])
        elif word == messages.MINOR_WORD:
            minor = True
        elif is_category(word):
            category = word
        else:
            break
        rest.pop(0)
    if rest and tier == Tier.PERSONAL:
        raise Refused(messages.APPROVE_USAGE.format(word=rest[0], code=code,
                                                    categories=messages.DLG_CATEGORY_SEPARATOR.join(messages.CATEGORIES)))
    unit = " ".join(rest) or None
    wish = registration.approve_wish(ctx.uow, wish_id=code, admin=ctx.user, tier=tier, settings=ctx.settings,
                                     minor=minor, category=category, unit=unit)
    if wish.status == WishStatus.ASSIGNED.value:
        return messages.ASSIGN_OK.format(code=code, unit=unit)
    if wish.status == WishStatus.SUBMITTED.value and tier == Tier.PERSONAL:  # a minor's wish waits for consent
        return messages.APPROVE_HELD_MINOR.format(code=code)
    template = messages.APPROVE_OK if tier == Tier.PERSONAL else messages.ROUTE_OK
    return template.format(code=code, tier=messages.TIER_NAMES[tier.value]) + (
        messages.APPROVE_CATEGORY_TAIL.format(category=wish.category) if category else "")


def _code_and_text(ctx: Context, missing: str) -> tuple[int, str]:
    parts = split_args(ctx.args, 2)
    code = wish_code(ctx, parts[0] if parts else None)
    if len(parts) < 2 or not parts[1].strip():
        raise Refused(missing.format(code=code))
    return code, parts[1].strip()


@router.command(Keyword.REJECT, roles=ADMIN)
def reject(msg: Inbound, ctx: Context) -> str:
    code, reason = _code_and_text(ctx, messages.NEED_REASON.format(example=messages.REJECT_EXAMPLE))
    registration.reject_wish(ctx.uow, wish_id=code, admin=ctx.user, reason=reason, settings=ctx.settings)
    return messages.REJECT_OK.format(code=code)


@router.command(Keyword.DEFER, roles=ADMIN)
def defer(msg: Inbound, ctx: Context) -> str:
    code, reason = _code_and_text(ctx, messages.NEED_REASON.format(example=messages.DEFER_EXAMPLE))
    registration.defer_wish(ctx.uow, wish_id=code, admin=ctx.user, reason=reason, settings=ctx.settings)
    return messages.DEFER_OK.format(code=code)


@router.command(Keyword.ASSIGN, roles=ADMIN)
def assign(msg: Inbound, ctx: Context) -> str:
    code, unit = _code_and_text(ctx, messages.NEED_UNIT)
    registration.assign_wish(ctx.uow, wish_id=code, admin=ctx.user, unit=unit, settings=ctx.settings)
    return messages.ASSIGN_OK.format(code=code, unit=unit)


@router.command(Keyword.CLOSE, roles=ADMIN)
def close(msg: Inbound, ctx: Context) -> str:
    code = wish_code(ctx, ctx.args.split()[0] if ctx.args else None)
    registration.close_wish(ctx.uow, wish_id=code, admin=ctx.user, settings=ctx.settings)
    return messages.CLOSE_OK.format(code=code)


@router.command(Keyword.VISIT, roles=ADMIN)
def visit(msg: Inbound, ctx: Context) -> str:
    """`回访 <编号> <已解决|部分解决|未解决> [1-5] [说明]`."""
    parts = split_args(ctx.args, 3)
    code = wish_code(ctx, parts[0] if parts else None)
    answer = messages.FEEDBACK_WORDS.get(parts[1]) if len(parts) > 1 else None
    if answer is None:
        raise Refused(messages.VISIT_USAGE.format(code=code))
    rest = parts[2] if len(parts) > 2 else ""
    rating: int | None = None
    head, _, tail = rest.partition(" ")
    if head.isdigit():
        rating, rest = int(head), tail.strip()
    wish = registration.record_visit(ctx.uow, wish_id=code, admin=ctx.user, answer=answer, rating=rating,
                                     note=rest or None, settings=ctx.settings)
    reply = messages.VISIT_OK.format(code=code, answer=messages.FEEDBACK_NAMES[answer],
                                     rating=messages.ALERT_RATING.format(rating=rating) if rating else "")
    tail_text = messages.VISIT_CLOSE_HINT.format(code=code) if wish.status == WishStatus.RATED.value else messages.VISIT_REOPENED
    return reply + tail_text


@router.command(Keyword.STATS, roles=ADMIN)
def show_stats(msg: Inbound, ctx: Context) -> str:
    return stats.stats_text(ctx.uow, ctx.settings)
