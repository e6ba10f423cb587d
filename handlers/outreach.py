"""Issue 9, for residents who cannot type and for common problems: voice wishes, 代办, 关联, 合并."""

from __future__ import annotations

from bot import messages
from bot.inbound import Inbound
from bot.lifecycle import Role
from bot.messages import Keyword
from bot.routing import Context, Refused, Router, parse_code, split_args
from bot.services import common_problems, flags, proxy  # noqa: F401  (flags registers its 统计 section)

router = Router("outreach")
ADMIN = [Role.ADMIN]


@router.message("voice")
def voice_wish(msg: Inbound, ctx: Context) -> str:
    """A voice message starts a wish: the MediaId is kept, WeChat's recognition used when present."""
    wish, heard = proxy.file_voice_wish(ctx.uow, resident=ctx.user, media_id=msg.media_id,
                                        recognition=msg.recognition, settings=ctx.settings)
    return proxy.voice_reply(wish, heard)


@router.command(Keyword.PROXY, roles=ADMIN)
def start_proxy(msg: Inbound, ctx: Context) -> str:
    """`代办`: file a wish for a resident (name, phone, community, consent, the wish)."""
    return proxy.start_proxy(ctx.uow, admin=ctx.user, settings=ctx.settings)


@router.dialogue(proxy.FLOW)
def proxy_answer(msg: Inbound, ctx: Context) -> str:
    return proxy.continue_proxy(ctx.uow, admin=ctx.user, msg=msg, settings=ctx.settings)


@router.command(Keyword.LINK)
def link(msg: Inbound, ctx: Context) -> str:
    """`关联 <编号> <手机号后四位>`: take over a wish filed for me."""
    parts = split_args(ctx.args, 2)
    if len(parts) < 2:
        return messages.LINK_USAGE
    return proxy.link_wish(ctx.uow, person=ctx.user, wish_id=parse_code(parts[0]), digits=parts[1].strip(),
                           settings=ctx.settings)


@router.command(Keyword.MERGE, roles=ADMIN)
def merge(msg: Inbound, ctx: Context) -> str:
    """`合并 <编号,编号,…> <单位>`: one common problem handed to a unit."""
    parts = split_args(ctx.args, 2)
    if len(parts) < 2 or not parts[1].strip():
        raise Refused(messages.MERGE_USAGE)
    unit = parts[1].strip()
    merged = common_problems.merge_wishes(ctx.uow, wish_ids=common_problems.parse_codes(parts[0]), admin=ctx.user,
                                          unit=unit, settings=ctx.settings)
    return messages.MERGE_OK.format(codes=messages.COMMON_CODE_SEP.join(str(w.id) for w in merged), unit=unit,
                                    n=len({w.resident_id for w in merged}))
