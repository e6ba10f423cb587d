"""Sweeps over due rows run in short transactions, still at most SWEEP_ROWS_PER_TICK rows a tick.

SQLite has one writer: a sweep holding the write lock for its whole tick (0.6–2 s at 1M wishes)
kept every callback's reply waiting. The rows now go SWEEP_ROWS_PER_TRANSACTION at a time.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event

from bot.config import Settings
from bot.services import sweeps
from bot.services.sweeps import SWEEP_ROWS_PER_TICK, SWEEP_ROWS_PER_TRANSACTION, run_due_sweeps
from storage.db import Database
from tests.integration.schedule_seed import add_person, add_wish, at, outbox_rows, wish_row

FULFILLED = at("2026-03-02 10:00")
DUE = at("2026-03-05 10:00")  # three days on: every wish's return-visit prompt is due


def _due_wishes(database: Database, n: int) -> list[int]:
    ids = []
    for i in range(n):
        resident = add_person(database, f"o_chunk_{i:022d}")
        ids.append(add_wish(database, resident, status="fulfilled", published=FULFILLED - timedelta(days=2),
                            claimed=FULFILLED - timedelta(days=1), fulfilled=FULFILLED))
    return ids


def _commits_during(database: Database, fn):  # type: ignore[no-untyped-def]
    commits: list[int] = []
    listener = lambda conn: commits.append(1)  # noqa: E731
    event.listen(database.engine, "commit", listener)
    try:
        result = fn()
    finally:
        event.remove(database.engine, "commit", listener)
    return result, len(commits)


def test_a_tick_takes_every_due_row_in_short_transactions(database: Database, settings: Settings) -> None:
    n = 2 * SWEEP_ROWS_PER_TRANSACTION + 7  # three transactions' worth, fewer than a tick's bound
    ids = _due_wishes(database, n)
    outcomes, commits = _commits_during(database, lambda: run_due_sweeps(database, settings, DUE))
    [prompts] = [o for o in outcomes if o.sweep.name == "return_visit_prompts"]
    assert prompts.count == n
    assert all(wish_row(database, w).return_visit_prompted_at == DUE for w in ids)
    assert len(outbox_rows(database, kind="return_visit")) == n
    # one commit per transaction: the prompts alone took three; the other sweeps one each
    assert commits >= len(sweeps.SWEEPS) + 2


def test_a_tick_still_stops_at_its_bound_and_the_next_takes_the_rest(database: Database, settings: Settings) -> None:
    n = SWEEP_ROWS_PER_TICK + SWEEP_ROWS_PER_TRANSACTION + 3
    ids = _due_wishes(database, n)
    first = {o.sweep.name: o.count for o in run_due_sweeps(database, settings, DUE)}
    assert first["return_visit_prompts"] == SWEEP_ROWS_PER_TICK
    second = {o.sweep.name: o.count for o in run_due_sweeps(database, settings, DUE + timedelta(minutes=1))}
    assert second["return_visit_prompts"] == n - SWEEP_ROWS_PER_TICK
    assert all(wish_row(database, w).return_visit_prompted_at is not None for w in ids)
    assert len(outbox_rows(database, kind="return_visit")) == n  # nobody asked twice
