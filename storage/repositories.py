"""Repositories: queries named after their use. They flush, never commit (the job does)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.lifecycle import OPEN_STATUSES, Action, Party, TransitionError, WishStatus, decide
from storage.models import (
    Claim,
    DialogueState,
    InboundLog,
    OrgUnit,
    Outbox,
    Person,
    SweepRun,
    Wish,
    WishEvent,
)


class WishNotFound(LookupError):
    def __init__(self, wish_id: int | None) -> None:
        super().__init__(f"no wish {wish_id}")
        self.wish_id = wish_id


class WishChanged(RuntimeError):
    """The wish moved under us (a compare-and-set found another status): someone was faster."""

    def __init__(self, wish_id: int, expected: str) -> None:
        super().__init__(f"wish {wish_id} is no longer {expected}")
        self.wish_id, self.expected = wish_id, expected


class PersonRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, person_id: int) -> Person | None:
        return self.s.get(Person, person_id)

    def by_openid(self, openid: str) -> Person | None:
        return self.s.execute(select(Person).where(Person.openid == openid)).scalar_one_or_none()

    def ensure(self, openid: str, *, now: datetime, admin_openids: Iterable[str] = ()) -> Person:
        """The person behind an openid, created as a resident (or admin, if configured) on first contact."""
        person = self.by_openid(openid)
        if person is None:
            person = Person(openid=openid, role="admin" if openid in set(admin_openids) else "resident", created_at=now)
            try:
                with self.s.begin_nested():
                    self.s.add(person)
                    self.s.flush()
            except IntegrityError:  # created concurrently by another process
                person = self.by_openid(openid)
                assert person is not None
        elif openid in set(admin_openids) and person.role != "admin":
            person.role = "admin"
        return person

    def note_inbound(self, person: Person, now: datetime) -> None:
        """A user's own message opens a new 48-hour customer-service window (5 messages)."""
        person.last_inbound_at = now
        person.window_sent = 0
        person.subscribed = True

    def admins(self) -> Sequence[Person]:
        return self.s.execute(select(Person).where(Person.role == "admin").order_by(Person.id)).scalars().all()

    def members(self) -> Sequence[Person]:
        return self.s.execute(select(Person).where(Person.role == "member").order_by(Person.id)).scalars().all()

    def add(self, person: Person) -> Person:
        self.s.add(person)
        self.s.flush()
        return person


