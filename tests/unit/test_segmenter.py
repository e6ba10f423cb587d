"""The bot's segmenter: jieba with a small dictionary (bot/categories.py), ~6 MB instead of ~58 MB."""

from __future__ import annotations

import logging

import pytest

from bot import categories
from bot.messages import CATEGORIES
from tests.unit.test_categories import CASES

WISHES = ["楼道里的路灯坏了好几天，晚上很黑看不见", "我们楼道的路灯坏了，晚上上下楼很黑", "小区的路灯坏了很多天了，晚上看不见路",
          "想请人陪我去医院复查身体", "家里水龙头漏水想请人修一下", "孩子需要一些学习用品", "冬天需要一床厚被子",
          "想找一份保洁工作", "轮椅坏了需要维修", "老人独居，希望有人每周来看望一次", "单元门口的井盖松了，怕有人踩空",
          "想咨询一下拆迁补偿的合同问题", "最近总是失眠，心情很差", "电梯经常停运，老人上下楼很困难，希望加装扶手"]


def test_the_prefix_dictionary_keeps_frequent_and_named_words_with_the_full_total() -> None:
    lines = [b"\xe8\xb7\xaf\xe7\x81\xaf 500 n\n", b"\xe8\xb7\xaf 9000 n\n", b"\xe7\x81\xaf\xe7\xac\xbc 20 n\n",
             b"\xe4\xba\x95\xe7\x9b\x96 3 n\n"]  # 路灯 500, 路 9000, 灯笼 20, 井盖 3
    freq, total = categories.small_prefix_dict(lines, min_freq=100, keep=frozenset({"井盖"}))
    assert total == 500 + 9000 + 20 + 3  # word probabilities as in the full dictionary
    assert freq == {"路灯": 500, "路": 9000, "井盖": 3, "井": 0}  # 灯笼 is rare and not named: left to the HMM


@pytest.fixture(scope="module")
def full_jieba():  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


def test_the_small_dictionary_is_small_and_holds_every_keyword_jieba_knows(full_jieba) -> None:  # type: ignore[no-untyped-def]
    categories.warm_up()
    small = categories._jieba
    assert small is not None and len(small.FREQ) < 60_000 < 400_000 < len(full_jieba.FREQ)
    assert small.total == full_jieba.total
    known = [k for keys in categories.KEYWORDS.values() for k in keys if full_jieba.FREQ.get(k)]
    assert len(known) > 100
    assert {k: small.FREQ.get(k) for k in known} == {k: full_jieba.FREQ[k] for k in known}


def _rule(words: list[str], text: str) -> str:
    scores = {c: sum(2.0 if k in words else (1.0 if len(k) > 1 and k in text else 0.0) for k in keys)
              for c, keys in categories.KEYWORDS.items()}
    scores = {c: s for c, s in scores.items() if s}
    return max(scores, key=lambda c: (scores[c], -CATEGORIES.index(c))) if scores else "其他"


def test_categories_are_the_same_as_with_jiebas_full_dictionary(full_jieba) -> None:  # type: ignore[no-untyped-def]
    texts = list(CASES) + WISHES
    assert [categories.suggest_category(t) for t in texts] == [_rule(full_jieba.lcut(t), t) for t in texts]


def test_common_words_are_cut_as_with_the_full_dictionary(full_jieba) -> None:  # type: ignore[no-untyped-def]
    """Words jieba uses often are kept whole; only rare compounds may come out as their parts."""
    for text in list(CASES) + WISHES:
        small = categories.segment(text)
        assert "".join(small) == text
        for word in full_jieba.lcut(text):
            if full_jieba.FREQ.get(word, 0) >= categories.MIN_WORD_FREQ and len(word) > 1:
                assert word in small or any(word in w for w in small), (text, word, small)
