"""The sandbox chat page: act as several people and see everything the bot says and sends.

The page posts `{"openid", "text"}` (or a menu click) to `/sandbox/api/say`; this module builds
the XML WeChat would send, signs it with the callback Token (and encrypts it in safe mode), and
posts it to our own `/wechat` over loopback, so every message runs through the real gateway.
What the bot sends later (customer-service and template messages, robot posts) comes from the
emulator's record through `/sandbox/api/feed`.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from wechatpy.crypto import WeChatCrypto

from bot import messages
from bot.appkeys import CLOCK, DATABASE, OUTBOX_WAKE, SETTINGS
from bot.inbound import parse_fields, sign
from bot.sandbox import ADMIN_ROBOT_KEY, CLAIM_ROBOT_KEY, SANDBOX, SANDBOX_ADMIN, SandboxState
from storage.db import UnitOfWork
from storage.models import InviteCode

HERE = Path(__file__).parent
GH = "gh_sandbox00000"
INVITE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
INVITE_DAYS = 30
PERSONAS = [
    {"openid": "o_sandbox_resident_00000000001", "role": "resident", "label": "resident_a"},
    {"openid": "o_sandbox_resident_00000000002", "role": "resident", "label": "resident_b"},
    {"openid": "o_sandbox_member_0000000000001", "role": "member", "label": "member_a"},
    {"openid": SANDBOX_ADMIN, "role": "admin", "label": "admin_a"},
]
_msg_ids = itertools.count(int(time.time() * 1000) * 1000)


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def build_xml(openid: str, *, text: str | None = None, event: str | None = None, key: str = "",
              create_time: int) -> str:
    """The XML of a text message or an event exactly as WeChat pushes it (§2)."""
    head = (f"<xml><ToUserName>{_cdata(GH)}</ToUserName><FromUserName>{_cdata(openid)}</FromUserName>"
            f"<CreateTime>{create_time}</CreateTime>")
    if event:
        return head + f"<MsgType><![CDATA[event]]></MsgType><Event>{_cdata(event)}</Event><EventKey>{_cdata(key)}</EventKey></xml>"
    return head + f"<MsgType><![CDATA[text]]></MsgType><Content>{_cdata(text or '')}</Content><MsgId>{next(_msg_ids)}</MsgId></xml>"


def _note_url(request: web.Request) -> SandboxState:
    """Remember where our own server listens (the outbox reaches the emulator there)."""
    state = request.app[SANDBOX]
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    if sock:
        host = sock[0] if sock[0] not in ("0.0.0.0", "::") else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        state.self_url = f"http://{host}:{sock[1]}"
    return state


async def index(request: web.Request) -> web.StreamResponse:
    _note_url(request)
    return web.FileResponse(HERE / "sandbox.html", headers={"Cache-Control": "no-store"})


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in ("sandbox.js", "sandbox.css"):
        raise web.HTTPNotFound()
    return web.FileResponse(HERE / name, headers={"Cache-Control": "no-store"})


async def config(request: web.Request) -> web.Response:
    _note_url(request)
    return web.json_response({"labels": messages.SANDBOX_LABELS, "personas": PERSONAS,
                              "robots": {"claim": CLAIM_ROBOT_KEY, "admin": ADMIN_ROBOT_KEY}},
                             dumps=_dumps)


async def say(request: web.Request) -> web.Response:
    """Post one message (or menu click) as `openid` to our own /wechat; answer the passive reply."""
    state = _note_url(request)
    app, settings = request.app, request.app[SETTINGS]
    data = await request.json()
    openid = str(data.get("openid", "")).strip()
    text = str(data.get("text", ""))
    event = str(data.get("event", "")) or None
    if not openid or len(openid) > 64 or (not event and not text.strip()):
        raise web.HTTPBadRequest(text="openid and text are required")
    now = app[CLOCK].now()
    ts, nonce = str(int(now.timestamp())), secrets.token_hex(4)
    xml = build_xml(openid, text=text, event=event, key=str(data.get("key", "")), create_time=int(ts))
    query = {"signature": sign(settings.token, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": openid}
    crypto = WeChatCrypto(settings.token, settings.aes_key, settings.app_id) if settings.wechat_require_aes else None
    body = xml
    if crypto is not None:
        encrypt = parse_fields(crypto.encrypt_message(xml, nonce, ts))["Encrypt"]
        query |= {"encrypt_type": "aes", "msg_signature": sign(settings.token, ts, nonce, encrypt)}
        body = f"<xml><ToUserName>{_cdata(GH)}</ToUserName><Encrypt>{_cdata(encrypt)}</Encrypt></xml>"
    if not event or event.lower() in ("click", "subscribe", "scan"):
        state.emulator.user_sent(openid, now)  # WeChat opens the customer-service window too (§4.2)
    entry: dict[str, Any] = {"seq": next(state.emulator._seq), "type": "say", "openid": openid,
                             "text": text if not event else f"[{event} {data.get('key', '')}]".strip()}
    state.transcript.append(entry)
    url = (state.self_url or f"http://127.0.0.1:{settings.port}") + "/wechat"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, params=query, data=body.encode("utf-8"),
                                headers={"Content-Type": "text/xml"}) as resp:
            status, raw = resp.status, await resp.text()
    reply = _reply_text(raw, crypto) if status == 200 else None
    entry["reply"] = reply
    entry["status"] = status
    app[OUTBOX_WAKE].set()
    return web.json_response({"seq": entry["seq"], "status": status, "reply": reply}, dumps=_dumps)


def _reply_text(raw: str, crypto: WeChatCrypto | None) -> str | None:
    if raw in ("", "success"):
        return None
    if crypto is not None:
        f = parse_fields(raw)
        raw = crypto.decrypt_message(raw, f["MsgSignature"], f["TimeStamp"], f["Nonce"])
    return parse_fields(raw).get("Content")


async def feed(request: web.Request) -> web.Response:
    """Everything after `since`: what people said, the passive replies, and what the bot sent."""
    state = request.app[SANDBOX]
    try:
        since = int(request.query.get("since", "0"))
    except ValueError:
        raise web.HTTPBadRequest(text="since must be a number") from None
    items = [e for e in state.transcript if e["seq"] > since]
    for rec in state.emulator.since(since):
        item = _outbound(rec)
        if item is not None:
            items.append(item)
    items.sort(key=lambda i: i["seq"])
    return web.json_response({"items": items}, dumps=_dumps)


def _outbound(rec: Any) -> dict[str, Any] | None:
    body = rec.body if isinstance(rec.body, dict) else {}
    base = {"seq": rec.seq, "ok": rec.ok, "error": None if rec.ok else (rec.answer or {}).get("errcode")}
    if rec.path == "message/custom/send":
        return base | {"type": "cs", "openid": body.get("touser"), "text": (body.get("text") or {}).get("content", "")}
    if rec.path == "message/template/send":
        fields = {k: (v or {}).get("value", "") for k, v in (body.get("data") or {}).items()}
        return base | {"type": "template", "openid": body.get("touser"), "template_id": body.get("template_id"),
                       "text": " / ".join(f"{k}: {v}" for k, v in fields.items())}
    if rec.path == "webhook/send":
        kind = body.get("msgtype")
        text = (body.get(kind) or {}).get("content", "") if kind in ("markdown", "text") else f"[{kind}]"
        return base | {"type": "robot", "robot": rec.query.get("key"), "text": text}
    return None


async def invite(request: web.Request) -> web.Response:
    """A fresh invite code for the sandbox's Party branch, so a persona can bind as a member."""
    app = request.app

    def job(uow: UnitOfWork) -> str:
        branch = uow.org.ensure("branch", messages.SANDBOX_BRANCH)
        while True:
            code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(8))
            if uow.session.get(InviteCode, code) is None:
                break
        uow.session.add(InviteCode(code=code, branch_id=branch.id or 0, created_at=uow.now,
                                   expires_at=uow.now + timedelta(days=INVITE_DAYS)))
        uow.flush()
        return code

    code = await app[DATABASE].write(job, now=app[CLOCK].now())
    return web.json_response({"code": code})


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/sandbox", index)
    app.router.add_get("/sandbox/", index)
    app.router.add_get("/sandbox/static/{name}", static)
    app.router.add_get("/sandbox/api/config", config)
    app.router.add_post("/sandbox/api/say", say)
    app.router.add_get("/sandbox/api/feed", feed)
    app.router.add_post("/sandbox/api/invite", invite)