class WishRepository:
    def __init__(self, session: Session) -> None:
        self.s = session
        self._open: dict[int, Sequence[Wish]] = {}  # open wishes per resident, read once per unit of work

    def add(self, wish: Wish, *, actor: Person | None, actor_role: str, now: datetime, note: str | None = None) -> Wish:
        self._open.clear()
        self.s.add(wish)
        self.s.flush()
        self.s.add(
            WishEvent(wish_id=wish.id, at=now, actor_id=actor.id if actor else None, actor_role=actor_role,
                      action="submit", from_status=None, to_status=wish.status, note=note)
        )
        self.s.flush()
        return wish

    def get(self, wish_id: int) -> Wish:
        wish = self.s.get(Wish, wish_id)
        if wish is None:
            raise WishNotFound(wish_id)
        return wish

    def find(self, wish_id: int) -> Wish | None:
        return self.s.get(Wish, wish_id)

    def move(
        self,
        wish: Wish,
        action: Action,
        *,
        parties: Iterable[Party],
        actor: Person | None,
        actor_role: str,
        now: datetime,
        note: str | None = None,
        media_id: str | None = None,
        changes: dict[str, Any] | None = None,
    ) -> WishStatus:
        """The only writer of `wish.status`: decide, compare-and-set, and record the event."""
        self._open.clear()
        current = WishStatus(wish.status)
        try:
            target = decide(current, action, parties)
        except TransitionError as exc:
            exc.wish_id = wish.id  # type: ignore[attr-defined]  (for the user's reply)
            raise
        values: dict[str, Any] = {"status": target.value, "version": Wish.version + 1, **(changes or {})}
        result = self.s.execute(
            update(Wish)
            .where(Wish.id == wish.id, Wish.status == current.value, Wish.version == wish.version)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            self.s.expire(wish)
            raise WishChanged(wish.id or 0, current.value)
        self.s.add(
            WishEvent(wish_id=wish.id, at=now, actor_id=actor.id if actor else None, actor_role=actor_role,
                      action=action.value, from_status=current.value, to_status=target.value, note=note, media_id=media_id)
        )
        self.s.flush()
        self.s.refresh(wish)
        return target

    def note(self, wish: Wish, *, action: str, actor: Person | None, actor_role: str, now: datetime,
             note: str | None = None, media_id: str | None = None) -> WishEvent:
        """A timeline entry that does not change the status (evidence photo, contact, transcript)."""
        ev = WishEvent(wish_id=wish.id, at=now, actor_id=actor.id if actor else None, actor_role=actor_role,
                       action=action, from_status=wish.status, to_status=wish.status, note=note, media_id=media_id)
        self.s.add(ev)
        self.s.flush()
        return ev

    def events(self, wish_id: int) -> Sequence[WishEvent]:
        return self.s.execute(select(WishEvent).where(WishEvent.wish_id == wish_id).order_by(WishEvent.at, WishEvent.id)).scalars().all()

    def of_resident(self, resident_id: int, *, limit: int = 20) -> Sequence[Wish]:
        return self.s.execute(
            select(Wish).where(Wish.resident_id == resident_id).order_by(Wish.id.desc()).limit(limit)
        ).scalars().all()

    def open_of_resident(self, resident_id: int) -> Sequence[Wish]:
        """Memoised until this repository adds or moves a wish (the 许愿 path asks twice: limits, repeats)."""
        hit = self._open.get(resident_id)
        if hit is None:
            hit = self._open[resident_id] = self.s.execute(
                select(Wish).where(Wish.resident_id == resident_id, Wish.status.in_([s.value for s in OPEN_STATUSES]))
                .order_by(Wish.id)
            ).scalars().all()
        return hit

    def count_submitted_since(self, resident_id: int, since: datetime) -> int:
        return int(self.s.execute(
            select(func.count()).select_from(Wish).where(Wish.resident_id == resident_id, Wish.created_at >= since)
        ).scalar_one())

    def with_status(self, status: WishStatus, *, limit: int = 50) -> Sequence[Wish]:
        return self.s.execute(select(Wish).where(Wish.status == status.value).order_by(Wish.id).limit(limit)).scalars().all()

    def latest_awaiting_feedback(self, resident_id: int) -> Wish | None:
        """The resident's most recently fulfilled wish that has no answer yet."""
        return self.s.execute(
            select(Wish).where(Wish.resident_id == resident_id, Wish.status == WishStatus.FULFILLED.value)
            .order_by(Wish.fulfilled_at.desc(), Wish.id.desc()).limit(1)
        ).scalar_one_or_none()

    def count_by_status(self) -> dict[str, int]:
        rows = self.s.execute(select(Wish.status, func.count()).group_by(Wish.status)).all()
        return {status: int(n) for status, n in rows}


class ClaimRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, claim: Claim) -> Claim:
        self.s.add(claim)
        self.s.flush()
        return claim

    def get(self, claim_id: int) -> Claim | None:
        return self.s.get(Claim, claim_id)

    def open_of_member(self, member_id: int) -> Sequence[Claim]:
        return self.s.execute(
            select(Claim).where(Claim.member_id == member_id, Claim.ended_at.is_(None)).order_by(Claim.due_at)
        ).scalars().all()

    def of_member(self, member_id: int, *, limit: int = 30) -> Sequence[Claim]:
        return self.s.execute(
            select(Claim).where(Claim.member_id == member_id).order_by(Claim.claimed_at.desc()).limit(limit)
        ).scalars().all()

    def count_open_of_member(self, member_id: int) -> int:
        return int(self.s.execute(
            select(func.count()).select_from(Claim).where(Claim.member_id == member_id, Claim.ended_at.is_(None))
        ).scalar_one())


class OutboxRepository:
    def __init__(self, session: Session) -> None:
        self.s = session
        self.added = 0  # rows queued through this unit of work (the callback wakes the sender only then)

    def add(
        self,
        *,
        channel: str,
        kind: str,
        payload: dict[str, Any],
        now: datetime,
        recipient: str | None = None,
        dedupe_key: str | None = None,
        due_at: datetime | None = None,
    ) -> Outbox | None:
        """Queue a message; a repeated dedupe key is a no-op (returns None)."""
        row = Outbox(channel=channel, kind=kind, payload=payload, recipient=recipient, dedupe_key=dedupe_key,
                     created_at=now, next_attempt_at=due_at or now)
        if dedupe_key is not None:
            exists = self.s.execute(select(Outbox.id).where(Outbox.dedupe_key == dedupe_key)).first()
            if exists:
                return None
        self.s.add(row)
        self.s.flush()
        self.added += 1
        return row

    def for_recipient(self, recipient: str) -> Sequence[Outbox]:
        return self.s.execute(select(Outbox).where(Outbox.recipient == recipient).order_by(Outbox.id)).scalars().all()

    def count_by_state(self) -> dict[str, int]:
        rows = self.s.execute(select(Outbox.state, func.count()).group_by(Outbox.state)).all()
        return {state: int(n) for state, n in rows}


