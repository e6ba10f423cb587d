"""Property tests of the pure edges: the callback parser, reply rendering, the command parser.

The parser either returns an Inbound or raises InboundError (the server's 400) — never anything
else, whatever the bytes, encoding, size or script; valid messages read the same as wechatpy.
"""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wechatpy import parse_message

from bot.inbound import Inbound, InboundError, parse_fields, parse_inbound, render_text_reply, split_utf8
from bot.routing import Refused, parse_code, parse_command

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELDS = ("ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "Content", "Event", "EventKey", "MediaId",
          "Location_X", "Location_Y", "Label", "Recognition", "Encrypt", "Unknown")
ENCODINGS = ("utf-8", "utf-16", "gb18030", "latin-1", "ascii", "utf-32")

# Characters XML 1.0 can carry (no C0 controls except \t \n, no surrogates); \r is normalised away by parsers.
xml_chars = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff") | st.sampled_from("\t\n")
mixed_text = st.text(xml_chars, max_size=300) | st.sampled_from(["", " ", "许愿", "🙏🏻👨‍👩‍👧", "]]>", "&amp;", "<b>", "ا۱٢", "x" * 70_000])
any_text = st.text(max_size=200)


def cdata(v: str) -> str:
    return "<![CDATA[" + v.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _parse_or_refuse(body: bytes) -> Inbound | None:
    started = time.perf_counter()
    try:
        return parse_inbound(body)
    except InboundError as exc:
        assert exc.status in (400, 403)
        return None
    finally:
        assert time.perf_counter() - started < 1.0


@FAST
@given(st.binary(max_size=4000))
def test_random_bytes_parse_or_are_refused(body: bytes) -> None:
    msg = _parse_or_refuse(body)
    assert msg is None or (msg.source and msg.msg_type)  # a parse always yields a sender and a type


@FAST
@given(st.dictionaries(st.sampled_from(FIELDS), mixed_text | any_text, max_size=10), st.sampled_from(ENCODINGS),
       st.booleans(), st.booleans(), st.sampled_from(["xml", "XML", "root", "xml:x"]))
def test_random_documents_in_any_encoding_parse_or_are_refused(fields: dict[str, str], encoding: str, use_cdata: bool,
                                                               declare: bool, root: str) -> None:
    inner = "".join(f"<{k}>{cdata(v) if use_cdata else v}</{k}>" for k, v in fields.items())
    doc = (f'<?xml version="1.0" encoding="{encoding}"?>' if declare else "") + f"<{root}>{inner}</{root}>"
    msg = _parse_or_refuse(doc.encode(encoding, errors="replace"))
    if msg is not None:
        assert msg.source and msg.msg_type and len(msg.source) <= 64
        assert msg.msg_id is None or msg.msg_id.isdigit()


@FAST
@given(st.sampled_from(["<!DOCTYPE x [<!ENTITY a 'b'>]>", "<!ENTITY % p SYSTEM 'file:///etc/passwd'>", "<!doctype xml>"]),
       mixed_text)
def test_any_dtd_is_refused_before_parsing(dtd: str, content: str) -> None:
    body = f"{dtd}<xml><FromUserName>u</FromUserName><MsgType>text</MsgType><Content>{cdata(content)}</Content></xml>"
    try:
        parse_inbound(body.encode())
    except InboundError as exc:
        assert exc.reason == "dtd"
    else:
        raise AssertionError("a DTD was accepted")


@FAST
@given(st.text(xml_chars, max_size=2000), st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd")), min_size=1, max_size=28),
       st.integers(min_value=1, max_value=2**63 - 1), st.integers(min_value=0, max_value=2**31))
def test_text_messages_read_the_same_as_wechatpy(content: str, openid: str, msg_id: int, ts: int) -> None:
    xml = (f"<xml><ToUserName>{cdata('gh_x')}</ToUserName><FromUserName>{cdata(openid)}</FromUserName>"
           f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>{cdata(content)}</Content>"
           f"<MsgId>{msg_id}</MsgId></xml>")
    ours, theirs = parse_inbound(xml.encode()), parse_message(xml)
    # xmltodict (under wechatpy) strips surrounding white space; we keep it (commands strip it themselves).
    assert (ours.content.strip(), ours.source, int(ours.msg_id or 0), ours.create_time) == (
        (theirs.content or "").strip(), theirs.source, theirs.id, theirs.time)


@FAST
@given(st.text(xml_chars, max_size=3000), st.text(xml_chars, min_size=1, max_size=40))
def test_replies_are_well_formed_and_within_2048_bytes(content: str, openid: str) -> None:
    msg = Inbound(msg_type="text", source=openid, target="gh_x", create_time=1)
    reply = render_text_reply(msg, content, 1)
    shown = parse_fields(reply.encode())["Content"]
    assert len(shown.encode()) <= 2048
    assert content.startswith(shown) or shown.endswith("…")
    assert all(len(c.encode()) <= 2048 for c in split_utf8(content))
    assert "".join(split_utf8(content)).replace("\n", "") == content.replace("\n", "")


@FAST
@given(any_text | st.sampled_from(["许愿", "认领 12", "进度12", "/help", "认领", "取消 #3 因为", "评价 W9 5", "  许愿修水管  "]))
def test_command_parser_never_raises_and_keeps_the_rest(text: str) -> None:
    kw, rest = parse_command(text)
    assert rest == rest.strip()
    if kw is None:
        assert rest == text.strip()
    else:
        assert rest in text


@FAST
@given(any_text | st.from_regex(r"\A[#Ww]?-?[0-9０-９]{0,25}\Z") | st.sampled_from(["12", "#12", "W12", "w0", "١٢", "1e3", "12.5"]))
def test_wish_numbers_parse_or_are_refused_politely(token: str) -> None:
    try:
        code = parse_code(token)
    except Refused as exc:
        assert len(str(exc)) < 200
    else:
        assert code >= 0
