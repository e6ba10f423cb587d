from __future__ import annotations

import pytest

from bot import messages
from bot.privacy import mask, normalize_phone, split_private


@pytest.mark.parametrize("text,secret", [
    ("请打电话13812345678联系我", "13812345678"),
    ("手机 +86 139-1234-5678", "1234-5678"),
    ("座机 010-62345678", "62345678"),
    ("身份证号 11010119900307123X 丢了", "11010119900307123X"),
    ("住在幸福小区3号楼2单元301室", "301"),
    ("地址 12栋3单元502", "502"),
    ("家在 5-2-301", "5-2-301"),
    ("在光明路18号", "18号"),
])
def test_private_details_are_removed_from_the_text(text: str, secret: str) -> None:
    split = split_private(text)
    assert secret not in split.text
    assert secret not in mask(text)
    assert any(secret.replace("-", "") in v.replace("-", "").replace(" ", "") or secret in v for vs in split.details.values() for v in vs)


def test_ordinals_and_plain_words_are_kept() -> None:
    assert split_private("想请人帮忙修水龙头，第2次申请").text == "想请人帮忙修水龙头，第2次申请"
    assert split_private("心愿第12号").text == "心愿第12号"


def test_placeholders_come_from_the_catalogue() -> None:
    assert messages.MASK_PHONE in mask("电话13812345678")


def test_phone_normalisation() -> None:
    assert normalize_phone("138-1234-5678") == "13812345678"
    assert normalize_phone("+86 13812345678") == "13812345678"
    assert normalize_phone("12345") is None


def _split_without_prefilter(text: str) -> tuple[str, dict[str, list[str]]]:
    """split_private's four scans, always run (the reference for its quick "nothing here" exit)."""
    from bot import privacy

    found: dict[str, list[str]] = {}
    out = privacy._take(privacy.ID_RE, text, "id", messages.MASK_ID, found)
    out = privacy._take(privacy.MOBILE_RE, out, "phone", messages.MASK_PHONE, found)
    out = privacy._take(privacy.LANDLINE_RE, out, "phone", messages.MASK_PHONE, found)
    out = privacy._take(privacy.HOUSE_RE, out, "address", messages.MASK_ADDRESS, found)
    return out, found


def test_the_quick_exit_never_keeps_a_private_detail() -> None:
    """Texts built from digits of several scripts, Chinese numerals, the house-number words and
    plain words: split_private answers exactly as the four scans do."""
    from hypothesis import given, settings as hsettings, strategies as st

    pieces = st.sampled_from(["0", "7", "13812345678", "１２３", "٣", "一", "十", "百", "号", "号楼", "栋", "幢", "座", "单元", "室",
                              "户", "院", "-", "－", " ", "X", "第", "住在", "电话", "想请人帮忙", "修水管", "，", "86"])

    @hsettings(max_examples=3000, deadline=None)
    @given(st.lists(pieces, max_size=12).map("".join))
    def same(text: str) -> None:
        split = split_private(text)
        assert (split.text, split.details) == _split_without_prefilter(text)

    same()
