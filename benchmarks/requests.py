"""Pre-signed WeChat callbacks for wrk: one request per line, unique MsgIds, many users."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path


def _sign(token: str, ts: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([token, ts, nonce])).encode()).hexdigest()


def write_requests(path: Path, *, token: str, kind: str, count: int, users: int = 5000, start_id: int = 1,
                   codes: list[int] | None = None) -> None:
    """Lines of `path-with-query \\t body` for kind help | wish | claim."""
    ts = str(int(time.time()))
    with path.open("w", encoding="utf-8") as f:
        for i in range(count):
            nonce = str(100000 + i)
            q = f"/wechat?signature={_sign(token, ts, nonce)}&timestamp={ts}&nonce={nonce}"
            if kind == "help":
                user, content = f"oBenchUser{i % users:018d}", "帮助"
            elif kind == "wish":
                user, content = f"oBenchUser{i % users:018d}", f"许愿 想请人帮忙修一下家里的水龙头，第{i}号测试心愿"
            else:
                assert codes is not None
                user, content = f"oBenchMember{i % users:016d}", f"认领 {codes[i % len(codes)]}"
            body = (f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
                    f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
                    f"<MsgId>{start_id + i}</MsgId></xml>")
            f.write(q + "\t" + body.replace("\n", " ") + "\n")
