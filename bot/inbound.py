"""Inbound callbacks: signatures, the AES envelope, a lean defused XML parse, reply rendering.

The parse reads only the few fields the bot uses. A byte scan refuses any DTD or entity declaration
first; then a small scanner reads the flat `<xml><Tag><![CDATA[…]]></Tag><Tag>digits</Tag>…</xml>`
WeChat sends, and anything it is not sure of (a declaration, attributes, nested elements, entity
or character references, split CDATA, `\r`, characters XML forbids, bytes that are not UTF-8) goes
to defusedxml, which refuses DTDs and entities again. Tests compare both with wechatpy's
`parse_message` and xmltodict on every message type (tests/unit/test_inbound.py,
tests/unit/test_lean_parse.py).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring

MAX_REPLY_BYTES = 2048
_DTD_RE = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_FIELDS = {
    "ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "MsgID", "Content", "Event", "EventKey",
    "MediaId", "PicUrl", "Format", "Recognition", "Location_X", "Location_Y", "Scale", "Label", "Latitude",
    "Longitude", "Precision", "Status", "Ticket", "Title", "Description", "Url", "ThumbMediaId", "Encrypt",
    "MsgSignature", "TimeStamp", "Nonce",
}


class InboundError(ValueError):
    """A request that is not a valid WeChat push; `reason` feeds the refusal metric."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


