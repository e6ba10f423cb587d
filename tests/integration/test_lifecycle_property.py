"""Property: random command sequences from several residents, members and admins never leave a wish
whose status disagrees with its timeline (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

from hypothesis import HealthCheck, example, given, settings as hsettings, strategies as st

from bot.clock import FrozenClock
from bot.lifecycle import TRANSITIONS, Action, Tier, TransitionError, WishStatus
from bot.routing import DomainError
from bot.services import registration, wishes
from bot.services.claims import claim_wish, fulfil_wish, release_wish
from bot.services.wishes import WishDraft
from storage.db import Database, UnitOfWork
from storage.models import Person, Wish
from storage.repositories import WishChanged, WishNotFound
from tests.conftest import make_settings
from tests.wishflow import make_member, make_person


TEXTS = ["想请人帮忙修一下家里漏水的水龙头", "孩子需要一个新书包和文具", "想请人陪我去医院复查", "楼道的路灯坏了很久",
         "想找一份保洁的工作"]
RESIDENTS = [f"o_prop_resident_{i}" for i in range(3)]
MEMBERS = [f"o_prop_member_{i}" for i in range(2)]
ADMINS = [f"o_prop_admin_{i}" for i in range(2)]
REFUSALS = (DomainError, TransitionError, WishNotFound, WishChanged)
# The happy path is weighted up so that sequences reach the later states often.
COMMANDS = ["submit"] * 3 + ["approve"] * 3 + ["claim"] * 3 + ["fulfil"] * 3 + ["rate"] * 2 + [
    "reject", "defer", "assign", "cancel", "release", "feedback", "visit", "close"]

step = st.tuples(st.sampled_from(COMMANDS), st.integers(0, 2), st.integers(0, 30), st.integers(1, 5))


# Explicit examples (run first, on the fresh database) that surely reach the later states.
HAPPY_WITH_REOPEN = [("submit", 0, 0, 1), ("approve", 0, 0, 3), ("claim", 0, 0, 1), ("fulfil", 0, 0, 1),
                     ("rate", 0, 0, 2), ("fulfil", 0, 0, 1), ("rate", 0, 0, 5)]
ROUTED = [("submit", 1, 1, 1), ("approve", 0, 1, 2), ("assign", 0, 1, 1)]
VISITED = [("submit", 2, 2, 1), ("approve", 1, 2, 3), ("claim", 1, 2, 1), ("fulfil", 1, 2, 1), ("visit", 0, 2, 2),
           ("fulfil", 1, 2, 1), ("visit", 0, 2, 3), ("close", 0, 2, 1)]


def _person(uow: UnitOfWork, openid: str) -> Person:
    person = uow.people.by_openid(openid)
    assert person is not None
    return person


def _run(cmd: str, who: int, pick: int, n: int, ids: list[int], conf: Any) -> Callable[[UnitOfWork], Any]:
    wish_id = ids[pick % len(ids)] if ids else pick
    resident, member, admin = RESIDENTS[who % 3], MEMBERS[who % 2], ADMINS[who % 2]
    answer = ["solved", "partly", "unsolved"][n % 3]

    def job(uow: UnitOfWork) -> Any:
        if cmd == "submit":
            return wishes.submit_wish(uow, resident=_person(uow, resident), draft=WishDraft(content=TEXTS[pick % 5]),
                                      settings=conf)
        if cmd == "approve":
            return registration.approve_wish(uow, wish_id=wish_id, admin=_person(uow, admin), tier=list(Tier)[n % 3],
                                             settings=conf, unit="街道" if n == 5 else None)
        if cmd in ("reject", "defer", "assign"):
            fn = {"reject": registration.reject_wish, "defer": registration.defer_wish}.get(cmd)
            if fn is None:
                return registration.assign_wish(uow, wish_id=wish_id, admin=_person(uow, admin), unit="区民政局", settings=conf)
            return fn(uow, wish_id=wish_id, admin=_person(uow, admin), reason="说明", settings=conf)
        if cmd == "cancel":
            return wishes.cancel_wish(uow, wish_id=wish_id, resident=_person(uow, resident), settings=conf)
        if cmd == "claim":
            return claim_wish(uow, wish_id=wish_id, member=_person(uow, member), days=None, settings=conf)
        if cmd == "fulfil":
            return fulfil_wish(uow, wish_id=wish_id, member=_person(uow, member), note="办好了", settings=conf)
        if cmd == "release":
            return release_wish(uow, wish_id=wish_id, member=_person(uow, member), reason="没空", settings=conf)
        if cmd == "rate":
            return wishes.rate_wish(uow, wish_id=wish_id if n % 2 else None, resident=_person(uow, resident), rating=n,
                                    note=None, settings=conf)
        if cmd == "feedback":
            return wishes.answer_feedback(uow, wish_id=None, resident=_person(uow, resident), answer=answer, settings=conf)
        if cmd == "visit":
            return registration.record_visit(uow, wish_id=wish_id, admin=_person(uow, admin), answer=answer, rating=n,
                                             note=None, settings=conf)
        return registration.close_wish(uow, wish_id=wish_id, admin=_person(uow, admin), settings=conf)
    return job


def _check_timelines(uow: UnitOfWork) -> list[int]:
    ids = []
    for wish in uow.session.query(Wish).order_by(Wish.id):
        evs = uow.wishes.events(wish.id or 0)
        assert evs and evs[0].action == "submit" and evs[0].from_status is None
        assert evs[0].to_status == WishStatus.SUBMITTED.value
        for prev, ev in zip(evs, evs[1:]):
            assert ev.from_status == prev.to_status, (wish.id, [(e.action, e.from_status, e.to_status) for e in evs])
            if ev.from_status != ev.to_status:  # a move must be one the table allows
                rule = TRANSITIONS[(WishStatus(ev.from_status), Action(ev.action))]
                assert rule.target.value == ev.to_status
        assert evs[-1].to_status == wish.status
        assert wish.version == sum(1 for e in evs[1:] if e.from_status != e.to_status)
        if wish.status == WishStatus.CLAIMED.value:
            assert wish.claimer_id is not None
        ids.append(wish.id or 0)
    return ids


def test_random_commands_keep_status_and_timeline_in_agreement(db_url: str, clock: FrozenClock) -> None:
    conf = make_settings(db_url, resident_max_open=5, resident_max_per_day=100, member_max_open_claims=10)
    database = Database(db_url)
    now = clock.now()
    for openid in RESIDENTS:
        make_person(database, now, openid)
    for openid in MEMBERS:
        make_member(database, now, openid, name=openid[-1])
    for openid in ADMINS:
        make_person(database, now, openid, "admin")
    ids: list[int] = []

    @hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(step, min_size=1, max_size=40))
    @example(HAPPY_WITH_REOPEN)
    @example(ROUTED)
    @example(VISITED)
    def run(steps: list[tuple[str, int, int, int]]) -> None:
        for cmd, who, pick, n in steps:
            clock.advance(timedelta(minutes=7))
            try:
                database.run_sync(_run(cmd, who, pick, n, ids, conf), clock.now())
            except REFUSALS:
                pass
            if cmd == "submit":
                ids[:] = database.run_sync(lambda uow: [w.id for w in uow.session.query(Wish.id)], clock.now(), False)
        database.run_sync(_check_timelines, clock.now(), False)

    try:
        run()
        statuses = database.run_sync(lambda uow: set(uow.wishes.count_by_status()), clock.now(), False)
        assert {"closed", "assigned"} <= statuses, statuses  # the explicit examples went all the way
    finally:
        database.close()
