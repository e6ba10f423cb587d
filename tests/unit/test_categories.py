"""Category suggestion from a wish's words (jieba segmentation + the keyword dictionary)."""

from __future__ import annotations

import pytest

from bot.categories import KEYWORDS, is_category, suggest_category
from bot.messages import CATEGORIES

CASES = {
    "希望有人能辅导孩子的数学作业": "助学", "想要一台轮椅方便出门": "助残", "家里灯坏了想请人来修": "维修",
    "独居老人希望有人常来陪我聊聊天": "助老陪伴", "想请人陪我去医院复查": "医疗健康", "孩子最近很叛逆想找人谈谈心": "心理疏导",
    "被拖欠工资不知道怎么维权": "法律咨询", "下岗了想找份工作": "就业", "冬天没有厚被子": "生活物资",
    "小区垃圾没人清理": "环境设施", "楼下路灯不亮了": "环境设施", "家里下水道堵了": "维修", "希望帮忙代买降压药": "医疗健康",
    "老伴去世后心情不好": "心理疏导", "家里没有米面油了": "生活物资", "需要法律援助": "法律咨询", "想请人帮忙理发": "其他",
}


@pytest.mark.parametrize(("text", "category"), CASES.items())
def test_suggests_the_category(text: str, category: str) -> None:
    assert suggest_category(text) == category


def test_every_dictionary_category_is_a_real_one() -> None:
    assert set(KEYWORDS) | {"其他"} == set(CATEGORIES)
    assert all(is_category(c) for c in CATEGORIES) and not is_category("修东西")


def _by_segmenting_everything(text: str) -> str:
    """The rule as written down, without the shortcut: segment, score every category, best first."""
    from bot.categories import _segment

    words = _segment(text)
    scores = {c: sum(2.0 if k in words else (1.0 if len(k) > 1 and k in text else 0.0) for k in keys) for c, keys in KEYWORDS.items()}
    scores = {c: s for c, s in scores.items() if s}
    if not scores:
        return "其他"
    return max(scores, key=lambda c: (scores[c], -CATEGORIES.index(c)))


def _generated_texts(seed: int, n: int) -> list[str]:
    import random

    rng = random.Random(seed)
    keywords = [k for keys in KEYWORDS.values() for k in keys]
    filler = ["我家", "想请人", "帮忙", "一下", "方面", "面包", "老师", "修改", "药店", "灯笼", "米饭", "油画", "电梯口", "，", "了",
              "。", "！", " ", "3楼", "的", "很", "坏", "好几天", "上下楼"]
    return [
        "".join(rng.choice(keywords) if rng.random() < 0.35 else rng.choice(filler) for _ in range(rng.randint(1, 9)))
        for _ in range(n)
    ]


def test_keyword_words_are_the_segmenters_own() -> None:
    """The keywords `_keyword_words` finds standalone are exactly those among jieba's words of the
    whole text, though it cuts only the clauses holding a keyword and runs the HMM only on runs of
    single characters that contain one."""
    from bot.categories import _keyword_words, _segment

    keywords = {k for keys in KEYWORDS.values() for k in keys}
    for text in list(CASES) + _generated_texts(11, 4000):
        present = [k for k in keywords if k in text]
        assert _keyword_words(text, present) == set(_segment(text)) & set(present), text


def test_the_shortcut_past_segmenting_never_changes_the_answer() -> None:
    """suggest_category skips jieba when at most one category can score; over a few thousand texts
    mixing keywords of several categories, single-character ones inside longer words
    (面 in 方面, 修 in 修改) and plain words, it answers exactly as the full rule does."""
    import random

    rng = random.Random(8)
    keywords = [k for keys in KEYWORDS.values() for k in keys]
    filler = ["我家", "想请人", "帮忙", "一下", "方面", "面包", "老师", "修改", "药店", "灯笼", "米饭", "油画", "电梯口", "，", "了",
              "。", "！", " ", "3楼"]  # clause breaks: only the clauses holding contested keywords are segmented
    texts = list(CASES) + [
        "".join(rng.choice(keywords) if rng.random() < 0.35 else rng.choice(filler) for _ in range(rng.randint(1, 7)))
        for _ in range(3000)
    ]
    # exact ties between two categories (one phrase each, either order): the list order decides
    phrases = {c: [k for k in keys if len(k) > 1] for c, keys in KEYWORDS.items()}
    for a in KEYWORDS:
        for b in KEYWORDS:
            if a != b:
                texts.append(f"{rng.choice(phrases[a])}{rng.choice(filler)}{rng.choice(phrases[b])}")
    # a category whose ceiling only equals the best floor still ties and can win on list order
    # (found by search: dropping such categories from the scoring changes these answers)
    texts += ["坏了店找工作站探望", "找工作站大娘取暖", "坏了们残障家电路子", "路灯厂爷爷工找工作站", "爷爷导盲长找工作站"]
    assert [suggest_category(t) for t in texts] == [_by_segmenting_everything(t) for t in texts]
