"""The 许愿 batch's one-statement reads (SQLite's JSON, PostgreSQL's CTE) against the five plain
Core reads they replace, on data where every part has something to find."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import insert

from bot.services import wish_batch
from storage.db import Database
from storage.models import DialogueState, InboundLog, Person, Wish

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)
DAY = datetime(2026, 3, 1, 16, 0, tzinfo=timezone.utc)


def _seed(db: Database) -> None:
    def job(uow) -> None:  # type: ignore[no-untyped-def]
        conn = uow.session.connection()
        ids = [conn.execute(insert(Person).values(openid=f"o{i}", role="member" if i == 3 else "resident", created_at=NOW,
                                                  skills="", subscribed=True, window_sent=0)).inserted_primary_key[0]
               for i in range(6)]
        wish = {"version": 0, "tier": "personal", "category": "维修", "masked": "m", "private_details": {}, "source": "text",
                "concerns_minor": False, "public": True}
        rows = [(ids[0], "submitted", "修水龙头", NOW), (ids[0], "published", "陪我聊天", NOW - timedelta(days=3)),
                (ids[0], "closed", "今天办完的", NOW - timedelta(hours=2)), (ids[1], "claimed", "买书包", NOW - timedelta(hours=1)),
                (ids[2], "cancelled", "不要了", NOW), (ids[4], "submitted", "楼道灯", DAY - timedelta(seconds=1))]
        conn.execute(insert(Wish), [dict(wish, resident_id=r, status=s, content=c, created_at=t) for r, s, c, t in rows])
        conn.execute(insert(DialogueState).values(person_id=ids[1], flow="wish", step="content", data={}, expires_at=NOW + timedelta(hours=1)))
        conn.execute(insert(InboundLog), [{"dedupe_key": k, "received_at": NOW, "msg_type": "text", "reply": "r"} for k in ("k1", "k3")])
    db.run_sync(job, NOW)


def test_one_statement_reads_find_what_the_plain_reads_find(db_url: str) -> None:
    db = Database(db_url)
    try:
        _seed(db)
        openids = ["o0", "o1", "o2", "o3", "o4", "o9"]  # o9 is nobody yet
        keys = ["k1", "k2", "k3"]

        def both(uow):  # type: ignore[no-untyped-def]
            conn = uow.session.connection()
            fast = wish_batch._read_sqlite if conn.dialect.name == "sqlite" else wish_batch._read_pg
            return fast(conn, openids, keys, DAY), wish_batch._read_core(conn, openids, keys, DAY)

        fast, plain = db.run_sync(both, NOW, False)
        assert fast.people == plain.people and set(fast.people) == {"o0", "o1", "o2", "o3", "o4"}
        assert fast.busy == plain.busy and len(fast.busy) == 1
        assert {k: sorted(v) for k, v in fast.opens.items()} == {k: sorted(v) for k, v in plain.opens.items()}
        assert sorted(sorted(v) for v in fast.opens.values()) == [["买书包"], ["修水龙头", "陪我聊天"], ["楼道灯"]]
        assert fast.today == plain.today and sorted(fast.today.values()) == [1, 1, 2]
        assert fast.handled == plain.handled == {"k1", "k3"}
    finally:
        db.close()
