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
