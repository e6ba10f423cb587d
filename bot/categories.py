"""Suggest a wish's category from its text: jieba segmentation against a keyword dictionary."""

from __future__ import annotations

import logging
import threading

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

_lock = threading.Lock()
_jieba = None


def _segment(text: str) -> list[str]:
    global _jieba
    if _jieba is None:
        with _lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return list(_jieba.lcut(text))


def warm_up() -> None:
    """Load the segmenter's dictionary now (it takes a second or two on first use)."""
    _segment("")


def suggest_category(text: str) -> str:
    """The best-scoring category for `text`, or 其他."""
    words = _segment(text)
    scores: dict[str, float] = {}
    for category, keys in KEYWORDS.items():
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
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return max(scores, key=lambda c: (scores[c], -order[c]))


def is_category(name: str) -> bool:
    return name in CATEGORIES
