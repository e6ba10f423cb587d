"""Suggest a wish's category from its text: jieba segmentation against a keyword dictionary."""

from __future__ import annotations

import logging
import re
import threading
from typing import Any, Iterable

from bot.messages import CATEGORIES

# Words that point at a category. Segmented words are matched exactly; multi-character phrases
# are also matched as substrings so an unusual segmentation cannot hide them.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "助老陪伴": ("老人", "老年", "陪伴", "陪同", "看望", "探望", "聊天", "独居", "孤寡", "空巢", "大爷", "大娘", "奶奶", "爷爷", "陪我", "养老", "老伴", "高龄", "老两口", "照料"),
    "助学": ("学习", "辅导", "作业", "书包", "文具", "课本", "学费", "上学", "功课", "补课", "书籍", "图书", "学习用品"),
    "助残": ("残疾", "轮椅", "盲人", "聋", "拐杖", "残障", "肢体", "助听器", "残疾人", "听力", "视力", "导盲"),
    "就业": ("工作", "就业", "找工作", "招聘", "求职", "岗位", "培训", "失业", "技能", "下岗", "打工", "就业岗位"),
    "生活物资": ("米", "面", "油", "衣服", "棉被", "被子", "物资", "粮食", "食品", "生活用品", "冬衣", "取暖", "煤"),
    "维修": ("维修", "修理", "修", "水管", "漏水", "水龙头", "电路", "灯", "门锁", "马桶", "下水道", "堵", "坏了", "电器", "热水器"),
    "医疗健康": ("看病", "医院", "体检", "药", "复查", "挂号", "健康", "血压", "康复", "就医", "住院", "理疗", "降压药", "买药", "药品", "医生", "护理", "慢性病", "生病", "看牙"),
    "法律咨询": ("法律", "律师", "纠纷", "合同", "起诉", "维权", "赔偿", "遗嘱", "官司", "欠薪", "工资"),
    "心理疏导": ("心理", "沟通", "谈心", "叛逆", "情绪", "抑郁", "焦虑", "压力", "孤独", "开导", "疏导", "心情", "伤心", "难过", "想不开", "失眠", "去世"),
    "环境设施": ("路灯", "道路", "垃圾", "卫生", "绿化", "停车", "电梯", "楼道", "健身器材", "公厕", "加装", "井盖", "排水"),
}

# Per category: does any keyword (any phrase of two or more characters) occur in the text at all?
_ANY = {c: re.compile("|".join(map(re.escape, keys))) for c, keys in KEYWORDS.items()}

_ORDER = {c: i for i, c in enumerate(CATEGORIES)}  # ties go to the category listed first

_lock = threading.Lock()
_jieba = None

# The segmenter keeps jieba's words used at least this often (about 40,000 of its 349,000: ~6 MB
# of prefix dictionary instead of ~58 MB), plus every keyword and stop word; rarer words are left
# to jieba's HMM like any unknown word. Kept words have the full dictionary's frequencies and
# total, so common words are cut as before; rare compounds come out as their parts (聊聊天 →
# 聊聊/天, 法律咨询 → 法律/咨询). tests/unit/test_segmenter.py checks the categories stay the same.
MIN_WORD_FREQ = 100


def _always_kept() -> frozenset[str]:
    from bot.messages import COMMON_STOP_WORDS

    return frozenset(k for keys in KEYWORDS.values() for k in keys) | COMMON_STOP_WORDS


def small_prefix_dict(lines: Iterable[bytes], min_freq: int = MIN_WORD_FREQ,
                      keep: frozenset[str] = frozenset()) -> tuple[dict[str, int], int]:
    """jieba's prefix dictionary (word → frequency, each proper prefix → 0) of the kept words only.

    Read line by line, so the full dictionary is never held in memory; the total is the full one.
    """
    freq: dict[str, int] = {}
    total = 0
    for line in lines:
        word, count = line.decode("utf-8").split(" ")[:2]
        n = int(count)
        total += n
        if n >= min_freq or word in keep:
            freq[word] = n
    for word in list(freq):
        for i in range(1, len(word)):
            freq.setdefault(word[:i], 0)
    return freq, total


def _small_tokenizer() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)

    class SmallTokenizer(jieba.Tokenizer):  # type: ignore[misc]
        def initialize(self, dictionary: Any = None) -> None:
            with self.lock:
                if self.initialized:
                    return
                with self.get_dict_file() as lines:  # jieba's own dict.txt
                    self.FREQ, self.total = small_prefix_dict(lines, keep=_always_kept())
                self.initialized = True

    tokenizer = SmallTokenizer()
    tokenizer.initialize()
    return tokenizer


