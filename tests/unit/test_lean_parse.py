"""The lean scanner reads what defusedxml, xmltodict and wechatpy read, on every message type WeChat
sends; whatever it is not sure of goes to defusedxml, and DTDs are still refused before any parse."""

from __future__ import annotations

import pytest
import xmltodict
from hypothesis import given, settings as hsettings, strategies as st
from wechatpy import parse_message

from bot.inbound import _FIELDS, InboundError, parse_fields, parse_fields_defused, parse_inbound, scan_fields

OPENID = "oUserABCDEFGHIJKLMNOPQRSTUVWX"


def doc(*fields: tuple[str, str | int], sep: str = "\n") -> bytes:
    """A push laid out as WeChat lays it out: strings in CDATA, numbers bare, a newline between fields."""
    head = [("ToUserName", "gh_123456789abc"), ("FromUserName", OPENID), ("CreateTime", 1714036504)]
    parts = [f"<{k}>{v}</{k}>" if isinstance(v, int) else f"<{k}><![CDATA[{v}]]></{k}>" for k, v in head + list(fields)]
    return ("<xml>" + sep + sep.join(parts) + sep + "</xml>").encode()


# Every message and event type of the official documentation, as WeChat sends them.
WECHAT_PUSHES = {
    "text": doc(("MsgType", "text"), ("Content", "许愿 修水管"), ("MsgId", 1234567890123456789)),
    "text_emoji_cjk": doc(("MsgType", "text"), ("Content", "😀 帮助 𠮷 ]] > <b> &amp; ] ]>"), ("MsgId", 22)),
    "text_empty": doc(("MsgType", "text"), ("Content", ""), ("MsgId", 23)),
    "text_multiline": doc(("MsgType", "text"), ("Content", "第一行\n  第二行\t!"), ("MsgId", 24)),
    "image": doc(("MsgType", "image"), ("PicUrl", "http://mmbiz.qpic.cn/x?a=1&b=2"), ("MediaId", "media_1"), ("MsgId", 11)),
    "voice": doc(("MsgType", "voice"), ("MediaId", "v1"), ("Format", "amr"), ("MsgId", 12)),
    "voice_recognition": doc(("MsgType", "voice"), ("MediaId", "v1"), ("Format", "amr"), ("Recognition", "我想许个愿。"), ("MsgId", 13)),
    "video": doc(("MsgType", "video"), ("MediaId", "m"), ("ThumbMediaId", "t"), ("MsgId", 14)),
    "shortvideo": doc(("MsgType", "shortvideo"), ("MediaId", "m"), ("ThumbMediaId", "t"), ("MsgId", 15)),
    "location": doc(("MsgType", "location"), ("Location_X", 23), ("Location_Y", 113), ("Scale", 20), ("Label", "幸福社区"), ("MsgId", 16)),
    "location_decimal": b"<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[" + OPENID.encode()
    + b"]]></FromUserName><CreateTime>1351776360</CreateTime><MsgType><![CDATA[location]]></MsgType>"
    b"<Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y><Scale>20</Scale>"
    b"<Label><![CDATA[\xe4\xbd\x8d\xe7\xbd\xae]]></Label><MsgId>1234567890123456</MsgId></xml>",
    "link": doc(("MsgType", "link"), ("Title", "公众平台官网链接"), ("Description", "d"), ("Url", "http://x/?a=1&b=2"), ("MsgId", 17)),
    "subscribe": doc(("MsgType", "event"), ("Event", "subscribe")),
    "subscribe_qrscene": doc(("MsgType", "event"), ("Event", "subscribe"), ("EventKey", "qrscene_123123"), ("Ticket", "TICKET")),
    "unsubscribe": doc(("MsgType", "event"), ("Event", "unsubscribe"), ("EventKey", "")),
    "scan": doc(("MsgType", "event"), ("Event", "SCAN"), ("EventKey", "community_7"), ("Ticket", "TICKET")),
    "location_event": doc(("MsgType", "event"), ("Event", "LOCATION"), ("Latitude", "23.137466"), ("Longitude", "113.352425"),
                          ("Precision", "119.385040")),
    "click": doc(("MsgType", "event"), ("Event", "CLICK"), ("EventKey", "WISH_NEW")),
    "view": doc(("MsgType", "event"), ("Event", "VIEW"), ("EventKey", "http://example.invalid/?a=1&b=2")),
    "template_finish": doc(("MsgType", "event"), ("Event", "TEMPLATESENDJOBFINISH"), ("MsgID", 200163836), ("Status", "success")),
    "masssend_finish": doc(("MsgType", "event"), ("Event", "MASSSENDJOBFINISH"), ("MsgID", 1988), ("Status", "sendsuccess"),
                           ("TotalCount", 100), ("FilterCount", 80), ("SentCount", 75), ("ErrorCount", 5)),
    "encrypted_envelope": doc(("Encrypt", "c2VjcmV0IHN0dWZm+/=="), ("MsgSignature", "abc"), ("TimeStamp", "1714036504"),
                              ("Nonce", "1514711492")),
    "no_whitespace": doc(("MsgType", "text"), ("Content", "帮助"), ("MsgId", 25), sep=""),
    "spaces_and_tabs": doc(("MsgType", "text"), ("Content", "帮助"), ("MsgId", 26), sep=" \t\n  "),
    "repeated_tag_last_wins": doc(("MsgType", "text"), ("Content", "first"), ("Content", "second"), ("MsgId", 27)),
    "unknown_flat_field": doc(("MsgType", "text"), ("Content", "x"), ("Bizmsgmenuid", "101"), ("MsgId", 28)),
    "cdata_with_brackets": doc(("MsgType", "text"), ("Content", "a]b]]c]>d]]"), ("MsgId", 29)),
}

