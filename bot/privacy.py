"""Keep residents' phone numbers, ID numbers and house numbers apart from the wish text.

`split_private(text)` returns the text with each such detail replaced by a placeholder, plus the
details themselves (shown only to the resident, admins and the claimer). Everything that goes
to anyone else, and every log line, uses the masked text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot import messages

ID_RE = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![0-9A-Za-z])")
MOBILE_RE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?!\d)")
LANDLINE_RE = re.compile(r"(?<!\d)(?:0\d{2,3}[- ]?)?[2-8]\d{6,7}(?!\d)")
HOUSE_RE = re.compile(
    r"(?:\d+|[一二三四五六七八九十百]+)\s*(?:号楼|栋|幢|座)\s*(?:\d+|[一二三四五六七八九十]+)?\s*(?:单元)?\s*(?:\d+\s*(?:室|号|户)?)?"
    r"|\d+\s*单元\s*\d+\s*(?:室|号|户)?"
    r"|\d{1,4}\s*[-－—]\s*\d{1,3}\s*[-－—]\s*\d{2,4}(?:\s*室)?"
    r"|\d{3,4}\s*(?:室|户)"
    r"|(?<![第\d一二三四五六七八九十])(?:\d+|[一二三四五六七八九十]+)\s*号(?:院|楼)?(?!\d)"
)
PHONE_IN_TEXT_RE = re.compile(r"\d{7,}")


@dataclass
class PrivateSplit:
    text: str
    details: dict[str, list[str]] = field(default_factory=dict)

    @property
    def phones(self) -> list[str]:
        return self.details.get("phone", [])


def _take(pattern: re.Pattern[str], text: str, kind: str, placeholder: str, found: dict[str, list[str]]) -> str:
    def repl(m: re.Match[str]) -> str:
        found.setdefault(kind, []).append(m.group(0).strip())
        return placeholder

    return pattern.sub(repl, text)


# Every pattern above needs a decimal digit (\d, any script) or, for house numbers written in
# Chinese numerals, one of 号 栋 幢 座: a text with none of them holds no private detail, and
# most wishes are such texts (the four scans cost ~25 µs of the 许愿 path otherwise).
MAYBE_PRIVATE_RE = re.compile(r"[\d号栋幢座]")


def split_private(text: str) -> PrivateSplit:
    """Remove ID numbers, phone numbers and house numbers from `text` (IDs first: they contain digits)."""
    if not MAYBE_PRIVATE_RE.search(text):
        return PrivateSplit(text, {})
    found: dict[str, list[str]] = {}
    out = _take(ID_RE, text, "id", messages.MASK_ID, found)
    out = _take(MOBILE_RE, out, "phone", messages.MASK_PHONE, found)
    out = _take(LANDLINE_RE, out, "phone", messages.MASK_PHONE, found)
    out = _take(HOUSE_RE, out, "address", messages.MASK_ADDRESS, found)
    return PrivateSplit(out, found)


def mask(text: str) -> str:
    """The text with every private detail replaced: safe for the claim channel, the wall and logs."""
    masked = split_private(text).text
    return PHONE_IN_TEXT_RE.sub(messages.MASK_PHONE, masked)


def normalize_phone(raw: str) -> str | None:
    digits = re.sub(r"[^\d]", "", raw)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if re.fullmatch(r"1[3-9]\d{9}", digits) or re.fullmatch(r"0\d{9,11}|[2-8]\d{6,7}", digits):
        return digits
    return None


def mask_phone(phone: str | None) -> str:
    if not phone:
        return ""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"


def mask_name(name: str | None) -> str:
    if not name:
        return "群众"
    return name[0] + "*" * max(1, len(name) - 1)
