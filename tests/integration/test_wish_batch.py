"""`许愿` set-wise (bot/services/wish_batch.py) against the ordinary path, on SQLite and PostgreSQL.

The same batch of messages — plain wishes from new and known residents, a wish with a phone,
an ID and a house number, a repeat of an open wish, a resident in the middle of a dialogue, a
member, an admin, a resident over the daily limit, a too-short text, a WeChat retry and two
wishes from one resident — goes once through a Database that groups and once through one that
runs every job alone. Replies and every row written must be the same, column by column.
"""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.clock import FrozenClock
from bot.config import Settings
from bot.gateway import Duplicate, handle_job
from bot.inbound import parse_inbound
from handlers import build_dispatcher
from storage.db import Database, UnitOfWork
from storage.models import DialogueState, InboundLog, Person, Wish, WishEvent
from tests.conftest import make_settings
from tests.support import text_xml
from tests.wishflow import make_member

TAP = "想请人帮忙修一下家里漏水的水龙头"
PLAIN = ["老伴走了以后一个人住，希望有人周末来陪我聊聊天", "孙子上三年级，想要一个新书包和一套文具",
         "腿脚不方便，下个月想请人陪我去医院复查血压", "楼道的灯坏了好几天，晚上上下楼很黑", "冬天快到了，家里缺一床厚棉被"]
PRIVATE = "我住3号楼2单元501室，电话13812345678，身份证110101195001011234，想请人帮忙换个灯泡"
FAST = 8  # old, priv, five new residents, the first of "two"


async def _prepare(db: Database, settings: Settings, now: datetime, p: str) -> list[bytes]:
    """Earlier state for prefix `p`'s residents; returns the batch's messages (raw XML)."""
    dispatcher = build_dispatcher()

    async def say(openid: str, text: str, msg_id: int | None = None) -> Any:
        msg = parse_inbound(text_xml(openid, text, msg_id=msg_id).encode())
        return await db.write(handle_job(msg, settings, dispatcher), now=now)

    def with_community(uow: UnitOfWork) -> None:
        person = uow.people.ensure(f"{p}old", now=uow.now)
        person.community_id = uow.org.ensure("community", "幸福社区").id
        uow.flush()

    db.run_sync(with_community, now)
    assert (await say(f"{p}twin", f"许愿 {TAP}")).startswith("心愿已收到")
    assert await say(f"{p}talk", "许愿")  # the dialogue asks what the wish is
    make_member(db, now, f"{p}mem")
    for text in PLAIN[:2]:  # the daily limit (2 in this test) reached; both cancelled, so none is open
        code = int(re.search(r"编号 (\d+)", await say(f"{p}full", f"许愿 {text}")).group(1))  # type: ignore[union-attr]
        assert "已取消" in await say(f"{p}full", f"取消 {code}") or True
    retry_id = 9_000_000 + ord(p)
    first = await say(f"{p}dup", f"许愿 {PLAIN[3]}", msg_id=retry_id)
    assert first.startswith("心愿已收到")
    batch = [
        (f"{p}old", f"许愿 {PLAIN[0]}", None), (f"{p}priv", f"许愿 {PRIVATE}", None),
        *[(f"{p}new{k}", f"许愿 {text}", None) for k, text in enumerate(PLAIN)],
        (f"{p}two", f"许愿 {PLAIN[1]}", None), (f"{p}two", f"许愿 {PLAIN[2]}", None),
        (f"{p}twin", "许愿 想请人帮忙修一下家里漏水的水龙头啊", None), (f"{p}talk", f"许愿 {PLAIN[4]}", None),
        (f"{p}mem", f"许愿 {PLAIN[3]}", None), (f"{p}admin", f"许愿 {PLAIN[2]}", None),
        (f"{p}full", f"许愿 {PLAIN[4]}", None), (f"{p}short", "许愿 修灯", None), (f"{p}dup", f"许愿 {PLAIN[3]}", retry_id),
    ]
    return [text_xml(o, t, msg_id=m).encode() for o, t, m in batch]


async def _one_batch(db: Database, settings: Settings, now: datetime, raws: list[bytes]) -> list[Any]:
    """Submit every message while the writer is held, so that they all meet in one batch."""
    dispatcher = build_dispatcher()
    started, gate = threading.Event(), threading.Event()

    def hold(uow: UnitOfWork) -> None:
        started.set()
        gate.wait(10)

    held = db.submit(hold, now=now)
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
    futures = [db.submit(handle_job(parse_inbound(raw), settings, dispatcher), now=now) for raw in raws]
    gate.set()
    await held
    return [r.reply if isinstance(r, Duplicate) else r for r in await asyncio.gather(*futures)]


