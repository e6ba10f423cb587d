"""Writes submitted while the bot shuts down: run if the writers are still there, else one line.

Under `serve` the app owns its database and closes it in the last cleanup step. A job that
finishes while `Database.close()` runs may hand on more work from its callbacks (a callback that
ran over its reply budget sends its reply through the outbox); that work used to be refused with
a `DatabaseClosed` traceback ("Task exception was never retrieved") and the late reply was lost.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sqlite3
import threading
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.app import create_app
from bot.appkeys import DATABASE
from bot.clock import FrozenClock
from bot.inbound import Inbound
from bot.server import _deliver_late
from storage.db import Database, DatabaseClosed, UnitOfWork
from storage.models import Outbox
from tests.conftest import START, make_settings
from tests.support import RESIDENT, ChatClient


def _logged(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    gc.collect()  # an unretrieved task exception is reported when the task is collected
    out, err = capfd.readouterr()
    return out + err + caplog.text


async def test_late_reply_during_shutdown_still_goes_to_the_outbox(
        aiohttp_client: Any, sqlite_url: str, clock: FrozenClock,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(sqlite_url, reply_budget_seconds=0.2)
    app = create_app(settings, clock=clock, background=False)  # owns its database, as under `serve`
    client = await aiohttp_client(app)
    chat = ChatClient(client, clock=clock)
    assert await chat.send_text(RESIDENT, "帮助")

    blocker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the writer waits for SQLite's write lock
    try:
        assert not await chat.send_text(RESIDENT, "许愿 想请人帮忙修一下家里的水龙头")  # over budget: no reply now
        closing = asyncio.ensure_future(client.close())
        await asyncio.sleep(0.5)  # shutdown has reached Database.close(), which waits for the writer
        assert not closing.done()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    with caplog.at_level(logging.WARNING):
        await closing
        await asyncio.sleep(0.05)
        logged = _logged(caplog, capfd)
    assert "Traceback" not in logged and "DatabaseClosed" not in logged, logged

    db = Database(sqlite_url)
    try:
        kinds = db.run_sync(lambda uow: uow.session.execute(select(Outbox.kind)).scalars().all(), START, write=False)
    finally:
        db.close()
    assert "late_reply" in kinds


async def test_a_job_handed_on_while_closing_still_runs(database: Database) -> None:
    gate, loop = threading.Event(), asyncio.get_running_loop()
    handed_on: list[asyncio.Future[int]] = []

    def first(uow: UnitOfWork) -> int:
        gate.wait(5)  # still running when close() starts
        return 1

    def second(uow: UnitOfWork) -> int:
        return int(uow.session.execute(text("SELECT 2")).scalar_one())

    fut = database.submit(first, now=START)
    fut.add_done_callback(lambda _: handed_on.append(asyncio.ensure_future(database.write(second, now=START))))
    closing = loop.run_in_executor(None, database.close)
    await asyncio.sleep(0.2)
    gate.set()
    await closing
    assert await fut == 1
    assert len(handed_on) == 1 and await handed_on[0] == 2
    with pytest.raises(DatabaseClosed):  # once closed, refused at once (never queued and left hanging)
        database.submit(second, now=START)


async def test_late_reply_after_close_is_one_warning(
        sqlite_url: str, clock: FrozenClock, caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str]) -> None:
    app = create_app(make_settings(sqlite_url), clock=clock, background=False)
    db = Database(sqlite_url)
    db.close()
    app[DATABASE] = db
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    done.set_result("迟到的回复")
    msg = Inbound(msg_type="text", source=RESIDENT, target="gh_test", create_time=0, msg_id="42", content="许愿")
    with caplog.at_level(logging.WARNING):
        _deliver_late(app, msg, done)
        for _ in range(5):
            await asyncio.sleep(0)
        logged = _logged(caplog, capfd)
    assert "late_reply_dropped" in logged
    assert "Traceback" not in logged, logged
