"""帮助 without a database read: the non-resident openids held in memory (bot/presence.py), over real
HTTP on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any, AsyncIterator

import pytest
from sqlalchemy import event

from bot import messages
from bot.app import create_app
from bot.appkeys import PRESENCE
from bot.clock import FrozenClock
from bot.config import Settings
from bot.lifecycle import Role
from bot.presence import Presence
from storage.db import Database
from storage.models import Person
from tests.integration.member_helpers import bind_members
from tests.support import ADMIN, RESIDENT, ChatClient

TTL, REFRESH = 1.5, 0.2
HELP_RESIDENT = messages.HELP_RESIDENT + messages.HELP_MEMBER_BIND


@pytest.fixture
async def fast_bot(aiohttp_client: Any, settings: Settings, clock: FrozenClock, database: Database) -> AsyncIterator[ChatClient]:
    """The bot with a short snapshot lifetime, so the cross-process guarantee is seen in a test's time."""
    app = create_app(settings, clock=clock, database=database, background=False)
    app[PRESENCE] = Presence(ttl=TTL, refresh=REFRESH)
    client = await aiohttp_client(app)
    yield ChatClient(client, clock=clock)
    await client.close()


def presence_of(bot: ChatClient) -> Presence:
    return bot.client.server.app[PRESENCE]


async def snapshot_loaded(bot: ChatClient) -> None:
    """Say 帮助 once (which starts the first read of the snapshot) and wait until it is in."""
    await bot.send_text(RESIDENT, "帮助")
    deadline = time.monotonic() + 5
    while presence_of(bot)._special is None:  # noqa: SLF001 (the state under test)
        assert time.monotonic() < deadline, "the snapshot of non-residents never loaded"
        await asyncio.sleep(0.02)


class Statements:
    """Every SELECT the engine sends while active (an observer on the real engine, not a stand-in)."""

    def __init__(self, database: Database) -> None:
        self.engine, self.selects = database.engine, []  # type: ignore[var-annotated]

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.selects.append(statement)

    def __enter__(self) -> "Statements":
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


async def test_help_reads_no_role_from_the_database_once_the_snapshot_is_in(bot: ChatClient, database: Database) -> None:
    await snapshot_loaded(bot)
    with Statements(database) as seen:
        for i in range(20):
            assert await bot.send_text(f"o_first_time_{i:018d}", "帮助") == HELP_RESIDENT
        admin_help = await bot.send_text(ADMIN, "帮助")  # a configured admin, never seen before: an admin
    assert admin_help is not None and admin_help.endswith(messages.HELP_ADMIN)
    assert [s for s in seen.selects if "person" in s.lower()] == []
    presence = presence_of(bot)
    assert set(presence._special or {}) == {ADMIN}  # noqa: SLF001  no resident is held for the role
    assert presence._roles == {}  # noqa: SLF001


async def test_first_messages_before_any_snapshot_share_one_read(bot: ChatClient, database: Database) -> None:
    with Statements(database) as seen:
        replies = await asyncio.gather(*(bot.send_text(f"o_early_{i:020d}", "帮助") for i in range(20)))
    assert replies == [HELP_RESIDENT] * 20
    reads = [s for s in seen.selects if "person" in s.lower()]
    assert len(reads) == 1 and "person.openid" in reads[0].lower()  # the snapshot's, not one per sender


async def test_a_member_bound_in_this_process_is_a_member_at_once(fast_bot: ChatClient, database: Database, clock: FrozenClock,
                                                                  settings: Settings) -> None:
    await snapshot_loaded(fast_bot)
    presence_of(fast_bot).refresh = 3600.0  # no re-read from here on: only this process's own change can tell
    [member] = await bind_members(fast_bot, database, clock, settings, 1)
    reply = await fast_bot.send_text(member, "帮助")
    assert reply is not None and reply.endswith(messages.HELP_MEMBER)


