"""Sweeps and stats whose input grows with the data stay bounded: counted in SQL, shown in part, streamed."""

from __future__ import annotations

from datetime import timedelta

from bot import messages
from bot.config import Settings
from bot.services import stats, sweeps
from storage.db import Database
from tests.conftest import make_settings
from tests.integration.schedule_seed import add_claim, add_person, add_wish, at, outbox_rows

NOW = at("2026-03-09 10:00")  # a Monday after 09:00


def test_the_phone_visit_section_counts_every_wish_and_lists_the_first_codes(database: Database, db_url: str) -> None:
    settings = make_settings(db_url)
    resident = add_person(database, "o_resident_bounded")
    fulfilled = at("2026-03-01 10:00")
    ids = [add_wish(database, resident, status="fulfilled", fulfilled=fulfilled, phone_visit_since=fulfilled + timedelta(days=7))
           for _ in range(sweeps.PHONE_CODES_SHOWN + 5)]
    add_wish(database, resident, status="fulfilled", fulfilled=fulfilled)  # not on the list
    shown = database.run_sync(lambda uow: stats.stats_text(uow, settings), NOW, write=False)
    codes = messages.STATS_CODE_SEP.join(str(i) for i in ids[: sweeps.PHONE_CODES_SHOWN]) + messages.DIGEST_MORE.format(n=5)
    assert messages.STATS_PHONE_VISITS.format(n=len(ids), codes=codes) in shown


def test_the_monday_nudge_streams_members_in_order_each_with_all_their_claims(database: Database, db_url: str,
                                                                             monkeypatch: object) -> None:
    settings: Settings = make_settings(db_url)
    monkeypatch.setattr(sweeps, "NUDGE_BATCH_ROWS", 2)  # type: ignore[attr-defined]  # members span several batches
    resident = add_person(database, "o_resident_nudge")
    members = [add_person(database, f"o_member_nudge_{i}", role="member", name=f"党员{i}") for i in range(3)]
    expected: dict[int, list[int]] = {m: [] for m in members}
    for k in range(7):
        member = members[k % 3]
        claimed = at("2026-03-02 10:00") + timedelta(hours=k)
        wid = add_wish(database, resident, status="claimed", published=claimed - timedelta(hours=1), claimed=claimed,
                       member_id=member, masked=f"心愿{k}")
        add_claim(database, wid, member, claimed=claimed, due=at("2026-03-20 10:00") - timedelta(hours=k))
        expected[member].insert(0, wid)  # later claims fall due earlier: listed first
    done = database.run_sync(lambda uow: sweeps.sweep_monday_nudge(uow, settings), NOW)
    assert done == 3
    rows = [r for r in outbox_rows(database, kind="reminder")]
    assert len(rows) == 3
    for row in rows:
        member = next(m for m in members if row.dedupe_key.endswith(f":{m}:0"))
        assert row.payload["template"]["code"] == ",".join(str(w) for w in expected[member])
