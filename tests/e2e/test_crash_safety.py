"""Kill `serve` with SIGKILL in the middle of a load of 许愿, restart, replay WeChat's retries.

Every wish that received a numbered reply must exist exactly once, and no message may make two
wishes — the guarantee behind "what the bot confirmed is committed first".
"""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.e2e.test_serve import clean_env, free_port, wait_healthy
from tests.support import reply_content, signed_request, text_xml

TOKEN = "crashtoken1"
NUMBER = re.compile(r"编号 (\d+)")


def start(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    env = clean_env(tmp_path, MICROWISH_WECHAT_TOKEN=TOKEN, MICROWISH_SANDBOX="off", MICROWISH_RESIDENT_MAX_OPEN="1000",
                    MICROWISH_RESIDENT_MAX_PER_DAY="1000", MICROWISH_WECHAT_API_BASE="http://127.0.0.1:9",
                    MICROWISH_TIMESTAMP_TOLERANCE_SECONDS="0")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_healthy(port, proc, seconds=60)
    return proc


async def post(session: aiohttp.ClientSession, port: int, xml: str) -> str | None:
    req = signed_request(xml, token=TOKEN)
    try:
        async with session.post(f"http://127.0.0.1:{port}/wechat", params=req.query, data=req.body,
                                timeout=aiohttp.ClientTimeout(total=5)) as resp:
            if resp.status != 200:
                return None
            return reply_content(await resp.text())
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return None


async def test_sigkill_mid_load_loses_no_confirmed_wish_and_duplicates_none(tmp_path: Path) -> None:
    port = free_port()
    messages = {10_000 + i: text_xml(f"oCrashUser{i:018d}", f"许愿 崩溃测试心愿第{i}个，想请人帮忙", msg_id=10_000 + i)
                for i in range(400)}
    proc = start(tmp_path, port)
    answered: dict[int, int] = {}
    samples: list[str | None] = []
    async with aiohttp.ClientSession() as session:
        sem = asyncio.Semaphore(32)

        async def one(msg_id: int, xml: str) -> None:
            async with sem:
                reply = await post(session, port, xml)
            m = NUMBER.search(reply or "")
            if not m:
                samples.append(reply)
            if m:
                answered[msg_id] = int(m.group(1))
                if len(answered) == 120:
                    proc.send_signal(signal.SIGKILL)

        await asyncio.gather(*(one(k, v) for k, v in messages.items()))
        if proc.poll() is None:
            proc.kill()
            raise AssertionError(f"only {len(answered)} numbered replies before the load ended; sample: {samples[:3]}")
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        assert 120 <= len(answered) < len(messages), "the kill must land mid-load"

        proc = start(tmp_path, port)  # restart on the same database
        try:
            # WeChat retries the unanswered ones; a few answered ones are retried too (their answer was "lost").
            retried = {k: v for k, v in messages.items() if k not in answered} | {k: messages[k] for k in list(answered)[:20]}
            replies = {k: await post(session, port, v) for k, v in retried.items()}
        finally:
            proc.terminate()
            proc.wait(timeout=20)

    for msg_id, reply in replies.items():
        m = NUMBER.search(reply or "")
        assert m, f"message {msg_id} got no numbered reply after restart: {reply!r}"
        if msg_id in answered:
            assert int(m.group(1)) == answered[msg_id], "a retry must get the number first confirmed"
        answered[msg_id] = int(m.group(1))

    db = sqlite3.connect(tmp_path / "serve.db")
    rows = db.execute("select id, content from wish").fetchall()
    by_id = dict(rows)
    assert len(rows) == len(messages), "each message makes exactly one wish"
    assert len({c for _, c in rows}) == len(rows), "no wish exists twice"
    for msg_id, number in answered.items():
        assert f"第{msg_id - 10_000}个" in by_id[number]
    events = db.execute("select count(*) from wish_event where action = 'submit'").fetchone()[0]
    assert events == len(messages)
