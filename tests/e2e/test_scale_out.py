"""Two `serve` processes on one PostgreSQL database under load: no double claims, no double
return visits (two processes' schedulers plus concurrent `tick` runs), no outbox row sent twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import create_engine, insert, select

from bot.clock import SystemClock
from storage.models import Person, Wish
from tests.conftest import _truncate_pg
from tests.e2e.load_support import (
    CLAIMED,
    claim_xml,
    delivered_counts,
    member,
    outbox_rows,
    post,
    row_key,
    run_cli,
    scalar,
    seed_claimable,
    serve_env,
    start_serve,
    stop,
)
from tests.e2e.test_serve import free_port
from tests.emulator import running_emulator

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    url = request.getfixturevalue("pg_database")
    if url is None:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    _truncate_pg(url)
    return url


def _tick_time() -> datetime:
    """A daytime instant (outside quiet hours) close to now, so sweeps act."""
    now = datetime.now(TZ)
    return now if 9 <= now.hour < 20 else (now + timedelta(days=1 if now.hour >= 20 else 0)).replace(hour=10, minute=0)


def seed_fulfilled(db_url: str, n: int, at: datetime) -> list[str]:
    """Fulfilled wishes four days old whose residents are inside their message window: return visits due."""
    eng = create_engine(db_url)
    openids = [f"oScaleVisit{i:017d}" for i in range(n)]
    with eng.begin() as c:
        c.execute(insert(Person), [{"openid": o, "role": "resident", "created_at": at - timedelta(days=30), "skills": "",
                                    "subscribed": True, "window_sent": 0, "last_inbound_at": at - timedelta(hours=1)} for o in openids])
        ids = dict(c.execute(select(Person.openid, Person.id).where(Person.openid.in_(openids))).all())
        done = at - timedelta(days=4)
        c.execute(insert(Wish), [{"resident_id": ids[o], "status": "fulfilled", "version": 3, "tier": "personal",
                                  "category": "维修", "content": f"回访测试心愿{i}", "masked": f"回访测试心愿{i}", "private_details": {},
                                  "source": "text", "concerns_minor": False, "public": True, "created_at": done - timedelta(days=3),
                                  "published_at": done - timedelta(days=2), "claimed_at": done - timedelta(days=1),
                                  "fulfilled_at": done} for i, o in enumerate(openids)])
    eng.dispose()
    return openids


async def test_two_processes_on_postgresql_claim_visit_and_send_once(pg_url: str, tmp_path: Path) -> None:
    n_wishes, per_wish = 40, 3
    codes = seed_claimable(pg_url, n_wishes, n_wishes * per_wish)
    at = _tick_time()
    visited = seed_fulfilled(pg_url, 30, at)
    async with running_emulator(SystemClock(), webhook_per_minute=100_000) as emu:
        for o in [member(i) for i in range(n_wishes * per_wish)] + [f"oFaultResident{i:014d}" for i in range(n_wishes)] + visited:
            emu.user_sent(o)
        env = serve_env(pg_url, emu.base_url)
        ports = [free_port(), free_port()]
        procs = await asyncio.gather(*(start_serve(tmp_path, env, p) for p in ports))
        try:
            async with aiohttp.ClientSession() as session:
                # Member k claims wish k % n: three members race for each wish, through alternating processes.
                sem = asyncio.Semaphore(32)  # WeChat's bursts arrive over many connections, not all at once

                async def one(k: int) -> str | None:
                    async with sem:
                        return await post(session, ports[k % 2], claim_xml(k, codes[k % n_wishes], 70_000 + k))

                jobs = [one(k) for k in range(n_wishes * per_wish)]
                ticks = [run_cli(tmp_path, env, "tick", "--at", at.isoformat()) for _ in range(3)]
                results = await asyncio.gather(*jobs, *ticks)
                replies = results[: len(jobs)]
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 40
            while loop.time() < deadline:
                rows = outbox_rows(pg_url)
                if rows and all(r["state"] in ("sent", "dead", "skipped") for r in rows):
                    break
                await asyncio.sleep(0.3)
        finally:
            await asyncio.gather(*(stop(p) for p in procs))

        missed = [k for k, r in enumerate(replies) if r is None]
        assert not missed, f"{len(missed)} callbacks got no answer within the deadline"
        # A reply that missed the 4-second budget was answered `success` and sent later as a message.
        late = [r.body["text"]["content"] for r in emu.delivered("message/custom/send") if r.body["touser"].startswith("oFaultMember")]
        winners = Counter(int(m.group(1)) for r in [*replies, *late] if (m := CLAIMED.search(r or "")))
        assert sorted(winners) == sorted(codes), "each wish was won by someone"
        assert set(winners.values()) == {1}, "no wish was confirmed to two members"
        assert scalar(pg_url, "select count(*) from claim") == n_wishes
        assert scalar(pg_url, "select count(distinct wish_id) from claim") == n_wishes
        assert scalar(pg_url, "select count(*) from wish_event where action = 'claim'") == n_wishes

        assert scalar(pg_url, "select count(*) from outbox where kind = 'return_visit'") == len(visited), "one prompt per wish"
        assert scalar(pg_url, "select count(*) from wish where return_visit_prompted_at is not null") == len(visited)
        prompts = [r.body["touser"] for r in emu.delivered("message/custom/send") if r.body["touser"] in set(visited)]
        assert sorted(prompts) == sorted(visited), "each resident got exactly one return-visit prompt"

        rows = [r for r in outbox_rows(pg_url) if r["channel"] != "admin_webhook"]  # no admins' robot configured here
        assert {r["state"] for r in rows} == {"sent"}
        counts = delivered_counts(emu)
        keys = [row_key(r) for r in rows]
        assert len(set(keys)) == len(keys)
        assert all(counts[k] == 1 for k in keys), "no outbox row was sent twice, none was lost"
        assert sum(counts.values()) == len(keys)