# Documents the scanner must hand to defusedxml (it is not sure of them), with what defusedxml makes of them.
NOT_LEAN = {
    "split_cdata": b"<xml><FromUserName><![CDATA[o1]]></FromUserName><MsgType>text</MsgType>"
    b"<Content><![CDATA[a]]]]><![CDATA[>b]]></Content></xml>",
    "entities_in_text": b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content>a &amp; b &lt;c&gt; &#x4E2D;</Content></xml>",
    "attributes": b"<xml><FromUserName type=\"x\">o1</FromUserName><MsgType>text</MsgType></xml>",
    "nested_unknown": b"<xml><FromUserName>o1</FromUserName><MsgType>event</MsgType><Event>pic_sysphoto</Event>"
    b"<SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum>x</PicMd5Sum></item></PicList></SendPicsInfo></xml>",
    "nested_known": b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content>a<b>x</b>c</Content></xml>",
    "declaration": b"<?xml version=\"1.0\" encoding=\"utf-8\"?><xml><FromUserName>o1</FromUserName><MsgType>text</MsgType></xml>",
    "latin1_declaration": "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><xml><FromUserName>o1</FromUserName>"
    "<MsgType>text</MsgType><Content>café</Content></xml>".encode("latin-1"),
    "bom": b"\xef\xbb\xbf<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType></xml>",
    "carriage_return": b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content><![CDATA[a\r\nb\rc]]></Content></xml>",
    "crlf_between": b"<xml>\r\n<FromUserName>o1</FromUserName>\r\n<MsgType>text</MsgType>\r\n</xml>",
    "comment": b"<xml><FromUserName>o1</FromUserName><!-- hi --><MsgType>text</MsgType></xml>",
    "processing_instruction": b"<xml><FromUserName>o1</FromUserName><?pi x?><MsgType>text</MsgType></xml>",
    "empty_element": b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content/></xml>",
    "text_and_cdata_mixed": b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content>a<![CDATA[b]]>c</Content></xml>",
    "root_text": b"<xml>stray<FromUserName>o1</FromUserName><MsgType>text</MsgType></xml>",
    "comment_after_root": b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType></xml><!-- end -->",
    "bracket_in_plain_text": b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content>[1]</Content></xml>",
    "namespaced_tag": b"<xml><a:FromUserName xmlns:a=\"u\">o1</a:FromUserName><FromUserName>o2</FromUserName><MsgType>text</MsgType></xml>",
    "nbsp_whitespace": "<xml>\u00a0<FromUserName>o1</FromUserName><MsgType>text</MsgType></xml>".encode(),
}

