"""The outbox's batched claim and marks: many users in one pass, every rule kept (real DB, emulator over HTTP)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event

from bot.clock import FrozenClock
from bot.outbox import deliver_due
from bot.services import notify
from bot.wechat_api import WeChatAPI
from storage.db import Database, UnitOfWork
from storage.models import Outbox, Person
from tests.conftest import make_settings
from tests.emulator import EmulatorState, running_emulator

TEMPLATES = {"progress": {"id": "TPL-PROGRESS", "fields": {"thing1": "{code}"}}}


def openid(i: int) -> str:
    return f"o_batch_user_{i:015d}"


def seed(database: Database, emulator: EmulatorState, clock: FrozenClock, plan: dict[str, tuple[bool, list[tuple[str, str]]]]) -> None:
    """Per user: whether they wrote (window open) and their (kind, text) messages, queued in one transaction."""
    def job(uow: UnitOfWork) -> None:
        for user, (wrote, messages) in plan.items():
            person = uow.people.ensure(user, now=uow.now)
            if wrote:
                uow.people.note_inbound(person, uow.now)
            for kind, text in messages:
                notify.to_person(uow, person, text, kind=kind, template={"code": text})

    database.run_sync(job, clock.now())
    for user, (wrote, _) in plan.items():
        if wrote:
            emulator.user_sent(user, clock.now())


def outbox_rows(database: Database, clock: FrozenClock) -> list[Outbox]:
    return database.run_sync(lambda uow: list(uow.session.query(Outbox).order_by(Outbox.id)), clock.now(), False)


def windows(database: Database, clock: FrozenClock) -> dict[str, int]:
    people = database.run_sync(lambda uow: list(uow.session.query(Person)), clock.now(), False)
    return {p.openid: p.window_sent for p in people if p.openid}


def received(emulator: EmulatorState, user: str) -> list[str]:
    """Everything delivered to one user, texts and templates, in the order the emulator got it."""
    out = []
    for r in emulator.requests:
        if r.ok and isinstance(r.body, dict) and r.body.get("touser") == user:
            out.append(r.body["text"]["content"] if r.path == "message/custom/send" else r.body["data"]["thing1"]["value"])
    return out


async def test_a_pass_over_many_users_in_small_batches_keeps_order_windows_and_retries(db_url: str, clock: FrozenClock) -> None:
    async with running_emulator(clock) as emulator:
        settings = make_settings(db_url, wechat_api_base=emulator.base_url, templates=TEMPLATES)
        database = Database(db_url)
        try:
            plan: dict[str, tuple[bool, list[tuple[str, str]]]] = {}
            for i in range(120):
                plan[openid(i)] = (True, [("notice", f"u{i} m{j}") for j in range(i % 3 + 1)])
            plan[openid(900)] = (True, [("progress", f"p{j}") for j in range(7)])  # 5 in the window, 2 as templates
            plan[openid(901)] = (False, [("notice", "no window, no template")])  # waits for the user's next message
            plan[openid(902)] = (False, [("progress", "t0"), ("progress", "t1")])  # no window: the template at once
            seed(database, emulator, clock, plan)
            emulator.fail_next("message/custom/send", status=503, times=3)  # three users hit a transient error

            first = await deliver_due(database, settings, clock.now(), batch_size=40)

            rows = outbox_rows(database, clock)
            states = Counter(r.state for r in rows)
            assert states["waiting"] == 1 and states["dead"] == 0
            retrying = [r for r in rows if r.state == "pending"]
            assert len({r.recipient for r in retrying if r.attempts == 1}) == 3  # the three failed rows, backing off
            assert all(r.lease_until is None for r in rows)  # every outcome was marked, nothing left leased
            assert first == states["sent"]

            clock.advance(hours=2)  # the backoff is over: the rest goes out, each user's messages still in order
            second = await deliver_due(database, settings, clock.now(), batch_size=40)
            rows = outbox_rows(database, clock)
            assert first + second == len(rows) - 1
            assert Counter(r.state for r in rows) == Counter({"sent": len(rows) - 1, "waiting": 1})

            for user, (wrote, messages) in plan.items():
                if user == openid(901):
                    assert received(emulator, user) == []
                    continue
                assert received(emulator, user) == [text for _, text in messages]  # once each, in order
            sent_by_cs = Counter(r.body["touser"] for r in emulator.delivered("message/custom/send"))
            people = windows(database, clock)
            for user in plan:
                assert people[user] == sent_by_cs.get(user, 0)  # only messages that went out count
            assert people[openid(900)] == 5
            template_rows = [r for r in rows if r.channel == "template"]
            assert sorted(r.recipient for r in template_rows) == [openid(900)] * 2 + [openid(902)] * 2
            assert all(r.ok for r in emulator.calls("message/template/send"))
            assert not [r for r in emulator.calls("message/custom/send") if r.answer.get("errcode") in (45015, 45047)]
        finally:
            database.close()


async def test_two_dispatchers_on_postgresql_send_each_text_once(db_url: str, clock: FrozenClock) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("row locks between processes are a PostgreSQL matter (SQLite has one writer)")
    async with running_emulator(clock) as emulator:
        settings = make_settings(db_url, wechat_api_base=emulator.base_url)
        first, second = Database(db_url), Database(db_url)
        try:
            plan = {openid(i): (True, [("notice", f"u{i} a"), ("notice", f"u{i} b")]) for i in range(200)}
            seed(first, emulator, clock, plan)
            counts = await asyncio.gather(*(deliver_due(db, settings, clock.now(), batch_size=30)
                                            for db in (first, second, first, second)))
            assert sum(counts) == 400
            got = Counter((r.body["touser"], r.body["text"]["content"]) for r in emulator.delivered("message/custom/send"))
            assert len(got) == 400 and set(got.values()) == {1}  # every text exactly once
            assert set(windows(first, clock).values()) == {2}
            assert {r.state for r in outbox_rows(first, clock)} == {"sent"}
        finally:
            first.close()
            second.close()


async def test_many_concurrent_sends_of_one_client_fetch_and_read_the_token_once(db_url: str, clock: FrozenClock) -> None:
    async with running_emulator(clock) as emulator:
        settings = make_settings(db_url, wechat_api_base=emulator.base_url)
        database = Database(db_url)
        statements: list[str] = []

        def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if "access_token" in statement:
                statements.append(statement)

        event.listen(database.engine, "before_cursor_execute", seen)
        try:
            async with aiohttp.ClientSession() as session:
                api = WeChatAPI(settings, database, session)
                tokens = await asyncio.gather(*(api.access_token(clock.now()) for _ in range(60)))
                assert len(set(tokens)) == 1
                assert len(emulator.calls("stable_token")) == 1
                assert len(statements) <= 6  # one read, one lease, one store: not one round trip per caller
                clock.advance(minutes=1)
                await asyncio.gather(*(api.access_token(clock.now()) for _ in range(60)))
                assert len(statements) <= 6  # a valid token is answered from memory
        finally:
            event.remove(database.engine, "before_cursor_execute", seen)
            database.close()
