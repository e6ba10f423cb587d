"""Bad input through the whole callback over real HTTP: forged bodies, broken AES envelopes,
commands with wrong arguments and random dialogues. None may answer 5xx, take longer than
WeChat's 5-second deadline, or store anything for input that is not a valid request.

The bot runs on its own thread and event loop (SQLite), so hypothesis drives it synchronously.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import shutil
import sqlite3
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import create_app
from bot.clock import SystemClock
from bot.inbound import MAX_REPLY_BYTES, sign
from storage.db import Database
from tests.conftest import make_settings
from tests.support import TOKEN, cdata, reply_content, signed_request, text_xml

DEADLINE = 5.0
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
_ids = itertools.count(9_000_000_000)
_users = itertools.count(1)


class Bot:
    def __init__(self, port: int, path: Path) -> None:
        self.port, self.path = port, path

    def post(self, query: dict[str, str], body: bytes) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.port}/wechat?" + urllib.parse.urlencode(query)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=DEADLINE + 1) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode("utf-8", "replace")
        assert time.monotonic() - started < DEADLINE, "over WeChat's deadline"
        assert status < 500, (status, text)
        return status, text

    def counts(self) -> dict[str, int]:
        db = sqlite3.connect(self.path)
        try:
            return {t: db.execute(f"select count(*) from {t}").fetchone()[0]
                    for t in ("wish", "wish_event", "claim", "outbox", "inbound_log")}
        finally:
            db.close()


@pytest.fixture(scope="module")
def fuzz_bot(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Bot]:
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    s = make_settings(url, resident_max_open=1000, resident_max_per_day=1000)
    loop = asyncio.new_event_loop()
    database = Database(url)
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def start() -> None:
        runner = web.AppRunner(create_app(s, clock=SystemClock(), database=database, background=False), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"], holder["port"] = runner, runner.addresses[0][1]

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    yield Bot(int(holder["port"]), path)  # type: ignore[call-overload]
    asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(30)  # type: ignore[attr-defined]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    database.close()


def _signed_query(**extra: str) -> dict[str, str]:
    ts, nonce = str(int(time.time())), os.urandom(4).hex()
    return {"signature": sign(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce} | extra


@FAST
@given(st.binary(max_size=3000) | st.text(max_size=500).map(lambda t: f"<xml>{t}</xml>".encode("utf-8", "surrogatepass")))
def test_forged_bodies_are_refused_and_store_nothing(fuzz_bot: Bot, body: bytes) -> None:
    before = fuzz_bot.counts()
    status, _ = fuzz_bot.post(_signed_query(), body)
    if status != 200:
        assert status in (400, 403, 413)
        assert fuzz_bot.counts() == before


aes_payload = (st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=400)
               | st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode())
               | st.text(max_size=100))


@FAST
@given(aes_payload, st.booleans())
def test_broken_aes_envelopes_are_refused_and_store_nothing(fuzz_bot: Bot, encrypt: str, good_signature: bool) -> None:
    before = fuzz_bot.counts()
    q = _signed_query(encrypt_type="aes")
    q["msg_signature"] = sign(TOKEN, q["timestamp"], q["nonce"], encrypt) if good_signature else "0" * 40
    body = f"<xml><ToUserName>{cdata('gh_x')}</ToUserName><Encrypt>{cdata(encrypt)}</Encrypt></xml>".encode()
    status, _ = fuzz_bot.post(q, body)
    assert status in (400, 403)
    assert fuzz_bot.counts() == before


@FAST
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=43, max_size=43),
       st.sampled_from(["wrong_key", "wrong_app"]))
def test_envelopes_for_another_key_or_account_are_refused(fuzz_bot: Bot, key: str, what: str) -> None:
    before = fuzz_bot.counts()
    xml = text_xml(f"oFuzzAes{next(_users):020d}", "许愿 想请人帮忙修一下家里的水龙头", msg_id=next(_ids))
    req = signed_request(xml, mode="safe", aes_key=key) if what == "wrong_key" else signed_request(xml, mode="safe", app_id="wxother")
    status, _ = fuzz_bot.post(req.query, req.body)
    assert status in (400, 403)
    assert fuzz_bot.counts() == before


COMMANDS = ["认领", "进度", "取消", "评价", "完成", "释放", "反馈", "不公开", "联系", "我的", "通过", "驳回", "指派", "关闭", "回访", "关联"]
bad_args = (st.text(st.characters(blacklist_categories=("Cs", "Cc", "Nd")), max_size=60)
            | st.sampled_from(["-1", "#", "W", "9999999999999", "０", "12 34 56", "🙏", "x" * 3000]))


@FAST
@given(st.sampled_from(COMMANDS), bad_args)
def test_commands_with_wrong_arguments_change_nothing(fuzz_bot: Bot, command: str, arg: str) -> None:
    before = fuzz_bot.counts()
    openid = f"oFuzzCmd{next(_users):020d}"
    req = signed_request(text_xml(openid, f"{command} {arg}", msg_id=next(_ids)))
    status, body = fuzz_bot.post(req.query, req.body)
    assert status == 200
    shown = reply_content(body)
    assert shown is None or len(shown.encode()) <= MAX_REPLY_BYTES
    after = fuzz_bot.counts()
    assert {k: after[k] for k in ("wish", "wish_event", "claim", "outbox")} == {k: before[k] for k in ("wish", "wish_event", "claim", "outbox")}


dialogue_step = (st.sampled_from(["许愿", "取消", "是", "否", "1", "2", "确认", "帮助", "进度", "我的心愿", "不公开", "跳过", ""])
                 | st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=120)
                 | st.sampled_from(["🙏🏻" * 200, "维修 水管 13800138000", "许愿 " + "长" * 600, "]]><xml>", "ـبـ 混合 script"]))


@FAST
@given(st.lists(dialogue_step, min_size=1, max_size=8))
def test_random_dialogues_never_fail_and_keep_the_timeline_whole(fuzz_bot: Bot, steps: list[str]) -> None:
    openid = f"oFuzzTalk{next(_users):019d}"
    for text in steps:
        req = signed_request(text_xml(openid, text, msg_id=next(_ids)))
        status, body = fuzz_bot.post(req.query, req.body)
        assert status == 200, (text, body)
        shown = reply_content(body)
        assert shown is None or 0 < len(shown.encode()) <= MAX_REPLY_BYTES
    db = sqlite3.connect(fuzz_bot.path)
    try:
        orphans = db.execute("select count(*) from wish w where not exists (select 1 from wish_event e where e.wish_id = w.id)").fetchone()[0]
        submits = db.execute("select count(*) from wish_event where action = 'submit'").fetchone()[0]
        wishes = db.execute("select count(*) from wish").fetchone()[0]
    finally:
        db.close()
    assert orphans == 0 and submits == wishes
