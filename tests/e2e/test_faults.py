"""Faults: `serve` killed mid-load with its outbox in flight, the emulator down, the database away.

The outbox promise under SIGKILL is "never lost, at most once more": a row sent but not yet
marked when the process died is sent again after its lease; every other row goes out exactly
once, and every confirmed claim exists exactly once.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
from sqlalchemy import create_engine, text

from bot import messages
from bot.app import create_app
from bot.clock import FrozenClock, SystemClock
from bot.config import Settings
from bot.outbox import deliver_due
from bot.services import notify
from storage.db import Database
from storage.migrate import upgrade
from tests.conftest import START, make_settings
from tests.e2e.load_support import (
    CLAIMED,
    claim_xml,
    delivered_counts,
    later,
    outbox_rows,
    post,
    row_key,
    run_cli,
    scalar,
    seed_claimable,
    serve_env,
    start_serve,
    stop,
    wait_outbox_drained,
)
from tests.e2e.test_serve import free_port
from tests.emulator import running_emulator
from tests.support import RESIDENT, ChatClient, reply_content, text_xml


async def test_sigkill_mid_claims_keeps_claims_once_and_outbox_rows_at_most_resent_in_flight(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path}/serve.db"
    upgrade(db_url)
    n = 300
    codes = seed_claimable(db_url, n, n)
    async with running_emulator(SystemClock(), webhook_per_minute=100_000) as emu:
        for i in range(n):
            emu.user_sent(f"oFaultMember{i:016d}")
            emu.user_sent(f"oFaultResident{i:014d}")
        env = serve_env(db_url, emu.base_url)
        port = free_port()
        proc = await start_serve(tmp_path, env, port)
        messages_ = {50_000 + i: claim_xml(i, codes[i], 50_000 + i) for i in range(n)}
        answered: dict[int, int] = {}
        killed: list[int] = []
        async with aiohttp.ClientSession() as session:
            sem = asyncio.Semaphore(24)

            async def one(msg_id: int, xml: str) -> None:
                async with sem:
                    if killed:
                        return
                    reply = await post(session, port, xml)
                m = CLAIMED.search(reply or "")
                if m:
                    answered[msg_id] = int(m.group(1))
                    # Kill once the outbox is busy too: its sends are what may be cut between send and mark.
                    if len(answered) >= 60 and len(emu.requests) >= 10 and proc.returncode is None and not killed:
                        killed.append(len(emu.requests))
                        proc.send_signal(signal.SIGKILL)

            await asyncio.gather(*(one(k, v) for k, v in messages_.items()))
            await asyncio.wait_for(proc.wait(), 10)
            assert killed and proc.returncode == -signal.SIGKILL, f"the kill must land mid-load ({len(answered)} answered)"
            assert 60 <= len(answered) < n

            at_kill = outbox_rows(db_url)
            in_flight = {r["id"] for r in at_kill if r["state"] == "pending" and r["lease_until"] is not None}

            proc = await start_serve(tmp_path, env, port)
            try:
                retried = {k: v for k, v in messages_.items() if k not in answered} | {k: messages_[k] for k in list(answered)[:20]}
                replies = dict(zip(retried, await asyncio.gather(*(post(session, port, v) for v in retried.values()))))
                await wait_outbox_drained(db_url)
            finally:
                await stop(proc)
        # The rows the dead process had leased go out once their lease runs out.
        await run_cli(tmp_path, env, "tick", "--at", later(5))

        for msg_id, reply in replies.items():
            m = CLAIMED.search(reply or "")
            assert m, f"claim {msg_id} got no confirmation after restart: {reply!r}"
            if msg_id in answered:
                assert int(m.group(1)) == answered[msg_id], "a retry gets the answer first confirmed"

        rows = [r for r in outbox_rows(db_url) if r["channel"] != "admin_webhook"]  # no admins' robot configured here
        assert rows and all(r["state"] == "sent" for r in rows), {r["state"] for r in rows}
        counts = delivered_counts(emu)
        keys = {r["id"]: row_key(r) for r in rows}
        assert len(set(keys.values())) == len(keys), "each row's text is distinct, so the emulator record names the row"
        for row_id, key in keys.items():
            assert counts[key] >= 1, f"outbox row {row_id} was never delivered"
            if counts[key] > 1:
                assert row_id in in_flight, f"outbox row {row_id} was sent twice but was not in flight at the kill"
        assert sum(counts.values()) == len(keys) + sum(1 for k in keys.values() if counts[k] > 1)

    db = sqlite3.connect(tmp_path / "serve.db")
    assert db.execute("select count(*) from claim").fetchone()[0] == n, "every claim message made exactly one claim"
    assert db.execute("select count(distinct wish_id) from claim").fetchone()[0] == n
    assert db.execute("select count(*) from wish where status = 'claimed'").fetchone()[0] == n
    assert db.execute("select count(*) from wish_event where action = 'claim'").fetchone()[0] == n


async def test_emulator_down_then_failing_loses_nothing(db_url: str) -> None:
    """Connection refused, then 5xx: every row stays pending with a backoff and goes out exactly once after."""
    clock = FrozenClock(START)
    dead = f"http://127.0.0.1:{free_port()}"
    database = Database(db_url)
    try:
        def queue(uow: Any) -> None:
            for i in range(6):
                person = uow.people.ensure(f"oDownUser{i:018d}", now=uow.now)
                uow.people.note_inbound(person, uow.now)
                notify.to_person(uow, person, f"测试通知{i}", kind="progress")

        database.run_sync(queue, clock.now())
        settings = make_settings(db_url, wechat_api_base=dead)
        assert await deliver_due(database, settings, clock.now()) == 0  # connection refused
        rows = outbox_rows(db_url)
        assert all(r["state"] == "pending" and r["lease_until"] is None for r in rows)

        async with running_emulator(clock) as emu:
            for i in range(6):
                emu.user_sent(f"oDownUser{i:018d}")
            settings = make_settings(db_url, wechat_api_base=emu.base_url)
            emu.fail_next("message/custom/send", status=502, times=3)
            sent = 0
            for _ in range(12):  # the clock moves past each backoff
                clock.advance(minutes=20)
                sent += await deliver_due(database, settings, clock.now())
            assert sent == 6
            assert {r["state"] for r in outbox_rows(db_url)} == {"sent"}
            texts = [r.body["text"]["content"] for r in emu.delivered("message/custom/send")]
            assert sorted(texts) == sorted(f"测试通知{i}" for i in range(6)), "each row delivered exactly once"
            assert len([r for r in emu.calls("message/custom/send") if r.status == 502]) == 3
    finally:
        database.close()


class _Outage:
    """The database away for a while: SQLite locked by a long writer; PostgreSQL refusing connections."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.lock: sqlite3.Connection | None = None

    def begin(self) -> None:
        if self.db_url.startswith("sqlite"):
            self.lock = sqlite3.connect(self.db_url.removeprefix("sqlite:///"), isolation_level=None)
            self.lock.execute("BEGIN IMMEDIATE")
            self.lock.execute("UPDATE person SET window_sent = window_sent")  # a writer mid-transaction
            return
        self._pg(False)

    def end(self) -> None:
        if self.lock is not None:
            self.lock.execute("ROLLBACK")
            self.lock.close()
            self.lock = None
            return
        self._pg(True)

    def _pg(self, allow: bool) -> None:
        from sqlalchemy.engine import make_url

        url = make_url(self.db_url)
        eng = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(text(f'ALTER DATABASE "{url.database}" WITH ALLOW_CONNECTIONS {"true" if allow else "false"}'))
            if not allow:  # the bot's pooled connections die as in a server restart
                c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"), {"d": url.database})
        eng.dispose()