async def test_a_member_bound_in_another_process_shows_up_within_ttl(fast_bot: ChatClient, db_url: str, clock: FrozenClock) -> None:
    await snapshot_loaded(fast_bot)
    openid = "o_bound_elsewhere_000000000001"
    assert await fast_bot.send_text(openid, "帮助") == HELP_RESIDENT
    other = Database(db_url)  # another process's connection: this process is not told
    try:
        other.run_sync(lambda uow: uow.people.add(Person(openid=openid, role=Role.MEMBER.value, name="党员甲", created_at=uow.now)),
                       clock.now())
        bound_at = time.monotonic()
        while True:
            reply = await fast_bot.send_text(openid, "帮助")
            if reply is not None and reply.endswith(messages.HELP_MEMBER):
                break
            assert time.monotonic() - bound_at <= TTL, "the member was still a resident after ttl seconds"
            await asyncio.sleep(0.05)
    finally:
        other.close()


async def test_a_snapshot_older_than_ttl_is_not_trusted(fast_bot: ChatClient, db_url: str, database: Database, clock: FrozenClock) -> None:
    await snapshot_loaded(fast_bot)
    presence = presence_of(fast_bot)
    presence.refresh = 3600.0  # the snapshot is never read again: it only ages
    openid = "o_bound_elsewhere_000000000002"
    other = Database(db_url)
    try:
        other.run_sync(lambda uow: uow.people.add(Person(openid=openid, role=Role.MEMBER.value, name="党员乙", created_at=uow.now)),
                       clock.now())
    finally:
        other.close()
    assert await fast_bot.send_text(openid, "帮助") == HELP_RESIDENT  # the snapshot is fresh, and says resident
    await asyncio.sleep(TTL + 0.1)
    with Statements(database) as seen:
        reply = await fast_bot.send_text(openid, "帮助")
    assert reply is not None and reply.endswith(messages.HELP_MEMBER)
    assert any("person.role" in s.lower() for s in seen.selects)


def test_changes_committed_after_a_snapshot_query_began_survive_it() -> None:
    presence = Presence(ttl=30, refresh=5)
    presence.apply_snapshot({}, time.monotonic())
    started = time.monotonic()  # a refresh query starts …
    presence.remember("o_new_member", "member")  # … this process binds a member meanwhile …
    presence.remember("o_plain", "resident")
    presence.apply_snapshot({"o_admin": Role.ADMIN}, started)  # … and the query, which did not see it, lands
    assert presence.known_role("o_new_member") == Role.MEMBER
    assert presence.known_role("o_admin") == Role.ADMIN and presence.known_role("o_plain") == Role.RESIDENT
    presence.apply_snapshot({"o_admin": Role.ADMIN}, time.monotonic())  # a later query is trusted as it is
    assert presence.known_role("o_new_member") == Role.RESIDENT


def test_a_failed_refresh_is_retried_after_the_interval_not_per_message() -> None:
    presence = Presence(ttl=30, refresh=0.2)
    assert presence.refresh_due()
    assert not presence.refresh_due()  # one read at a time
    presence.refresh_failed()
    assert not presence.refresh_due()
    time.sleep(0.25)
    assert presence.refresh_due()
    assert presence.known_role("o_anyone") is None  # nothing loaded yet: ask the database


def test_window_marks_are_written_with_the_columns_own_types(database: Database, clock: FrozenClock) -> None:
    from sqlalchemy import select

    database.run_sync(lambda uow: uow.people.add(Person(openid=RESIDENT, role="resident", created_at=uow.now, window_sent=4,
                                                        subscribed=False)), clock.now())
    presence = Presence()
    at: datetime = clock.now().replace(microsecond=123456)
    presence.touch(RESIDENT, at)
    presence.touch("o_unknown_000000000000000001", at)  # no row: nothing to mark
    assert database.run_sync(presence.flush, clock.now()) == 2
    with database.engine.connect() as conn:
        row = conn.execute(select(Person.last_inbound_at, Person.window_sent, Person.subscribed).where(Person.openid == RESIDENT)).one()
    assert tuple(row) == (at, 0, True)
    earlier = Presence()
    earlier.touch(RESIDENT, at.replace(year=at.year - 1))  # an older mark never moves the window back
    database.run_sync(earlier.flush, clock.now())
    with database.engine.connect() as conn:
        assert conn.execute(select(Person.last_inbound_at).where(Person.openid == RESIDENT)).scalar_one() == at
