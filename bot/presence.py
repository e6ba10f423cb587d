"""Who is writing to us, without a write per message — and, for 帮助, without a read either.

Read-only commands (帮助) are answered from the sender's role alone. Residents are the default
role, so the process keeps the small set of openids that are *not* residents (members, admins,
and the configured admin openids) in memory: one indexed query on the reader pool refreshes it
every `refresh` seconds, and what this process commits (a member bound, an admin created) is
applied at once. A snapshot older than `ttl` seconds is not trusted: then the sender's role is
read from the database (and cached for `ttl`). So a member bound in another process shows up
within `ttl` seconds either way, and no resident is ever held in memory for the role.

The "user wrote to us" marks that open the 48-hour customer-service window are buffered and
written in batches — by the next write job of this process or the periodic flush, whichever
comes first — instead of costing a transaction per message.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime

from sqlalchemy import Connection, bindparam, select

from bot.lifecycle import Role
from storage.bulk import bind
from storage.db import UnitOfWork
from storage.models import Person


class Presence:
    def __init__(self, *, ttl: float = 30.0, refresh: float = 5.0, max_size: int = 200_000) -> None:
        self.ttl, self.refresh, self.max_size = ttl, min(refresh, ttl), max_size
        self._roles: dict[str, tuple[Role, float]] = {}  # per-openid cache, used only without a fresh snapshot
        self._special: dict[str, Role] | None = None  # every non-resident openid, as of `_special_at`
        self._special_at = float("-inf")  # monotonic time the snapshot's query started
        self._changed: dict[str, tuple[Role, float]] = {}  # roles this process set since that query
        self._refreshing, self._next_try = False, float("-inf")
        self._touches: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def known_role(self, openid: str) -> Role | None:
        """The role from memory (a fresh snapshot, else the per-openid cache), or None: ask the database."""
        special = self._special
        if special is not None and time.monotonic() - self._special_at <= self.ttl:
            return special.get(openid, Role.RESIDENT)
        return self.cached_role(openid)

    def cached_role(self, openid: str) -> Role | None:
        hit = self._roles.get(openid)
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def remember(self, openid: str, role: str) -> None:
        """A role this process has just read or committed: in effect for this process at once."""
        role = Role(role)
        now = time.monotonic()
        with self._lock:
            special = self._special
            if special is not None:
                if special.get(openid, Role.RESIDENT) != role:
                    if role == Role.RESIDENT:
                        special.pop(openid, None)
                    else:
                        special[openid] = role
                    self._changed[openid] = (role, now)
                if now - self._special_at <= self.ttl:
                    return
            if len(self._roles) >= self.max_size:
                self._roles.clear()
            self._roles[openid] = (role, now + self.ttl)

    def refresh_due(self) -> bool:
        """True (once, until `apply_snapshot` or `refresh_failed`) when the snapshot should be read again."""
        now = time.monotonic()
        if self._refreshing or now - self._special_at < self.refresh or now < self._next_try:
            return False
        self._refreshing = True
        return True

    def refresh_failed(self) -> None:
        """The read failed (database away): try again after `refresh` seconds, not on every message."""
        self._refreshing, self._next_try = False, time.monotonic() + self.refresh

    def apply_snapshot(self, special: dict[str, Role], started: float) -> None:
        """Install the non-resident openids read by a query that started at `started` (monotonic),
        keeping the changes this process committed after that query began."""
        with self._lock:
            for openid, (role, at) in self._changed.items():
                if at >= started:
                    if role == Role.RESIDENT:
                        special.pop(openid, None)
                    else:
                        special[openid] = role
            self._changed = {k: v for k, v in self._changed.items() if v[1] >= started}
            self._special, self._special_at, self._refreshing = special, started, False
            self._roles.clear()

    def touch(self, openid: str, now: datetime) -> None:
        with self._lock:
            self._touches[openid] = now

    def pending(self) -> int:
        return len(self._touches)

    def flush(self, uow: UnitOfWork) -> int:
        """Write the buffered window marks (inside the caller's transaction)."""
        with self._lock:
            touches, self._touches = self._touches, {}
        if not touches:
            return 0
        write_marks(uow.session.connection(), touches)
        return len(touches)


_T = Person.__table__
# One statement for all the marks, whatever their number: executemany stepped the UPDATE once per
# openid, and on SQLite every step lets go of the GIL and must win it back from the event loop
# (thousands of waits per flush when a campaign's residents first write in).
_MARKS_SQLITE = ("UPDATE person SET last_inbound_at = v.at, window_sent = 0, subscribed = 1 FROM "
                 "(SELECT json_extract(value, '$[0]') AS o, json_extract(value, '$[1]') AS at FROM json_each(?)) AS v "
                 "WHERE person.openid = v.o AND (person.last_inbound_at IS NULL OR person.last_inbound_at < v.at)")
_MARKS_PG = ("UPDATE person SET last_inbound_at = v.at, window_sent = 0, subscribed = true "
             "FROM unnest(%s::VARCHAR[], %s::TIMESTAMP WITH TIME ZONE[]) AS v(o, at) "
             "WHERE person.openid = v.o AND (person.last_inbound_at IS NULL OR person.last_inbound_at < v.at)")


def write_marks(conn: Connection, touches: dict[str, datetime]) -> None:
    """Each openid's window mark, never moved back (in openid order: row locks taken alike in every process)."""
    order = sorted(touches)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if conn.dialect.name == "sqlite":
            at = _T.c.last_inbound_at  # stored as its own processor writes it
            cursor.execute(_MARKS_SQLITE, (json.dumps([[o, bind(at, conn.dialect, touches[o])] for o in order]),))
        else:
            cursor.execute(_MARKS_PG, (order, [touches[o] for o in order]))
    finally:
        cursor.close()


_ROLE_OF = select(Person.__table__.c.role).where(Person.__table__.c.openid == bindparam("o"))
_NOT_RESIDENTS = select(Person.__table__.c.openid, Person.__table__.c.role).where(
    Person.__table__.c.role.in_([r.value for r in Role if r != Role.RESIDENT]), Person.__table__.c.openid.is_not(None))


def role_query(openid: str, admin_openids: list[str]):  # type: ignore[no-untyped-def]
    """A Core read on a bare connection: the sender's role (unknown: a resident, or an admin if configured)."""
    def query(conn: Connection) -> Role:
        role = conn.execute(_ROLE_OF, {"o": openid}).scalar_one_or_none()
        if role is None:
            return Role.ADMIN if openid in admin_openids else Role.RESIDENT
        return Role(role)
    return query


def special_roles_query(admin_openids: list[str]):  # type: ignore[no-untyped-def]
    """A Core read on a bare connection: (monotonic start, every non-resident openid → role).

    The configured admin openids count as admins: their first write makes them so (`people.ensure`)."""
    def query(conn: Connection) -> tuple[float, dict[str, Role]]:
        started = time.monotonic()
        special = {openid: Role(role) for openid, role in conn.execute(_NOT_RESIDENTS)}
        special.update(dict.fromkeys(admin_openids, Role.ADMIN))
        return started, special
    return query