def _tokenizer() -> Any:
    global _jieba
    if _jieba is None:
        with _lock:
            if _jieba is None:
                _jieba = _small_tokenizer()
    return _jieba


def _segment(text: str) -> list[str]:
    return list(_tokenizer().lcut(text))


_CLAUSE = re.compile("([\u4E00-\u9FD5a-zA-Z0-9+#&\\._%\\-]+)")  # jieba's re_han_default: the runs it cuts one by one


def _keyword_words(text: str, keys: list[str]) -> set[str]:
    """Those of `keys` the segmenter makes words of their own in `text`: exactly
    `set(_segment(text)) & set(keys)`, for less.

    jieba cuts each run of word characters (a clause) on its own, so only clauses holding a key
    are cut. Within one, its dictionary route is taken as jieba takes it (`get_DAG`, `calc`);
    jieba then hands each run of single characters that is not a word to its HMM to regroup, the
    costliest step in pure Python, and whatever the HMM makes of a run is a piece of that run:
    a run that contains no key cannot yield one, so only runs that do are regrouped.
    """
    from jieba import finalseg

    tokenizer = _tokenizer()
    wanted = set(keys)
    found: set[str] = set()

    def settle(run: str) -> None:
        if len(run) == 1 or tokenizer.FREQ.get(run):
            found.update(ch for ch in run if ch in wanted)  # jieba yields such a run char by char
        elif any(k in run for k in wanted):
            found.update(w for w in finalseg.cut(run) if w in wanted)

    for clause in _CLAUSE.findall(text):
        if not any(k in clause for k in wanted):
            continue
        route: dict[int, tuple[float, int]] = {}
        tokenizer.calc(clause, tokenizer.get_DAG(clause), route)
        x, run = 0, ""
        while x < len(clause):
            y = route[x][1] + 1
            if y - x == 1:
                run += clause[x]
            else:
                if run:
                    settle(run)
                    run = ""
                if clause[x:y] in wanted:
                    found.add(clause[x:y])
            x = y
        if run:
            settle(run)
    return found


def segment(text: str) -> list[str]:
    """The words of `text` (jieba, with the small dictionary above); shared with common problems."""
    return _segment(text)


def warm_up() -> None:
    """Load the segmenter's dictionary now (about a second on first use)."""
    _segment("")


def suggest_category(text: str) -> str:
    """The best-scoring category for `text`, or 其他.

    A keyword scores 2 when the segmenter makes it a word of its own and (if longer than one
    character) 1 when it only appears inside another word; a keyword that is not even a
    substring scores nothing either way. So each category's score lies between `lo` (1 per
    phrase found) and `hi` (2 per keyword found), and when one category's `lo` beats every other
    category's `hi` the answer is known without segmenting (segmenting costs ~70 µs, most of the
    许愿 path's Python time). tests/unit/test_categories.py checks the shortcut never changes an
    answer.
    """
    hits = [(category, keys) for category, keys in KEYWORDS.items() if _ANY[category].search(text)]
    if not hits:
        return "其他"
    bounds = []
    for category, keys in hits:
        found = [k for k in keys if k in text]
        bounds.append((sum(len(k) > 1 for k in found), 2 * len(found), _ORDER[category], category))
    lo, _, order, best = max(bounds, key=lambda b: (b[0], -b[2]))
    if lo and all(hi < lo or (hi == lo and order < other) for _, hi, other, c in bounds if c != best):
        return best
    # Only categories that can still reach the best floor matter (the others score below it), and
    # only the clauses holding their keywords need segmenting: jieba cuts each run of word
    # characters on its own, so a clause's words are the same cut alone or within the text.
    contenders = {c for _, hi, _, c in bounds if hi >= lo}
    needed = [k for category, keys in hits if category in contenders for k in keys if k in text]
    words = _keyword_words(text, needed)
    scores: dict[str, float] = {}
    for category, keys in hits:
        if category not in contenders:
            continue
        score = 0.0
        for k in keys:
            if k in words:
                score += 2.0
            elif len(k) > 1 and k in text:
                score += 1.0
        if score:
            scores[category] = score
    if not scores:
        return "其他"
    return max(scores, key=lambda c: (scores[c], -_ORDER[c]))


def is_category(name: str) -> bool:
    return name in CATEGORIES
