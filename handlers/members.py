"""Party members: binding, the hall, claims and reports (issue 4)."""

from __future__ import annotations

from datetime import timedelta

from bot import messages
from bot.inbound import Inbound
from bot.lifecycle import Role
from bot.messages import Keyword
from bot.routing import Context, Refused, Router, parse_code, split_args
from bot.services import budgets, claims, members, promises, quotas  # noqa: F401  (quotas registers its 统计 section)

router = Router("members")
MEMBER = {Role.MEMBER}
BIND_FLOW = "bind"


def _code_and_rest(ctx: Context, example: str) -> tuple[int, str]:
    parts = split_args(ctx.args, 2)
    if not parts:
        raise Refused(messages.NEED_NUMBER.format(example=example))
    return parse_code(parts[0]), (parts[1] if len(parts) > 1 else "")


def _bound(ctx: Context) -> str:
    name, branch = members.member_label(ctx.uow, ctx.user)
    return messages.BIND_OK.format(name=name, branch=branch)


@router.command(Keyword.BIND)
def bind(msg: Inbound, ctx: Context) -> str:
    """`绑定 <邀请码> [姓名]`: become a member; asks the name when neither the code nor the message has one."""
    parts = split_args(ctx.args, 2)
    if not parts:
        return messages.BIND_USAGE
    code, name = parts[0], (parts[1] if len(parts) > 1 else None)
    invite = members.check_invite(ctx.uow, person=ctx.user, code=code)
    if not members.clean_name(name) and not invite.name:
        ctx.uow.dialogues.start(ctx.user.id or 0, flow=BIND_FLOW, step="name", data={"code": invite.code},
                                expires_at=ctx.now + timedelta(minutes=ctx.settings.dialogue_timeout_minutes))
        return messages.BIND_ASK_NAME
    members.bind_member(ctx.uow, person=ctx.user, code=code, name=name, settings=ctx.settings)
    return _bound(ctx)


@router.dialogue(BIND_FLOW)
def bind_name(msg: Inbound, ctx: Context) -> str:
    """The name step of `绑定`."""
    state = ctx.uow.dialogues.active(ctx.user.id or 0, ctx.now)
    text = msg.content.strip()
    if text in messages.LEAVE_WORDS or state is None:
        ctx.uow.dialogues.clear(ctx.user.id or 0)
        return messages.BIND_LEFT
    if not members.clean_name(text):
        return messages.BIND_ASK_NAME
    ctx.uow.dialogues.clear(ctx.user.id or 0)
    members.bind_member(ctx.uow, person=ctx.user, code=state.data["code"], name=text, settings=ctx.settings)
    return _bound(ctx)


@router.command(Keyword.SKILLS, roles=MEMBER)
def skills(msg: Inbound, ctx: Context) -> str:
    """`特长 <标签…>`: replace my skill tags."""
    tags = members.set_skills(ctx.uow, member=ctx.user, text=ctx.args)
    return messages.SKILLS_OK.format(skills=messages.LIST_SEP.join(tags))


@router.command(Keyword.HALL, roles=MEMBER)
def hall(msg: Inbound, ctx: Context) -> str:
    """`大厅`: unclaimed wishes, best for me first."""
    return claims.hall_text(ctx.uow, member=ctx.user, settings=ctx.settings)


@router.command(Keyword.CLAIM, roles=MEMBER)
def claim(msg: Inbound, ctx: Context) -> str:
    """`认领 <编号> [天数] [协助 <姓名…>]`: the lead promises the dates; helpers are credited too."""
    wish_id, rest = _code_and_rest(ctx, messages.EXAMPLE_CLAIM)
    before, helpers = promises.split_helpers(rest.split())
    days_text = before[0] if before else ""
    if days_text and not days_text.isdigit():
        raise Refused(messages.CLAIM_BAD_DAYS.format(max=ctx.settings.claim_max_days, code=wish_id))
    if helpers is not None and not helpers:
        raise Refused(messages.CLAIM_HELPERS_NONE.format(code=wish_id))
    held = budgets.hold_claim(ctx.uow, wish_id=wish_id, member=ctx.user, settings=ctx.settings)  # issue 10
    if held:
        return held
    made = claims.claim_wish(ctx.uow, wish_id=wish_id, member=ctx.user, days=int(days_text) if days_text else None,
                             settings=ctx.settings, helpers=helpers)
    return promises.claim_reply(ctx.uow, made, ctx.settings)


@router.command(Keyword.RELEASE, roles=MEMBER)
def release(msg: Inbound, ctx: Context) -> str:
    """`放弃 <编号> <原因>`."""
    wish_id, reason = _code_and_rest(ctx, messages.EXAMPLE_RELEASE)
    claims.release_wish(ctx.uow, wish_id=wish_id, member=ctx.user, reason=reason, settings=ctx.settings)
    return messages.RELEASE_OK.format(code=wish_id)


@router.command(Keyword.DONE, roles=MEMBER)
def done(msg: Inbound, ctx: Context) -> str:
    """`完成 <编号> <说明>`; a photo sent next is kept as evidence."""
    wish_id, note = _code_and_rest(ctx, messages.EXAMPLE_DONE)
    wish = claims.fulfil_wish(ctx.uow, wish_id=wish_id, member=ctx.user, note=note, settings=ctx.settings)
    return messages.DONE_OK.format(code=wish_id) + budgets.cost_tail(ctx.uow, wish=wish, settings=ctx.settings)


@router.command(Keyword.CONTACTED, roles=MEMBER)
def contacted(msg: Inbound, ctx: Context) -> str:
    """`已联系 <编号>`."""
    wish_id, _ = _code_and_rest(ctx, messages.EXAMPLE_CONTACTED)
    claims.mark_contacted(ctx.uow, wish_id=wish_id, member=ctx.user, settings=ctx.settings)
    return messages.CONTACTED_OK.format(code=wish_id)


@router.command(Keyword.MY_CLAIMS, roles=MEMBER)
def my_claims(msg: Inbound, ctx: Context) -> str:
    """`我的认领`."""
    return claims.my_claims_text(ctx.uow, member=ctx.user, settings=ctx.settings)


@router.message("image")
def photo(msg: Inbound, ctx: Context) -> str:
    """A photo right after `完成` is evidence; from anyone else it gets the usual hint."""
    wish = None
    if ctx.role == Role.MEMBER:
        wish = claims.attach_evidence(ctx.uow, member=ctx.user, media_id=msg.media_id, pic_url=msg.pic_url,
                                      settings=ctx.settings)
    return messages.EVIDENCE_OK.format(code=wish.id) if wish else messages.NOT_TEXT
