"""Pre-signed WeChat callbacks for wrk: one request per line, unique MsgIds, many users."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path


# Wishes as residents write them (from the seed reports), different enough that a resident's second
# wish is not taken for a repeat of the first (which would ask "确认" instead of giving a number).
WISHES = (
    "想请人帮忙修一下家里的水龙头，一直在滴水",
    "老伴走了以后一个人住，希望有人周末来陪我聊聊天",
    "孙子上三年级，想要一个新书包和一套文具",
    "腿脚不方便，下个月想请人陪我去医院复查血压",
    "儿子最近不爱说话，想找人帮我们父子俩沟通沟通",
    "楼道的灯坏了好几天，晚上上下楼很黑",
    "冬天快到了，家里缺一床厚棉被",
    "失业半年了，想参加电工技能培训找份工作",
    "租房合同有纠纷，想咨询一下律师该怎么办",
    "轮椅的刹车坏了，希望有人帮忙修理",
    "小区门口的垃圾桶满了没人清运，味道很大",
    "想学用智能手机和子女视频通话",
)


def wish_text(i: int, users: int) -> str:
    """The (i // users)-th wish of its resident: a resident's first twelve wishes never repeat each other."""
    return WISHES[(i % users + i // users) % len(WISHES)]


def _sign(token: str, ts: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([token, ts, nonce])).encode()).hexdigest()


def write_requests(path: Path, *, token: str, kind: str, count: int, users: int | None = None, start_id: int = 1,
                   codes: list[int] | None = None) -> None:
    """Lines of `path-with-query \\t body` for kind help | wish | claim.

    Users: 5,000 by default; 20,000 for wishes, so that in a 10-second run a resident sends a few
    different wishes at most (as in a campaign's first days), never the same one twice.
    """
    users = users or (20_000 if kind == "wish" else 5000)
    ts = str(int(time.time()))
    with path.open("w", encoding="utf-8") as f:
        for i in range(count):
            nonce = str(100000 + i)
            q = f"/wechat?signature={_sign(token, ts, nonce)}&timestamp={ts}&nonce={nonce}"
            if kind == "help":
                user, content = f"oBenchUser{i % users:018d}", "帮助"
            elif kind == "wish":
                user, content = f"oBenchUser{i % users:018d}", f"许愿 {wish_text(i, users)}"
            else:
                assert codes is not None
                user, content = f"oBenchMember{i % users:016d}", f"认领 {codes[i % len(codes)]}"
            body = (f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
                    f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
                    f"<MsgId>{start_id + i}</MsgId></xml>")
            f.write(q + "\t" + body.replace("\n", " ") + "\n")