class InboundRepository:
    """The dedupe log, in Core statements: it is on every message's path."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, key: str) -> InboundLog | None:
        return self.s.get(InboundLog, key)

    def reserve(self, key: str, *, msg_type: str, now: datetime) -> bool:
        """Insert the key unless present; False for a message already handled.

        On PostgreSQL a concurrent copy of the same message waits on the unique key until the
        first transaction ends, then sees its row (ON CONFLICT DO NOTHING), so one copy wins.
        """
        dialect = self.s.get_bind().dialect.name
        ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(InboundLog)
        stmt = (ins.values(dedupe_key=key, msg_type=msg_type, received_at=now)
                .on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(InboundLog.dedupe_key))
        return self.s.connection().execute(stmt).first() is not None

    def reply_of(self, key: str) -> str | None:
        return self.s.connection().execute(select(InboundLog.reply).where(InboundLog.dedupe_key == key)).scalar_one_or_none()

    def store_reply(self, key: str, reply: str | None) -> None:
        self.s.connection().execute(update(InboundLog).where(InboundLog.dedupe_key == key).values(reply=reply))

    def record(self, key: str, *, msg_type: str, now: datetime) -> InboundLog:
        row = InboundLog(dedupe_key=key, msg_type=msg_type, received_at=now)
        self.s.add(row)
        self.s.flush()
        return row


class DialogueRepository:
    def __init__(self, session: Session) -> None:
        self.s = session
        self._absent: set[int] = set()  # looked up and not found in this unit of work

    def _load(self, person_id: int) -> DialogueState | None:
        if person_id in self._absent:
            return None
        state = self.s.get(DialogueState, person_id)
        if state is None:
            self._absent.add(person_id)
        return state

    def active(self, person_id: int, now: datetime) -> DialogueState | None:
        state = self._load(person_id)
        if state is not None and state.expires_at <= now:
            self.s.delete(state)
            self.s.flush()
            return None
        return state

    def expired(self, person_id: int, now: datetime) -> bool:
        state = self._load(person_id)
        return state is not None and state.expires_at <= now

    def start(self, person_id: int, *, flow: str, step: str, data: dict[str, Any], expires_at: datetime) -> DialogueState:
        self._absent.discard(person_id)
        state = self.s.get(DialogueState, person_id)
        if state is None:
            state = DialogueState(person_id=person_id, flow=flow, step=step, data=data, expires_at=expires_at)
            self.s.add(state)
        else:
            state.flow, state.step, state.data, state.expires_at = flow, step, dict(data), expires_at
        self.s.flush()
        return state

    def advance(self, state: DialogueState, *, step: str, data: dict[str, Any], expires_at: datetime) -> None:
        state.step = step
        state.data = dict(data)  # a new object so the JSON column is seen as changed
        state.expires_at = expires_at
        self.s.flush()

    def clear(self, person_id: int) -> None:
        if person_id in self._absent:
            return  # looked up in this unit of work and not there: no second query
        state = self.s.get(DialogueState, person_id)
        if state is not None:
            self.s.delete(state)
            self.s.flush()


class OrgRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, unit_id: int | None) -> OrgUnit | None:
        return self.s.get(OrgUnit, unit_id) if unit_id else None

    def by_name(self, kind: str, name: str) -> OrgUnit | None:
        return self.s.execute(select(OrgUnit).where(OrgUnit.kind == kind, OrgUnit.name == name)).scalar_one_or_none()

    def ensure(self, kind: str, name: str, parent: OrgUnit | None = None) -> OrgUnit:
        unit = self.by_name(kind, name)
        if unit is None:
            unit = OrgUnit(kind=kind, name=name, parent_id=parent.id if parent else None)
            self.s.add(unit)
            self.s.flush()
        elif parent is not None and unit.parent_id is None:
            unit.parent_id = parent.id
        return unit

    def all_of_kind(self, kind: str) -> Sequence[OrgUnit]:
        return self.s.execute(select(OrgUnit).where(OrgUnit.kind == kind).order_by(OrgUnit.name)).scalars().all()


class SweepRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def once(self, key: str, now: datetime) -> bool:
        """True the first time `key` is claimed (across processes); False afterwards."""
        if self.s.get(SweepRun, key) is not None:
            return False
        try:
            with self.s.begin_nested():
                self.s.add(SweepRun(key=key, done_at=now))
                self.s.flush()
        except IntegrityError:
            return False
        return True


__all__ = [
    "WishNotFound", "WishChanged", "PersonRepository", "WishRepository", "ClaimRepository", "OutboxRepository",
    "InboundRepository", "DialogueRepository", "OrgRepository", "SweepRepository",
]