@pytest.fixture
async def outage_bot(aiohttp_client: Any, db_url: str) -> AsyncIterator[tuple[ChatClient, Database, _Outage]]:
    settings: Settings = make_settings(db_url, reply_budget_seconds=1.5, log_format="json")
    database = Database(db_url)
    clock = FrozenClock(START)
    client = await aiohttp_client(create_app(settings, clock=clock, database=database, background=False))
    outage = _Outage(db_url)
    try:
        yield ChatClient(client, clock=clock), database, outage
    finally:
        if outage.lock is not None or not db_url.startswith("sqlite"):
            outage.end()  # idempotent: the test normally ended the outage already
        await client.close()
        database.close()


async def test_database_away_answers_within_deadline_and_leaves_nothing_half_written(outage_bot: Any, db_url: str) -> None:
    bot, database, outage = outage_bot
    assert (await bot.client.get("/healthz")).status == 200
    xml_msg = text_xml(RESIDENT, "许愿 想请人帮忙修一下楼道里的灯", msg_id=777_001)
    outage.begin()
    try:
        started = time.monotonic()
        status, body = await bot.post_xml(xml_msg)
        elapsed = time.monotonic() - started
        assert status == 200 and elapsed < 5.0, (status, elapsed)
        reply = reply_content(body)
        assert body == "success" or reply == messages.SORRY, body
        health = await bot.client.get("/healthz")
        assert health.status == 503 and (await health.json())["status"] == "unavailable"
    finally:
        outage.end()
    assert (await bot.client.get("/healthz")).status == 200
    await asyncio.sleep(0.5)  # a job that waited for the lock finishes now
    status, body = await bot.post_xml(xml_msg)  # WeChat's retry of the same message
    assert status == 200 and messages.WISH_OK.format(code=1).split("\n")[0] in (reply_content(body) or ""), body
    assert scalar(db_url, "select count(*) from wish") == 1
    assert scalar(db_url, "select count(*) from wish_event") == 1
    assert scalar(db_url, "select count(*) from inbound_log") == 1
