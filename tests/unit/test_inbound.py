"""The lean parser agrees with wechatpy on every message type; signatures; reply rendering."""

from __future__ import annotations

import pytest
from hypothesis import given, settings as hsettings, strategies as st
from wechatpy import parse_message
from wechatpy.replies import TextReply

from bot.inbound import (InboundError, check_signature, check_timestamp, parse_fields, parse_inbound,
                         render_text_reply, sign, split_utf8, truncate_utf8)
from tests.support import event_xml, message_xml, text_xml

SOURCE = "oUserABCDEFGHIJKLMNOPQRSTUVWX"


def test_signature_matches_the_official_vectors() -> None:
    assert sign("AAAAA", "1714036504", "1514711492") == "f464b24fc39322e44b38aa78f5edd27bd1441696"
    assert check_signature("AAAAA", "899cf89e464efb63f54ddac96b0a0a235f53aa78", "1714037059", "486452656")
    assert not check_signature("AAAAA", "899cf89e464efb63f54ddac96b0a0a235f53aa79", "1714037059", "486452656")


def test_timestamp_tolerance() -> None:
    assert check_timestamp("1000", 1200, 300)
    assert not check_timestamp("1000", 1301, 300)
    assert not check_timestamp("abc", 1000, 300)


CASES = [
    text_xml(SOURCE, "许愿 想请人修水管 😀 <b>&amp;", msg_id=1234567890123456789),
    message_xml(SOURCE, "image", {"PicUrl": "http://x/p.jpg", "MediaId": "media_1"}, msg_id=11),
    message_xml(SOURCE, "voice", {"MediaId": "v1", "Format": "amr", "Recognition": "我想许个愿"}, msg_id=12),
    message_xml(SOURCE, "location", {"Location_X": 23.134521, "Location_Y": 113.358803, "Scale": 20, "Label": "幸福社区"}, msg_id=13),
    message_xml(SOURCE, "link", {"Title": "t", "Description": "d", "Url": "http://x"}, msg_id=14),
    message_xml(SOURCE, "video", {"MediaId": "m", "ThumbMediaId": "t"}, msg_id=15),
    event_xml(SOURCE, "subscribe"),
    event_xml(SOURCE, "unsubscribe"),
    event_xml(SOURCE, "CLICK", "WISH_NEW"),
    event_xml(SOURCE, "VIEW", "http://example.invalid/"),
    event_xml(SOURCE, "SCAN", "community_7"),
]


@pytest.mark.parametrize("xml", CASES)
def test_lean_parse_agrees_with_wechatpy(xml: str) -> None:
    ours = parse_inbound(xml)
    theirs = parse_message(xml)
    assert ours.source == theirs.source and ours.target == theirs.target
    assert ours.create_time == theirs.time
    assert ours.msg_type == theirs.type
    if theirs.type == "event":
        assert ours.event == theirs.event
        assert ours.msg_id is None
        if hasattr(theirs, "key"):
            assert ours.event_key == theirs.key
        if hasattr(theirs, "scene_id"):
            assert ours.event_key == theirs.scene_id
    else:
        assert ours.msg_id == str(theirs.id)
    if theirs.type == "text":
        assert ours.content == theirs.content
    if theirs.type in ("image", "voice", "video"):
        assert ours.media_id == theirs.media_id
    if theirs.type == "image":
        assert ours.pic_url == theirs.image
    if theirs.type == "voice":
        assert ours.recognition == theirs.recognition and ours.format == theirs.format
    if theirs.type == "location":
        assert (ours.location_x, ours.location_y) == (float(theirs.location_x), float(theirs.location_y))
        assert ours.label == theirs.label


def test_event_dedupe_key_uses_sender_time_and_event() -> None:
    a = parse_inbound(event_xml(SOURCE, "CLICK", "HELP", create_time=100))
    b = parse_inbound(event_xml(SOURCE, "CLICK", "HALL", create_time=100))
    assert a.dedupe_key != b.dedupe_key
    assert a.dedupe_key == parse_inbound(event_xml(SOURCE, "CLICK", "HELP", create_time=100)).dedupe_key


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + ']><xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>'
    '<MsgType>text</MsgType><Content>&lol9;</Content><MsgId>1</MsgId></xml>'
)


@pytest.mark.parametrize("body", [
    BILLION_LAUGHS,
    '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/hostname">]><xml><Content>&e;</Content></xml>',
    '<!doctype xml><xml></xml>',
    "<xml><ToUserName>a</ToUserName>",
    "not xml at all",
    "<other><MsgType>text</MsgType></other>",
    "<xml><FromUserName>a</FromUserName></xml>",
    "<xml><MsgType>text</MsgType><FromUserName>a</FromUserName><CreateTime>x</CreateTime></xml>",
    "",
])
def test_bad_xml_is_refused(body: str) -> None:
    with pytest.raises(InboundError):
        parse_inbound(body)


def test_utf16_doctype_cannot_sneak_past_the_byte_scan() -> None:
    body = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY e "boom">]><xml><Content>&e;</Content></xml>'
    with pytest.raises(InboundError):
        parse_fields(body.encode("utf-16"))


def test_rendered_reply_matches_wechatpy_and_survives_cdata_end() -> None:
    msg = parse_inbound(text_xml(SOURCE, "hi"))
    content = "回复 ]]> 仍然完整"
    ours = parse_fields(render_text_reply(msg, content, now=5))
    assert ours["Content"] == content
    assert ours["ToUserName"] == SOURCE
    theirs = parse_fields(TextReply(message=parse_message(text_xml(SOURCE, "hi")), content="plain").render())
    assert theirs["ToUserName"] == ours["ToUserName"] and theirs["FromUserName"] == ours["FromUserName"]


def test_reply_never_exceeds_2048_bytes() -> None:
    msg = parse_inbound(text_xml(SOURCE, "hi"))
    content = parse_fields(render_text_reply(msg, "愿" * 2000, now=1))["Content"]
    assert len(content.encode()) <= 2048 and content.endswith("…")


@given(st.text(max_size=3000))
@hsettings(max_examples=200, deadline=None)
def test_split_and_truncate_respect_byte_limits(text: str) -> None:
    assert len(truncate_utf8(text, 2048).encode()) <= 2048
    chunks = split_utf8(text, 2048)
    assert all(len(c.encode()) <= 2048 for c in chunks)
    assert "".join(chunks).replace("\n", "") == text.replace("\n", "")