# Documents both parses must refuse as malformed (the server's 400).
MALFORMED = {
    "gbk_declaration": "<?xml version=\"1.0\" encoding=\"gbk\"?><xml><FromUserName>o1</FromUserName><MsgType>text</MsgType>"
    "<Content>帮助</Content></xml>".encode("gbk"),  # an encoding expat does not know
    "unclosed": b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType>",
    "mismatched": b"<xml><FromUserName>o1</FromUser><MsgType>text</MsgType></xml>",
    "bad_utf8": b"<xml><FromUserName>o\xff1</FromUserName><MsgType>text</MsgType></xml>",
    "control_char": b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content><![CDATA[a\x01b]]></Content></xml>",
    "noncharacter": "<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content>a\uffffb</Content></xml>".encode(),
    "cdata_end_in_text": b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content>a]]>b</Content></xml>",
    "bare_ampersand": b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content>a & b</Content></xml>",
    "junk_after_root": b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType></xml><xml/>",
    "not_xml_root": b"<root><FromUserName>o1</FromUserName><MsgType>text</MsgType></root>",
    "unterminated_cdata": b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content><![CDATA[abc</Content></xml>",
}


def xmltodict_fields(raw: bytes) -> dict[str, str]:
    """The same fields as xmltodict reads them (wechatpy's own parser)."""
    root = xmltodict.parse(raw)["xml"] or {}
    out = {}
    for k, v in root.items():
        if k in _FIELDS:
            v = v[-1] if isinstance(v, list) else v
            out[k] = v or ""
    return out


@pytest.mark.parametrize("name", sorted(WECHAT_PUSHES))
def test_every_wechat_push_is_read_by_the_lean_scanner_exactly_as_the_full_parsers_read_it(name: str) -> None:
    raw = WECHAT_PUSHES[name]
    lean = scan_fields(raw)
    assert lean is not None, "the lean path must take WeChat's own layout"
    assert lean == parse_fields_defused(raw) == xmltodict_fields(raw) == parse_fields(raw)


# wechatpy reads no envelope, and turns a repeated tag into a list (the defused parse keeps the last).
@pytest.mark.parametrize("name", sorted(set(WECHAT_PUSHES) - {"encrypted_envelope", "repeated_tag_last_wins"}))
def test_every_wechat_push_reads_as_wechatpy_reads_it(name: str) -> None:
    raw = WECHAT_PUSHES[name]
    ours, theirs = parse_inbound(raw), parse_message(raw.decode())
    assert (ours.source, ours.target, ours.create_time, ours.msg_type) == (theirs.source, theirs.target, theirs.time, theirs.type)
    if theirs.type == "event" and theirs.event == "subscribe_scan":  # wechatpy's name for a subscribe by QR code
        assert ours.event == "subscribe" and ours.event_key == "qrscene_" + theirs.scene_id
    elif theirs.type == "event":
        assert ours.event == theirs.event and ours.msg_id is None
        if hasattr(theirs, "key"):
            assert ours.event_key == theirs.key
    else:
        assert ours.msg_id == str(theirs.id)
    for ours_attr, theirs_attr in [("content", "content"), ("media_id", "media_id"), ("pic_url", "image"),
                                   ("recognition", "recognition"), ("format", "format"), ("label", "label")]:
        if hasattr(theirs, theirs_attr) and getattr(theirs, theirs_attr) is not None:
            assert getattr(ours, ours_attr) == getattr(theirs, theirs_attr), ours_attr
    if theirs.type == "location":
        assert (ours.location_x, ours.location_y) == (float(theirs.location_x), float(theirs.location_y))


@pytest.mark.parametrize("name", sorted(NOT_LEAN))
def test_what_the_scanner_is_not_sure_of_goes_to_defusedxml(name: str) -> None:
    raw = NOT_LEAN[name]
    assert scan_fields(raw) is None
    assert parse_fields(raw) == parse_fields_defused(raw)


def test_the_fallback_reads_split_cdata_and_entities_as_xmltodict_does() -> None:
    for name in ("split_cdata", "entities_in_text", "latin1_declaration", "carriage_return"):
        raw = NOT_LEAN[name]
        assert parse_fields(raw) == xmltodict_fields(raw), name
    assert parse_fields(NOT_LEAN["split_cdata"])["Content"] == "a]]>b"
    assert parse_fields(NOT_LEAN["entities_in_text"])["Content"] == "a & b <c> 中"
    assert parse_fields(NOT_LEAN["latin1_declaration"])["Content"] == "café"
    assert parse_fields(NOT_LEAN["carriage_return"])["Content"] == "a\nb\nc"


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_documents_are_refused_by_both_paths(name: str) -> None:
    raw = MALFORMED[name]
    assert scan_fields(raw) is None
    with pytest.raises(InboundError) as exc:
        parse_fields(raw)
    assert exc.value.reason == "malformed"


@pytest.mark.parametrize("dtd", [
    b'<!DOCTYPE xml [<!ENTITY a "b">]>', b"<!doctype xml>", b'<! ENTITY x SYSTEM "file:///etc/passwd">',
])
def test_dtds_are_refused_before_any_parse_even_where_the_scanner_would_read_the_rest(dtd: bytes) -> None:
    body = dtd + WECHAT_PUSHES["text"]
    with pytest.raises(InboundError) as exc:
        parse_fields(body)
    assert exc.value.reason == "dtd"
    inside = WECHAT_PUSHES["text"].replace(b"\xe8\xae\xb8\xe6\x84\xbf", dtd)  # in a CDATA section, still refused
    with pytest.raises(InboundError):
        parse_fields(inside)


# --- properties -----------------------------------------------------------------------------------

_xml_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e"
                           "\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\ufffe\uffff")
