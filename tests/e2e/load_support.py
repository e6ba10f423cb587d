"""Helpers for the fault and scale-out tests: real `serve` processes, the emulator, seeded claims.

`serve` runs as a subprocess while the emulator runs in the test's own event loop, so every
wait here is asynchronous (a blocking sleep would stall the emulator the bot is talking to).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import create_engine, insert, select, text

from storage.models import Outbox, Person, Wish
from tests.support import reply_content, signed_request, text_xml

TOKEN = "faulttoken1"
APP_ID = "wxfault0000000001"
CLAIMED = re.compile(r"认领成功！(\d+)")
NUMBER = re.compile(r"编号 (\d+)")


def serve_env(db_url: str, emulator_base: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROWISH_")}
    env.update(MICROWISH_DATABASE_URL=db_url, MICROWISH_LOG_FORMAT="json", MICROWISH_WECHAT_TOKEN=TOKEN,
               MICROWISH_SANDBOX="off", MICROWISH_WECHAT_API_BASE=emulator_base, MICROWISH_WECHAT_APP_ID=APP_ID,
               MICROWISH_WECHAT_APP_SECRET="faultsecret", MICROWISH_CLAIM_WEBHOOK=f"{emulator_base}/cgi-bin/webhook/send?key=claims",
               MICROWISH_WEBHOOK_PER_MINUTE="100000", MICROWISH_RESIDENT_MAX_OPEN="1000", MICROWISH_RESIDENT_MAX_PER_DAY="1000",
               MICROWISH_TIMESTAMP_TOLERANCE_SECONDS="0")
    env.update(extra)
    return env


async def start_serve(cwd: Path, env: dict[str, str], port: int, *, reuse_port: bool = False) -> asyncio.subprocess.Process:
    args = [sys.executable, "-m", "bot", "serve", "--port", str(port)] + (["--reuse-port"] if reuse_port else [])
    proc = await asyncio.create_subprocess_exec(*args, cwd=cwd, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    await wait_healthy(port, proc)
    return proc


async def wait_healthy(port: int, proc: asyncio.subprocess.Process, seconds: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            assert proc.returncode is None, "serve exited"
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=1)) as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("serve did not become healthy")


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
    await asyncio.wait_for(proc.wait(), 30)


async def run_cli(cwd: Path, env: dict[str, str], *args: str) -> int:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", *args, cwd=cwd, env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-2000:]
    return proc.returncode


async def post(session: aiohttp.ClientSession, port: int, xml: str, *, timeout: float = 5) -> str | None:
    """One signed push as WeChat sends it; the reply text, or None when WeChat would see a failure."""
    req = signed_request(xml, token=TOKEN)
    try:
        async with session.post(f"http://127.0.0.1:{port}/wechat", params=req.query, data=req.body,
                                timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if resp.status != 200:
                return None
            return reply_content(await resp.text()) or "success"
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return None


def member(i: int) -> str:
    return f"oFaultMember{i:016d}"


def resident(i: int) -> str:
    return f"oFaultResident{i:014d}"


def seed_claimable(db_url: str, wishes: int, members: int) -> list[int]:
    """Published wishes (one resident each) and members, all inside their message window."""
    now = datetime.now(timezone.utc)
    eng = create_engine(db_url)
    with eng.begin() as c:
        c.execute(insert(Person), [{"openid": member(i), "role": "member", "name": f"党员{i}", "created_at": now, "skills": "",
                                    "subscribed": True, "window_sent": 0, "last_inbound_at": now} for i in range(members)])
        c.execute(insert(Person), [{"openid": resident(i), "role": "resident", "created_at": now, "skills": "",
                                    "subscribed": True, "window_sent": 0, "last_inbound_at": now} for i in range(wishes)])
        ids = dict(c.execute(select(Person.openid, Person.id).where(Person.role == "resident")).all())
        c.execute(insert(Wish), [{"resident_id": ids[resident(i)], "status": "published", "version": 1, "tier": "personal",
                                  "category": "维修", "content": f"故障测试心愿第{i}个", "masked": f"故障测试心愿第{i}个",
                                  "private_details": {}, "source": "text", "concerns_minor": False, "public": True,
                                  "created_at": now, "published_at": now} for i in range(wishes)])
        codes = list(c.execute(select(Wish.id).order_by(Wish.id)).scalars())
    eng.dispose()
    return codes


def claim_xml(i_member: int, code: int, msg_id: int) -> str:
    return text_xml(member(i_member), f"认领 {code}", msg_id=msg_id)


def outbox_rows(db_url: str) -> list[dict[str, Any]]:
    eng = create_engine(db_url)
    with eng.connect() as c:
        rows = [dict(r._mapping) for r in c.execute(select(Outbox.id, Outbox.channel, Outbox.recipient, Outbox.payload,
                                                           Outbox.state, Outbox.lease_until))]
    eng.dispose()
    return rows


def row_key(row: dict[str, Any]) -> tuple[str, str]:
    """What the emulator sees of one outbox row: (recipient, text)."""
    payload = row["payload"] or {}
    if row["channel"] == "cs":
        return row["recipient"], payload["text"]
    return "webhook", payload["content"]


def delivered_counts(state: Any) -> Counter[tuple[str, str]]:
    """Successful deliveries the emulator recorded, keyed like `row_key`."""
    out: Counter[tuple[str, str]] = Counter()
    for r in state.delivered("message/custom/send"):
        out[(r.body["touser"], r.body["text"]["content"])] += 1
    for r in state.delivered("webhook/send"):
        out[("webhook", r.body["markdown"]["content"])] += 1
    return out


async def wait_outbox_drained(db_url: str, seconds: float = 30) -> list[dict[str, Any]]:
    """Wait until no row is pending without a lease (rows leased by a dead process wait for their lease)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        rows = outbox_rows(db_url)
        if not any(r["state"] == "pending" and r["lease_until"] is None for r in rows) or loop.time() > deadline:
            return rows
        await asyncio.sleep(0.2)


def scalar(db_url: str, sql: str) -> Any:
    eng = create_engine(db_url)
    with eng.connect() as c:
        value = c.execute(text(sql)).scalar()
    eng.dispose()
    return value


def later(minutes: int) -> str:
    return (datetime.now(timezone.utc) + timedelta(minutes=minutes)).isoformat()
