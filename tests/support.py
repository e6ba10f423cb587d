"""Test helpers: WeChat-signed requests in all three modes, and a chat client for the bot."""

from __future__ import annotations

import base64
import itertools
import os
import time
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from wechatpy.crypto import WeChatCrypto

from bot.inbound import parse_fields, sign

TOKEN = "testtoken123"
APP_ID = "wx1234567890abcdef"
AES_KEY = base64.b64encode(b"k" * 32).decode().rstrip("=")
GH = "gh_testaccount"
ADMIN = "o_admin_000000000000000000001"
RESIDENT = "o_resident_00000000000000001"
RESIDENT2 = "o_resident_00000000000000002"
MEMBER = "o_member_0000000000000000001"

_msg_ids = itertools.count(int(time.time() * 1000) % 10**9 * 1000)


def next_msg_id() -> int:
    return next(_msg_ids)


def cdata(v: str) -> str:
    return "<![CDATA[" + v.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_xml(source: str, content: str, *, msg_id: int | None = None, create_time: int | None = None) -> str:
    return (f"<xml><ToUserName>{cdata(GH)}</ToUserName><FromUserName>{cdata(source)}</FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{cdata(content)}</Content><MsgId>{msg_id or next_msg_id()}</MsgId></xml>")


def event_xml(source: str, event: str, key: str = "", *, create_time: int | None = None) -> str:
    return (f"<xml><ToUserName>{cdata(GH)}</ToUserName><FromUserName>{cdata(source)}</FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event>{cdata(event)}</Event><EventKey>{cdata(key)}</EventKey></xml>")


def message_xml(source: str, msg_type: str, fields: dict[str, Any], *, msg_id: int | None = None,
                create_time: int | None = None) -> str:
    body = "".join(f"<{k}>{cdata(str(v)) if isinstance(v, str) else escape(str(v))}</{k}>" for k, v in fields.items())
    return (f"<xml><ToUserName>{cdata(GH)}</ToUserName><FromUserName>{cdata(source)}</FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType>{cdata(msg_type)}</MsgType>"
            f"{body}<MsgId>{msg_id or next_msg_id()}</MsgId></xml>")


@dataclass
class Signed:
    query: dict[str, str]
    body: bytes


def signed_request(xml: str, *, mode: str = "plain", token: str = TOKEN, timestamp: int | None = None,
                   nonce: str | None = None, aes_key: str = AES_KEY, app_id: str = APP_ID) -> Signed:
    """Query and body exactly as WeChat sends them in plaintext, compatible or safe mode (§1.3)."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    nonce = nonce or os.urandom(4).hex()
    query = {"signature": sign(token, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": "x"}
    if mode == "plain":
        return Signed(query, xml.encode("utf-8"))
    crypto = WeChatCrypto(token, aes_key, app_id)
    envelope = crypto.encrypt_message(xml, nonce, ts)
    fields = parse_fields(envelope)
    encrypt = fields["Encrypt"]
    query |= {"encrypt_type": "aes", "msg_signature": sign(token, ts, nonce, encrypt)}
    if mode == "safe":
        body = f"<xml><ToUserName>{cdata(GH)}</ToUserName><Encrypt>{cdata(encrypt)}</Encrypt></xml>"
    else:  # compatible: the plaintext fields plus <Encrypt>
        body = xml.replace("</xml>", f"<Encrypt>{cdata(encrypt)}</Encrypt></xml>")
    return Signed(query, body.encode("utf-8"))


def reply_content(body: str, *, mode: str = "plain", token: str = TOKEN, aes_key: str = AES_KEY,
                  app_id: str = APP_ID) -> str | None:
    """The text a user would see for a passive reply body (decrypting it in AES mode)."""
    if body in ("", "success"):
        return None
    if mode != "plain":
        f = parse_fields(body)
        crypto = WeChatCrypto(token, aes_key, app_id)
        body = crypto.decrypt_message(body, f["MsgSignature"], f["TimeStamp"], f["Nonce"])
    return parse_fields(body).get("Content")


class ChatClient:
    """Talks to a running bot (aiohttp TestClient) as WeChat would, in one mode."""

    def __init__(self, client: Any, *, mode: str = "plain", clock: Any = None) -> None:
        self.client, self.mode, self.clock = client, mode, clock

    def _ts(self) -> int:
        return int(self.clock.now().timestamp()) if self.clock is not None else int(time.time())

    async def post_xml(self, xml: str, **kw: Any) -> tuple[int, str]:
        kw.setdefault("timestamp", self._ts())
        req = signed_request(xml, mode=kw.pop("mode", self.mode), **kw)
        resp = await self.client.post("/wechat", params=req.query, data=req.body)
        return resp.status, await resp.text()

    async def send_text(self, source: str, content: str, *, msg_id: int | None = None) -> str | None:
        status, body = await self.post_xml(text_xml(source, content, msg_id=msg_id, create_time=self._ts()))
        assert status == 200, (status, body)
        return reply_content(body, mode=self.mode)

    async def send_event(self, source: str, event: str, key: str = "") -> str | None:
        status, body = await self.post_xml(event_xml(source, event, key, create_time=self._ts()))
        assert status == 200, (status, body)
        return reply_content(body, mode=self.mode)

    async def send_message(self, source: str, msg_type: str, fields: dict[str, Any]) -> str | None:
        status, body = await self.post_xml(message_xml(source, msg_type, fields, create_time=self._ts()))
        assert status == 200, (status, body)
        return reply_content(body, mode=self.mode)