_any_text = st.text(st.one_of(_xml_chars, st.sampled_from(list("]]>&<\r\n\t ;#x"))), max_size=40)
_tags = st.one_of(st.sampled_from(sorted(_FIELDS)), st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True))


@st.composite
def flat_documents(draw: st.DrawFn) -> bytes:
    """Flat documents in WeChat's layout with arbitrary texts, each in CDATA, escaped, or raw (maybe invalid)."""
    parts = []
    for tag, text in draw(st.lists(st.tuples(_tags, _any_text), max_size=8)):
        how = draw(st.sampled_from(["cdata", "escaped", "raw"]))
        if how == "cdata":
            body = "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"
        elif how == "escaped":
            body = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        else:
            body = text
        parts.append(f"<{tag}>{body}</{tag}>")
    sep = draw(st.sampled_from(["", "\n", " ", "\r\n", "\t \n"]))
    return ("<xml>" + sep + sep.join(parts) + sep + "</xml>" + draw(st.sampled_from(["", "\n", "\r\n"]))).encode()


def _defused_or_refusal(raw: bytes) -> dict[str, str] | str:
    try:
        return parse_fields_defused(raw)
    except InboundError as exc:
        return exc.reason


@hsettings(max_examples=400, deadline=None)
@given(flat_documents())
def test_the_scanner_never_reads_a_document_otherwise_than_defusedxml(raw: bytes) -> None:
    lean = scan_fields(raw)
    if lean is not None:
        assert lean == _defused_or_refusal(raw)
    try:
        ours: dict[str, str] | str = parse_fields(raw)
    except InboundError as exc:
        ours = exc.reason
    assert ours == _defused_or_refusal(raw)


@hsettings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(WECHAT_PUSHES)), st.data())
def test_mutated_pushes_are_never_read_differently(name: str, data: st.DataObject) -> None:
    raw = bytearray(WECHAT_PUSHES[name])
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["replace", "delete", "insert"]))
        b = data.draw(st.sampled_from(list(b"<>/![]&;\r\n \x00\xff\xe4aZ9_")))
        if op == "replace":
            raw[i] = b
        elif op == "delete":
            del raw[i]
        else:
            raw.insert(i, b)
    lean = scan_fields(bytes(raw))
    if lean is not None:
        assert lean == _defused_or_refusal(bytes(raw))


def test_a_kept_read_only_reply_renders_exactly_as_a_fresh_one() -> None:
    from bot.inbound import render_text_reply

    msg = parse_inbound(WECHAT_PUSHES["text"])
    for content in ["帮助的内容 ]]> 结束", "x" * 3000, ""]:
        assert render_text_reply(msg, content, 1714036504, fixed=True) == render_text_reply(msg, content, 1714036504)
        assert render_text_reply(msg, content, 1714036504, fixed=True) == render_text_reply(msg, content, 1714036504, fixed=True)
