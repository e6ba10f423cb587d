"""Residents: submit a wish (one-shot or the dialogue), follow it, answer the return visit."""

from __future__ import annotations

from bot import messages
from bot.inbound import Inbound
from bot.messages import Keyword
from bot.routing import Context, Refused, Router, parse_code, split_args
from bot.services import dialogue, wish_batch, wishes
from bot.services.wishes import WishDraft

router = Router("residents")


def wish_code(ctx: Context, token: str | None) -> int:
    """The wish number in `token`, or a refusal showing how to write the command."""
    if not token:
        raise Refused(messages.NEED_NUMBER.format(example=f"{ctx.keyword.value if ctx.keyword else ''} 12"))
    return parse_code(token)


@router.command(Keyword.WISH, batch=wish_batch.submit_many)
def wish(msg: Inbound, ctx: Context) -> str:
    """`许愿 <内容>` stores the wish (asking first if it repeats an open one); `许愿` alone starts the dialogue."""
    if not ctx.args:
        return dialogue.start_wish_dialogue(ctx.uow, resident=ctx.user, settings=ctx.settings)
    return dialogue.submit_or_confirm(ctx.uow, resident=ctx.user, draft=WishDraft(content=ctx.args),
                                      settings=ctx.settings)


@router.dialogue(dialogue.FLOW)
def wish_dialogue(msg: Inbound, ctx: Context) -> str:
    """One answer inside the 许愿 dialogue (text, or a location for the community)."""
    return dialogue.continue_wish_dialogue(ctx.uow, resident=ctx.user, msg=msg, settings=ctx.settings)


@router.command(Keyword.MINE)
def mine(msg: Inbound, ctx: Context) -> str:
    return wishes.mine(ctx.uow, resident=ctx.user, settings=ctx.settings)


@router.command(Keyword.TRACK)
def track(msg: Inbound, ctx: Context) -> str:
    """`进度 <编号>`: the timeline, step by step."""
    code = wish_code(ctx, ctx.args)
    return wishes.track(ctx.uow, wish_id=code, viewer=ctx.user, settings=ctx.settings)


@router.command(Keyword.CANCEL)
def cancel(msg: Inbound, ctx: Context) -> str:
    code = wish_code(ctx, ctx.args)
    wishes.cancel_wish(ctx.uow, wish_id=code, resident=ctx.user, settings=ctx.settings)
    return messages.CANCEL_OK.format(code=code)


@router.command(Keyword.PRIVATE)
def make_private(msg: Inbound, ctx: Context) -> str:
    code = wish_code(ctx, ctx.args)
    wishes.make_private(ctx.uow, wish_id=code, resident=ctx.user)
    return messages.PRIVATE_OK.format(code=code)


def _rated_reply(wish_id: int | None, rating: int, closed: bool) -> str:
    if closed:
        return messages.RATE_OK.format(code=wish_id, stars=messages.RATE_STAR * rating) + messages.RATE_CLOSED_TAIL
    return messages.RATE_LOW.format(code=wish_id)


@router.command(Keyword.RATE)
def rate(msg: Inbound, ctx: Context) -> str:
    """`评价 <编号> <1-5> [留言]`."""
    parts = split_args(ctx.args, 3)
    code = wish_code(ctx, parts[0] if parts else None)
    if len(parts) < 2 or parts[1] not in {"1", "2", "3", "4", "5"}:
        raise Refused(messages.RATE_BAD_SCORE.format(code=code))
    rating = int(parts[1])
    done = wishes.rate_wish(ctx.uow, wish_id=code, resident=ctx.user, rating=rating,
                            note=parts[2] if len(parts) > 2 else None, settings=ctx.settings)
    return _rated_reply(done.id, rating, done.status == "closed")


def _is_bare_score(msg: Inbound, ctx: Context) -> bool:
    return msg.msg_type == "text" and msg.content.strip() in {"1", "2", "3", "4", "5"}


@router.when(_is_bare_score)
def bare_score(msg: Inbound, ctx: Context) -> str:
    """A bare 1–5 answers the latest wish waiting for feedback."""
    rating = int(msg.content.strip())
    done = wishes.rate_wish(ctx.uow, wish_id=None, resident=ctx.user, rating=rating, note=None, settings=ctx.settings)
    return _rated_reply(done.id, rating, done.status == "closed")


@router.command(Keyword.SOLVED, Keyword.PARTLY, Keyword.UNSOLVED)
def feedback(msg: Inbound, ctx: Context) -> str:
    """`已解决` / `部分解决` / `未解决` [编号]: the latest wish waiting for feedback when no number."""
    answer = messages.FEEDBACK_WORDS[ctx.keyword.value if ctx.keyword else ""]
    code = parse_code(ctx.args.split()[0]) if ctx.args else None
    done = wishes.answer_feedback(ctx.uow, wish_id=code, resident=ctx.user, answer=answer, settings=ctx.settings)
    reply = messages.FEEDBACK_OK.format(code=done.id, answer=messages.FEEDBACK_NAMES[answer])
    return reply + (messages.RATE_CLOSED_TAIL if done.status == "closed" else messages.FEEDBACK_REOPENED_TAIL)