def sign(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the sorted, concatenated strings (§1.2, §1.4)."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def check_signature(token: str, signature: str, timestamp: str, nonce: str, *extra: str) -> bool:
    return hmac.compare_digest(sign(token, timestamp, nonce, *extra), signature or "")


def check_timestamp(timestamp: str, now: float, tolerance: int) -> bool:
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    return tolerance <= 0 or abs(now - ts) <= tolerance


def refuse_dtd(body: bytes) -> None:
    if _DTD_RE.search(body):
        raise InboundError("dtd")


# One direct child of <xml>: a CDATA section holding no "]]>", or text with no markup, entity or "]";
# neither may hold what an XML parser would normalise (\r) or refuse (other C0 controls, U+FFFE/FFFF).
_NOT_XML = "\x00-\x08\x0b-\x1f\ufffe\uffff"
_LEAN_CHILD = re.compile(
    "[ \t\n]*+<([A-Za-z_][A-Za-z0-9_]*+)>"
    "(?:<!\\[CDATA\\[((?>[^\\]" + _NOT_XML + "]*+(?:\\](?!\\]>)[^\\]" + _NOT_XML + "]*+)*+))\\]\\]>"
    "|([^<&\\]" + _NOT_XML + "]*+))</\\1>")
_LEAN_END = re.compile(r"[ \t\n]*+</xml>[ \t\n]*+\Z")


def scan_fields(raw: bytes) -> dict[str, str] | None:
    """The lean read of a flat WeChat document, or None when it is not sure (then defusedxml decides).

    Call only after `refuse_dtd`. Same result as the defused parse: the fields' texts, the last
    one winning when a tag repeats."""
    if not raw.startswith(b"<xml>"):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    out: dict[str, str] = {}
    match, pos = _LEAN_CHILD.match, 5
    while (m := match(text, pos)) is not None:
        tag, cdata, plain = m.groups()
        if tag in _FIELDS:
            out[tag] = plain if cdata is None else cdata
        pos = m.end()
    return out if _LEAN_END.match(text, pos) is not None else None


def parse_fields(body: bytes | str) -> dict[str, str]:
    """The root's direct children as text, DTDs and entities refused before anything expands."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    refuse_dtd(raw)
    lean = scan_fields(raw)
    return lean if lean is not None else parse_fields_defused(raw)


def parse_fields_defused(raw: bytes) -> dict[str, str]:
    """The full defused parse (the fallback of `parse_fields`); the caller has run `refuse_dtd`."""
    try:
        root: Element = defused_fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise InboundError("dtd") from None
    except Exception:
        raise InboundError("malformed") from None
    if root.tag != "xml":
        raise InboundError("malformed")
    out: dict[str, str] = {}
    for child in root:
        if child.tag in _FIELDS:
            out[child.tag] = child.text or ""
    return out


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message or event as the bot reads it."""

    msg_type: str
    source: str
    target: str
    create_time: int
    msg_id: str | None = None
    content: str = ""
    event: str = ""
    event_key: str = ""
    media_id: str = ""
    pic_url: str = ""
    recognition: str = ""
    format: str = ""
    location_x: float | None = None
    location_y: float | None = None
    label: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def dedupe_key(self) -> str:
        """MsgId for messages; FromUserName+CreateTime+Event+EventKey for events (§1.6)."""
        if self.msg_id:
            return f"m:{self.msg_id}"
        return f"e:{self.source}:{self.create_time}:{self.event}:{self.event_key}"[:128]

    @property
    def is_event(self) -> bool:
        return self.msg_type == "event"


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except ValueError:
        return None


def parse_inbound(body: bytes | str) -> Inbound:
    f = parse_fields(body)
    msg_type = (f.get("MsgType") or "").strip()
    source = (f.get("FromUserName") or "").strip()
    if not msg_type or not source or len(source) > 64:
        raise InboundError("malformed")
    try:
        create_time = int(f.get("CreateTime") or 0)
    except ValueError:
        raise InboundError("malformed") from None
    msg_id = (f.get("MsgId") or "").strip() or None
    if msg_id is not None and not msg_id.isdigit():
        raise InboundError("malformed")
    event = (f.get("Event") or "").strip().lower() if msg_type == "event" else ""
    if msg_type == "event" and not event:
        raise InboundError("malformed")
    if msg_type == "event":
        msg_id = None
    return Inbound(
        msg_type=msg_type,
        source=source,
        target=f.get("ToUserName") or "",
        create_time=create_time,
        msg_id=msg_id,
        content=f.get("Content") or "",
        event=event,
        event_key=f.get("EventKey") or "",
        media_id=f.get("MediaId") or "",
        pic_url=f.get("PicUrl") or "",
        recognition=f.get("Recognition") or "",
        format=f.get("Format") or "",
        location_x=_float(f.get("Location_X")),
        location_y=_float(f.get("Location_Y")),
        label=f.get("Label") or "",
        extra=f,
    )


def truncate_utf8(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` UTF-8 bytes on a character boundary, marking the cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "…"


def _cdata(text: str) -> str:
    # A literal "]]>" would end the section early (wechatpy does not guard this, §3).
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _content_tail(content: str) -> str:
    return "</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>" + _cdata(truncate_utf8(content, MAX_REPLY_BYTES)) + "</Content></xml>"


# Read-only replies (帮助's, one text per role) come back again and again: their tail is kept. Only
# those: a reply quoting what someone wrote is never held beyond its request.
_fixed_content_tail = functools.lru_cache(maxsize=16)(_content_tail)


def render_text_reply(msg: Inbound, content: str, now: int | None = None, *, fixed: bool = False) -> str:
    """Passive text reply XML, never over 2,048 bytes of content. `fixed`: a text from a small,
    fixed set (a read-only command's), worth keeping rendered."""
    return (
        "<xml><ToUserName>" + _cdata(msg.source) + "</ToUserName><FromUserName>" + _cdata(msg.target)
        + "</FromUserName><CreateTime>" + str(now if now is not None else int(time.time()))
        + (_fixed_content_tail if fixed else _content_tail)(content)
    )


def split_utf8(text: str, limit: int = MAX_REPLY_BYTES) -> list[str]:
    """Split text into chunks of at most `limit` UTF-8 bytes, preferring line breaks."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = line if not current else current + "\n" + line
        if len(candidate.encode("utf-8")) <= limit:
            current = candidate
            continue
        if current:
            chunks.append(current)
        while len(line.encode("utf-8")) > limit:
            part = line.encode("utf-8")[:limit].decode("utf-8", "ignore")
            chunks.append(part)
            line = line[len(part):]
        current = line
    if current or not chunks:
        chunks.append(current)
    return chunks
