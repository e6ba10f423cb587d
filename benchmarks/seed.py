"""Realistic data, fast: `python -m benchmarks.seed DB_URL --wishes N`.

An organisation of 10 communities × 5 grids, 30 branches, 600 members and N/3 residents;
wishes spread over the last 400 days in every state with consistent timestamps, claims and
timeline events. Rows go straight to the driver (COPY on PostgreSQL, executemany of tuples on
SQLite) in batches of 20,000, so 1M wishes (with ~4M events) take about a minute.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import datetime, timedelta, timezone
from operator import itemgetter
from typing import Any, Callable, Iterator

from sqlalchemy import create_engine, func, insert, select
from sqlalchemy.engine import Engine

from sqlmodel import SQLModel

from storage.migrate import upgrade
from storage.models import Claim, OrgUnit, Person, Wish

CATEGORIES = ("助老陪伴", "助学", "助残", "就业", "生活物资", "维修", "医疗健康", "法律咨询", "心理疏导", "环境设施", "其他")
TEXTS = ("想请人陪我去医院复查", "家里水龙头漏水想请人修一下", "孩子需要一些学习用品", "想找人聊聊天", "楼道灯坏了",
         "需要法律咨询", "想学用智能手机", "冬天需要一床厚被子", "想找一份保洁工作", "轮椅坏了需要维修")
STATES = (("closed", 40), ("rated", 5), ("fulfilled", 8), ("claimed", 12), ("published", 15), ("submitted", 8),
          ("deferred", 4), ("assigned", 4), ("rejected", 2), ("cancelled", 2))


def _org(conn: Any) -> tuple[list[int], list[int], list[int]]:
    street = conn.execute(insert(OrgUnit).values(kind="street", name="幸福街道").returning(OrgUnit.id)).scalar_one()
    communities, grids, branches = [], [], []
    for c in range(10):
        cid = conn.execute(insert(OrgUnit).values(kind="community", name=f"第{c + 1}社区", parent_id=street).returning(OrgUnit.id)).scalar_one()
        communities.append(cid)
        for g in range(5):
            grids.append(conn.execute(insert(OrgUnit).values(kind="grid", name=f"第{c + 1}社区{g + 1}网格", parent_id=cid).returning(OrgUnit.id)).scalar_one())
        for b in range(3):
            branches.append(conn.execute(insert(OrgUnit).values(kind="branch", name=f"第{c + 1}社区第{b + 1}支部", parent_id=cid).returning(OrgUnit.id)).scalar_one())
    return communities, grids, branches


def _converter(table: str, column: str, sqlite: bool) -> Callable[[Any], Any] | None:
    """How a value of this column is bound: UTC datetimes (SQLite: its text format), JSON as text."""
    kind = type(SQLModel.metadata.tables[table].columns[column].type).__name__
    if kind == "UTCDateTime":
        if sqlite:
            return lambda v: v.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")
        return lambda v: v.astimezone(timezone.utc)
    if kind == "JSON":
        return lambda v: json.dumps(v, ensure_ascii=False) if v else ("{}" if isinstance(v, dict) else "[]")
    return None


def _defaults(table: str, given: set[str]) -> dict[str, Any]:
    """The Python-side defaults Core would have filled for the columns a row leaves out."""
    out: dict[str, Any] = {}
    for col in SQLModel.metadata.tables[table].columns:
        if col.name in given or col.default is None:
            continue
        arg = col.default.arg  # type: ignore[attr-defined]
        out[col.name] = arg(None) if callable(arg) else arg
    return out


def bulk_insert(engine: Engine, table: str, rows: list[dict[str, Any]]) -> None:
    """Rows straight to the driver: COPY on PostgreSQL, executemany of tuples on SQLite.

    Values are what the column types would have bound (UTC datetimes, SQLite's text format,
    JSON text), so the ORM reads them back exactly as if it had written them.
    """
    if not rows:
        return
    defaults = _defaults(table, set(rows[0]))
    if defaults:
        rows = [{**defaults, **r} for r in rows]
    cols = list(rows[0])
    sqlite = engine.dialect.name == "sqlite"
    getter = itemgetter(*cols)
    convert = [(i, fn) for i, c in enumerate(cols) if (fn := _converter(table, c, sqlite)) is not None]

    def values() -> Iterator[tuple[Any, ...]]:
        for r in rows:
            t = list(getter(r))
            for i, fn in convert:
                if t[i] is not None:
                    t[i] = fn(t[i])
            yield tuple(t)

    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if sqlite:
            cur.execute("PRAGMA synchronous=OFF")  # seeding a benchmark database: durability is not the point
            cur.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                            values())
        else:
            with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                for row in values():
                    copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def seed(engine: Engine, wishes: int, *, now: datetime | None = None, rng: random.Random | None = None, batch: int = 20_000) -> dict[str, int]:
    rng = rng or random.Random(7)
    now = now or datetime.now(timezone.utc)
    with engine.begin() as conn:
        communities, grids, branches = _org(conn)
        base = conn.execute(select(func.coalesce(func.max(Person.id), 0))).scalar_one()
        members = [{"openid": f"oSeedMember{i:016d}", "role": "member", "name": f"党员{i}", "branch_id": branches[i % len(branches)],
                    "community_id": communities[i % len(communities)], "grid_id": grids[i % len(grids)], "skills": rng.choice(CATEGORIES),
                    "subscribed": True, "window_sent": 0, "created_at": now - timedelta(days=500)} for i in range(600)]
        conn.execute(insert(Person), members)
        member_ids = list(range(base + 1, base + 601))
        n_res = max(1, wishes // 3)
    for start in range(0, n_res, batch):
        bulk_insert(engine, "person", [{"openid": f"oSeedResident{i:015d}", "role": "resident", "skills": "", "subscribed": True,
                                        "window_sent": 0, "community_id": communities[i % 10], "created_at": now - timedelta(days=450)}
                                       for i in range(start, min(n_res, start + batch))])
    resident0 = base + 601
    states = [s for s, w in STATES for _ in range(w)]
    wish_base = 0
    with engine.connect() as conn:
        wish_base = conn.execute(select(func.coalesce(func.max(Wish.id), 0))).scalar_one()
    claim_id = 0
    with engine.connect() as conn:
        claim_id = conn.execute(select(func.coalesce(func.max(Claim.id), 0))).scalar_one()
    for start in range(0, wishes, batch):
        w_rows, e_rows, c_rows = [], [], []
        for i in range(start, min(wishes, start + batch)):
            wid = wish_base + i + 1
            status = rng.choice(states)
            created = now - timedelta(days=rng.uniform(0, 400))
            ts: dict[str, Any] = {"published_at": None, "claimed_at": None, "due_at": None, "fulfilled_at": None, "rated_at": None, "closed_at": None}
            member = rng.choice(member_ids)
            t = created
            events = [("submit", None, "submitted", t)]
            if status in ("published", "claimed", "fulfilled", "rated", "closed"):
                t += timedelta(hours=rng.uniform(1, 48)); ts["published_at"] = t; events.append(("approve", "submitted", "published", t))
            if status in ("claimed", "fulfilled", "rated", "closed"):
                t += timedelta(hours=rng.uniform(1, 120)); ts["claimed_at"] = t; ts["due_at"] = t + timedelta(days=7)
                events.append(("claim", "published", "claimed", t))
                claim_id += 1
                c_rows.append({"id": claim_id, "wish_id": wid, "member_id": member, "branch_id": branches[(member - base - 1) % len(branches)],
                               "claimed_at": t, "due_at": ts["due_at"], "helpers": [],
                               "ended_at": None if status == "claimed" else t + timedelta(days=2),
                               "outcome": None if status == "claimed" else "fulfilled"})
            if status in ("fulfilled", "rated", "closed"):
                t += timedelta(hours=rng.uniform(2, 160)); ts["fulfilled_at"] = t; events.append(("fulfil", "claimed", "fulfilled", t))
            if status in ("rated", "closed"):
                t += timedelta(days=rng.uniform(0.5, 6)); ts["rated_at"] = t; events.append(("rate", "fulfilled", "rated", t))
            if status == "closed":
                ts["closed_at"] = t; events.append(("close", "rated", "closed", t))
            if status in ("deferred", "assigned", "rejected", "cancelled"):
                t += timedelta(hours=rng.uniform(1, 72))
                events.append(({"deferred": "defer", "assigned": "assign", "rejected": "reject", "cancelled": "cancel"}[status], "submitted", status, t))
            text = rng.choice(TEXTS)
            w_rows.append({"id": wid, "resident_id": resident0 + (i % n_res), "status": status, "version": len(events) - 1,
                           "tier": "personal" if status != "assigned" else "common", "category": rng.choice(CATEGORIES),
                           "content": text, "masked": text, "private_details": {}, "community_id": communities[i % 10],
                           "grid_id": grids[i % len(grids)], "source": "text", "concerns_minor": False, "public": True,
                           "claimer_id": member if ts["claimed_at"] else None, "claim_id": claim_id if ts["claimed_at"] else None,
                           "created_at": created, "rating": rng.choice((3, 4, 5, 5, 5, 2)) if ts["rated_at"] else None,
                           "assigned_unit": "区住建局" if status == "assigned" else None, **ts})
            e_rows.extend({"wish_id": wid, "at": at, "actor_role": "system", "action": a, "from_status": f, "to_status": to}
                          for a, f, to, at in events)
        bulk_insert(engine, "wish", w_rows)
        if c_rows:
            bulk_insert(engine, "claim", c_rows)
        bulk_insert(engine, "wish_event", e_rows)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            for table in ("wish", "claim"):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    return {"wishes": wishes, "residents": n_res, "members": 600}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.seed")
    ap.add_argument("url")
    ap.add_argument("--wishes", type=int, default=10_000)
    args = ap.parse_args()
    upgrade(args.url)
    engine = create_engine(args.url)
    t = time.perf_counter()
    counts = seed(engine, args.wishes)
    print(f"seeded {counts} in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
