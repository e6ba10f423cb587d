"""Dashboard paging and ledger export at scale: `python -m benchmarks.ledger DB_URL [ROWS]`.

Fills an empty, migrated database with ROWS wishes (default 1,000,000), then times the wishes
table's keyset pages under each filter and streams the CSV and XLSX ledgers, printing the peak
resident memory after each step.
"""

from __future__ import annotations

import os
import random
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import insert, text

from bot import messages
from bot.admin_web.queries import WishFilter, overview, wishes_page
from bot.auth import AdminView
from bot.config import Settings
from bot.services import ledger
from storage.db import Database
from storage.migrate import upgrade
from storage.models import OrgUnit, Person, Wish

STATES = ["submitted", "published", "claimed", "fulfilled", "rated", "closed", "rejected", "deferred", "assigned", "cancelled"]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fill(db: Database, rows: int) -> None:
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)

    def job(uow) -> None:  # type: ignore[no-untyped-def]
        s = uow.session
        units = [OrgUnit(kind="community", name=f"C{i}") for i in range(20)]
        s.add_all(units)
        s.flush()
        branches = [OrgUnit(kind="branch", name=f"B{i}", parent_id=units[i % 20].id) for i in range(60)]
        s.add_all(branches)
        s.flush()
        s.execute(insert(Person), [{"openid": f"r{i}", "role": "resident", "name": f"Resident {i}", "phone": "13800000000",
                                    "created_at": start, "skills": "", "subscribed": True, "window_sent": 0} for i in range(10000)])
        s.execute(insert(Person), [{"openid": f"m{i}", "role": "member", "name": f"Member {i}", "branch_id": branches[i % 60].id,
                                    "created_at": start, "skills": "", "subscribed": True, "window_sent": 0} for i in range(1000)])
        s.flush()

    db.run_sync(job, start)
    rnd = random.Random(7)
    batch = 20000
    for base in range(0, rows, batch):
        def chunk(uow, base=base) -> None:  # type: ignore[no-untyped-def]
            values = []
            for i in range(base, min(rows, base + batch)):
                state = STATES[rnd.randrange(len(STATES))]
                at = start + timedelta(minutes=i)
                values.append({"resident_id": 1 + i % 10000, "status": state, "version": 0, "tier": rnd.choice(["personal"] * 18 + ["common", "legacy"]),
                               "category": rnd.choice(messages.CATEGORIES[:4]), "content": "call 13812345678 please",
                               "masked": f"call {messages.MASK_PHONE} please", "private_details": {}, "community_id": 1 + i % 20, "source": "text",
                               "concerns_minor": False, "public": True, "created_at": at,
                               "published_at": at + timedelta(hours=2) if state != "submitted" else None,
                               "claimed_at": at + timedelta(hours=30) if state in ("claimed", "fulfilled") else None,
                               "fulfilled_at": at + timedelta(days=3) if state == "fulfilled" else None,
                               "rating": rnd.randint(1, 5) if state == "fulfilled" else None,
                               "claimer_id": 10001 + i % 1000 if state in ("claimed", "fulfilled") else None,
                               "due_at": at + timedelta(days=7) if state == "claimed" else None,
                               "phone_visit_since": at if state == "fulfilled" and i % 7 == 0 else None})
            uow.session.execute(insert(Wish), values)

        db.run_sync(chunk, start)

    def claims(uow) -> None:  # type: ignore[no-untyped-def]
        uow.session.execute(text(
            "INSERT INTO claim (wish_id, member_id, branch_id, claimed_at, due_at, helpers) "
            "SELECT id, claimer_id, 21 + claimer_id % 60, created_at, created_at, '[]' FROM wish WHERE claimer_id IS NOT NULL"))
        uow.session.execute(text("UPDATE wish SET claim_id = (SELECT claim.id FROM claim WHERE claim.wish_id = wish.id) "
                                 "WHERE claimer_id IS NOT NULL"))

    db.run_sync(claims, start)
    print(f"filled {rows} wishes; peak RSS {peak_mb():.0f} MB", flush=True)


def main() -> None:
    url = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    upgrade(url)
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    db = Database(url)
    now = datetime(2025, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=rows)  # just after the last wish
    if os.environ.get("BENCH_FILL", "1") == "1":
        fill(db, rows)
    admin = AdminView(1, "bench", 1, None, None)
    scoped = AdminView(1, "bench", 1, 3, "C2")
    filters = {"none": WishFilter(), "state": WishFilter(state="claimed"), "category": WishFilter(category=messages.CATEGORIES[3]),
               "tier=legacy": WishFilter(tier="legacy"), "community": WishFilter(community=5),
               "overdue": WishFilter(overdue=True), "phone_visit": WishFilter(phone_visit=True),
               "branch": WishFilter(branch=25)}
    for name, flt in filters.items():
        for who, view in (("all", admin), ("community", scoped)):
            t = time.perf_counter()
            page = db.run_sync(lambda uow: wishes_page(uow, view, flt), now, write=False)
            first = time.perf_counter() - t
            deep = WishFilter(**{**flt.__dict__, "before": rows // 2})
            t = time.perf_counter()
            db.run_sync(lambda uow: wishes_page(uow, view, deep), now, write=False)
            print(f"page {name:12} {who:9} first {first * 1000:7.1f} ms  middle {(time.perf_counter() - t) * 1000:7.1f} ms"
                  f"  ({len(page.wishes)} rows)", flush=True)
    for who, view in (("all", admin), ("community", scoped)):
        t = time.perf_counter()
        db.run_sync(lambda uow: overview(uow, view, settings), now, write=False)
        print(f"overview {who:9} {(time.perf_counter() - t) * 1000:7.1f} ms", flush=True)
    t = time.perf_counter()
    with open(os.devnull, "w", encoding="utf-8") as sink:
        n = ledger.write_csv(ledger.iter_batches(db, settings, now), sink)
    print(f"csv  {n} rows in {time.perf_counter() - t:.1f} s; peak RSS {peak_mb():.0f} MB", flush=True)
    if os.environ.get("BENCH_XLSX", "1") == "1":
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            n = ledger.write_xlsx(ledger.iter_batches(db, settings, now), os.path.join(tmp, "l.xlsx"))
            size = os.path.getsize(os.path.join(tmp, "l.xlsx")) / 1e6
            print(f"xlsx {n} rows in {time.perf_counter() - t:.1f} s, {size:.0f} MB; peak RSS {peak_mb():.0f} MB", flush=True)
    db.close()


if __name__ == "__main__":
    main()