def _snapshot(db: Database, now: datetime, p: str) -> dict[str, Any]:
    """Everything prefix `p`'s residents own, with ids replaced by what they stand for."""
    def job(uow: UnitOfWork) -> dict[str, Any]:
        s = uow.session
        people = {r.id: r for r in s.execute(select(Person).where(Person.openid.like(f"{p}%"))).scalars()}
        who = {pid: person.openid[len(p):] for pid, person in people.items()}  # type: ignore[index]
        wishes = s.execute(select(Wish).where(Wish.resident_id.in_(list(people))).order_by(Wish.id)).scalars().all()
        label = {w.id: f"<{who[w.resident_id]}:{w.content}>" for w in wishes}

        def cols(row: Any, skip: set[str]) -> dict[str, Any]:
            return {c.name: getattr(row, c.name) for c in type(row).__table__.columns if c.name not in skip}

        out: dict[str, Any] = {
            "people": sorted((who[i], sorted(cols(r, {"id", "openid"}).items())) for i, r in people.items()),
            "wishes": sorted((label[w.id], sorted(cols(w, {"id", "resident_id"}).items())) for w in wishes),
            "events": sorted((label[e.wish_id], who.get(e.actor_id or 0), sorted(cols(e, {"id", "wish_id", "actor_id"}).items()))
                             for e in s.execute(select(WishEvent).where(WishEvent.wish_id.in_(list(label)))).scalars()),
            "dialogues": sorted((who[d.person_id], d.flow, d.step, d.expires_at)
                                for d in s.execute(select(DialogueState).where(DialogueState.person_id.in_(list(people)))).scalars()),
            "labels": label,
        }
        return out
    return db.run_sync(job, now)


def _readable(reply: str | None, labels: dict[int, str]) -> str | None:
    """A reply with each wish number replaced by whose wish it is and what it says."""
    if reply is None:
        return None
    return re.sub(r"(?<= )(\d+)(?!\d)", lambda m: labels.get(int(m.group(1)), m.group(1)), reply)


async def test_grouped_and_ordinary_paths_write_the_same_rows(db_url: str) -> None:
    clock = FrozenClock(datetime.fromisoformat("2026-03-02T10:00:00+08:00"))
    settings = make_settings(db_url, admin_openids=["aadmin", "badmin"], resident_max_per_day=2)
    now = clock.now()
    grouped, alone = Database(db_url), Database(db_url, batching=False)
    try:
        results, in_batch = {}, {}
        for p, db in (("a", grouped), ("b", alone)):
            raws = await _prepare(db, settings, now, p)
            before = db.grouped
            replies = await _one_batch(db, settings, now, raws)
            in_batch[p] = db.grouped - before
            snap = _snapshot(db, now, p)
            results[p] = (replies, snap)
            retry = raws[-1]
            keys = [parse_inbound(r).dedupe_key for r in raws]
            stored = db.run_sync(lambda u: {k: u.inbound.reply_of(k) for k in keys}, now)
            assert [stored[k] for k in keys[:-1]] == replies[:-1]  # a retry of any of them gets the same answer
            assert retry and replies[-1] == stored[keys[-1]]
        (ra, sa), (rb, sb) = results["a"], results["b"]
        assert [_readable(r, sa["labels"]) for r in ra] == [_readable(r, sb["labels"]) for r in rb]
        for part in ("people", "wishes", "events", "dialogues"):
            assert sa[part] == sb[part], part
        assert in_batch == {"a": FAST, "b": 0}
        # what the batch answered: numbers for the plain ones, the ordinary answers for the rest
        assert sum("心愿已收到" in (r or "") for r in ra) == FAST + 4  # + "two"'s second, mem's, admin's, the retry's
        assert any("很像" in (r or "") for r in ra) and any("您今天已提交" in (r or "") for r in ra)
        priv = next(w for label, w in sa["wishes"] if label.startswith("<priv:"))
        assert dict(priv)["contact_phone"] == "13812345678" and "13812345678" not in dict(priv)["masked"]
    finally:
        grouped.close()
        alone.close()


async def test_a_failing_group_falls_back_to_the_ordinary_path(db_url: str) -> None:
    """A group that raises rolls back alone; its jobs are answered the ordinary way."""
    from bot.services import wish_batch

    settings = make_settings(db_url)
    now = FrozenClock(datetime.fromisoformat("2026-03-02T10:00:00+08:00")).now()
    db = Database(db_url)
    real = wish_batch.submit_many

    def broken(uow: UnitOfWork, items: list[Any], nows: list[datetime]) -> list[Any]:
        real(uow, items, nows)  # writes everything, then fails: none of it may stay
        raise RuntimeError("boom")

    dispatcher = build_dispatcher()
    try:
        raws = [text_xml(f"r{i}", f"许愿 {text}").encode() for i, text in enumerate(PLAIN)]
        jobs = [handle_job(parse_inbound(raw), settings, dispatcher) for raw in raws]
        for job in jobs:
            job.group = broken
        replies = await asyncio.gather(*(db.write(job, now=now) for job in jobs))
        assert all(r.startswith("心愿已收到") for r in replies)
        count = db.run_sync(lambda u: len(u.session.execute(select(Wish.id)).all()), now)
        inbound = db.run_sync(lambda u: len(u.session.execute(select(InboundLog.dedupe_key)).all()), now)
        assert (count, inbound, db.grouped) == (len(PLAIN), len(PLAIN), 0)
    finally:
        db.close()
