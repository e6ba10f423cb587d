"""Who is writing to us, without a write per message.

Read-only commands (帮助) are answered from the sender's role alone. Roles are cached for a
short while (a member bound in another process shows up within `ttl` seconds), and the
"user wrote to us" marks that open the 48-hour customer-service window are buffered and
written in batches — by the next write job of this process or the periodic flush, whichever
comes first — instead of costing a transaction per message.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update

from bot.lifecycle import Role
from storage.db import UnitOfWork
from storage.models import Person


class Presence:
    def __init__(self, *, ttl: float = 30.0, max_size: int = 200_000) -> None:
        self.ttl, self.max_size = ttl, max_size
        self._roles: dict[str, tuple[Role, float]] = {}
        self._touches: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def cached_role(self, openid: str) -> Role | None:
        hit = self._roles.get(openid)
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def remember(self, openid: str, role: str) -> None:
        if len(self._roles) >= self.max_size:
            self._roles.clear()
        self._roles[openid] = (Role(role), time.monotonic() + self.ttl)

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
        t = Person.__table__  # Core executemany: one statement for the whole buffer, no ORM per row
        stmt = (update(t).where(t.c.openid == bindparam("o"), (t.c.last_inbound_at.is_(None)) | (t.c.last_inbound_at < bindparam("at")))
                .values(last_inbound_at=bindparam("at"), window_sent=0, subscribed=True))
        uow.session.connection().execute(stmt, [{"o": openid, "at": at} for openid, at in touches.items()])
        return len(touches)


_ROLE_OF = select(Person.__table__.c.role).where(Person.__table__.c.openid == bindparam("o"))


def role_query(openid: str, admin_openids: list[str]):  # type: ignore[no-untyped-def]
    """A Core read on a bare connection: the sender's role (unknown: a resident, or an admin if configured)."""
    def query(conn: Connection) -> Role:
        role = conn.execute(_ROLE_OF, {"o": openid}).scalar_one_or_none()
        if role is None:
            return Role.ADMIN if openid in admin_openids else Role.RESIDENT
        return Role(role)
    return query
