"""`许愿 <内容>` for many residents at once: the common case in a few statements for the whole batch.

The ordinary path (handlers.residents.wish → dialogue.submit_or_confirm → wishes.submit_wish)
stays the reference. This group function does exactly what that path does for a resident who
is not in a dialogue, whose message is new and whose wish passes the content check and the
limits and repeats none of their open wishes; every other message comes back `FALLBACK` before
anything is written for it, and the ordinary path answers it (a refusal, the "is this your wish
N?" question, a retry's stored reply). tests/integration/test_wish_batch.py compares the rows
both paths write, column by column.

Why: one ORM unit of work per message costs ~10 ms of CPU here (a dozen statements, each
through the ORM); the batch reads and writes all of its wishes with about ten Core statements.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import bindparam, func, insert, select

from bot import privacy
from bot.categories import suggest_category
from bot.lifecycle import OPEN_STATUSES, WishStatus
from bot.presence import write_marks
from bot.routing import DomainError
from bot.services.dialogue import submitted_reply
from bot.services.wishes import check_content, is_similar, local_day_start
from storage.bulk import Bulk, Unnest, among, bind
from storage.db import FALLBACK, UnitOfWork
from storage.models import DialogueState, InboundLog, Person, Wish, WishEvent

if TYPE_CHECKING:
    from bot.gateway import BatchItem

P, W, E, D, I = (m.__table__ for m in (Person, Wish, WishEvent, DialogueState, InboundLog))  # type: ignore[attr-defined]
_OPEN = [s.value for s in OPEN_STATUSES]
_SUBMITTED = WishStatus.SUBMITTED.value
_RESIDENT = "resident"


class _Who(NamedTuple):
    id: int
    openid: str
    role: str
    community_id: int | None


def _insert(table: Any, *names: str) -> Bulk:
    return Bulk(insert(table).values({n: bindparam(n) for n in names}))


_PERSON_COLS = ("openid", "role", "skills", "subscribed", "created_at", "last_inbound_at", "window_sent", "link_failures")
_WISH_COLS = ("resident_id", "status", "version", "tier", "category", "content", "masked", "private_details", "contact_phone",
              "community_id", "source", "concerns_minor", "public", "created_at", "cost_pending")
_EVENT_COLS = ("wish_id", "at", "actor_id", "actor_role", "action", "to_status")
_INBOUND_COLS = ("dedupe_key", "received_at", "msg_type", "reply")
# PostgreSQL: one statement per table whatever the batch's size (see storage.bulk.Unnest).
_PG_PERSON = Unnest(P, _PERSON_COLS, "ON CONFLICT (openid) DO NOTHING RETURNING id, openid, role, community_id")
_PG_WISH = Unnest(W, _WISH_COLS, "RETURNING id, resident_id, created_at")  # the first part of _write_pg's statement


_NEW_PERSON, _NEW_WISH, _NEW_EVENT, _NEW_INBOUND = (_insert(t, *cols) for t, cols in (
    (P, _PERSON_COLS), (W, _WISH_COLS), (E, _EVENT_COLS), (I, _INBOUND_COLS)))


class GroupRaced(RuntimeError):
    """Another process wrote one of our dedupe keys meanwhile: the whole group goes the ordinary way."""


# PostgreSQL: the window marks, wishes, their timeline events and the dedupe rows with their
# replies as one statement (data-modifying CTEs): one round trip and one planning per batch
# instead of four. Foreign keys are checked at the statement's end, when the wishes exist.
_CODE = "\x01"  # stands for the wish's number in the reply's text until PostgreSQL knows it


@functools.lru_cache(maxsize=4)  # per dialect (one per engine)
def _pg_write(dialect: Any) -> tuple[str, str]:
    """The statement, and the receipt's text with `_CODE` where the number goes."""
    template = submitted_reply(_CODE)  # type: ignore[arg-type]
    if template.replace(_CODE, "7") != submitted_reply(7):  # the catalogue formats the number some other way
        raise ValueError("the receipt's text does not take the number as plain text")
    wish_sql, _ = _PG_WISH._prepare(dialect)
    sql = (f"WITH w AS ({wish_sql}),\n"
           " u AS (UPDATE person SET last_inbound_at = v.at, window_sent = 0, subscribed = true\n"
           "   FROM unnest(%s::INTEGER[], %s::TIMESTAMP WITH TIME ZONE[]) AS v(pid, at) WHERE person.id = v.pid),\n"
           " e AS (INSERT INTO wish_event (wish_id, at, actor_id, actor_role, action, to_status)\n"
           "   SELECT id, created_at, resident_id, %s, %s, %s FROM w),\n"
           " i AS (INSERT INTO inbound_log (dedupe_key, received_at, msg_type, reply)\n"
           "   SELECT v.dedupe_key, v.at, v.msg_type, replace(%s, chr(1), w.id::text)\n"
           "   FROM unnest(%s::VARCHAR[], %s::TIMESTAMP WITH TIME ZONE[], %s::VARCHAR[], %s::INTEGER[])"
           " AS v(dedupe_key, at, msg_type, rid) JOIN w ON w.resident_id = v.rid\n"
           "   ON CONFLICT (dedupe_key) DO NOTHING RETURNING 1)\n"
           "SELECT id, resident_id, (SELECT count(*) FROM i) FROM w")
    return sql, template


def _write_pg(conn: Any, old: list[dict[str, Any]], wishes: list[dict[str, Any]], msgs: list[Any], nows: list[datetime]) -> list[int]:
    """The batch's writes on PostgreSQL; the wishes' numbers in `wishes`' order."""
    sql, template = _pg_write(conn.dialect)
    _, processors = _PG_WISH._prepare(conn.dialect)
    params = [[proc(row[n]) if proc else row[n] for row in wishes] for n, proc in zip(_PG_WISH.names, processors)]
    params += [[r["pid"] for r in old], [r["at"] for r in old], _RESIDENT, "submit", _SUBMITTED, template,
               [m.dedupe_key for m in msgs], nows, [m.msg_type for m in msgs], [w["resident_id"] for w in wishes]]
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    if len(rows) != len(wishes) or any(n != len(wishes) for _, _, n in rows):
        raise GroupRaced("a dedupe key was taken by another process")
    code_of = {rid: code for code, rid, _ in rows}  # a sender has one wish in the group
    return [code_of[w["resident_id"]] for w in wishes]


class _Known(NamedTuple):
    """What the batch's decisions need to know about its senders and messages."""
    people: dict[str, _Who]
    busy: set[int]  # person ids in a dialogue
    opens: dict[int, list[str]]  # resident id → contents of their open wishes
    today: dict[int, int]  # resident id → wishes made since the local day's start
    handled: set[str]  # dedupe keys already answered


# SQLite: all five reads as one statement returning one row of JSON arrays. Every call into
# SQLite (each prepare and each row stepped) lets go of the GIL, and the writer then queues for it
# behind the event loop; five statements and a row per person cost a wait each.
_SENDERS = "SELECT id FROM person WHERE openid IN (SELECT value FROM json_each(:openids))"
_READ_SQLITE = f"""SELECT
 (SELECT json_group_array(json_array(id, openid, role, community_id)) FROM person
   WHERE openid IN (SELECT value FROM json_each(:openids))),
 (SELECT json_group_array(person_id) FROM dialogue_state WHERE person_id IN ({_SENDERS})),
 (SELECT json_group_array(json_array(resident_id, content)) FROM wish
   WHERE resident_id IN ({_SENDERS}) AND status IN (SELECT value FROM json_each(:open))),
 (SELECT json_group_array(json_array(resident_id, n)) FROM
   (SELECT resident_id, count(*) AS n FROM wish WHERE resident_id IN ({_SENDERS}) AND created_at >= :day GROUP BY resident_id)),
 (SELECT json_group_array(dedupe_key) FROM inbound_log WHERE dedupe_key IN (SELECT value FROM json_each(:keys)))"""
_OPEN_JSON = json.dumps(_OPEN)


def _read_sqlite(conn: Any, openids: list[str], keys: list[str], day: datetime) -> _Known:
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        row = cursor.execute(_READ_SQLITE, {"openids": json.dumps(openids), "keys": json.dumps(keys), "open": _OPEN_JSON,
                                            "day": bind(W.c.created_at, conn.dialect, day)}).fetchone()
    finally:
        cursor.close()
    return _known(row, decode=True)


def _known(row: Any, *, decode: bool) -> _Known:
    """The one row of JSON arrays both one-statement reads return (SQLite's as text, psycopg's parsed)."""
    people_rows, busy_ids, open_rows, today_rows, handled_keys = (json.loads(v) for v in row) if decode else row
    opens: dict[int, list[str]] = {}
    for rid, text in open_rows:
        opens.setdefault(rid, []).append(text)
    return _Known({r[1]: _Who(*r) for r in people_rows}, set(busy_ids), opens, dict(today_rows), set(handled_keys))


# PostgreSQL: the same five reads as one statement (one round trip, one planning): every round
# trip is a wait for the writer and a wake-up for PostgreSQL, per batch.
_READ_PG = """WITH s AS (SELECT id, openid, role, community_id FROM person WHERE openid = ANY(%(openids)s::VARCHAR[]))
SELECT
 (SELECT coalesce(json_agg(json_build_array(id, openid, role, community_id)), '[]') FROM s),
 (SELECT coalesce(json_agg(person_id), '[]') FROM dialogue_state WHERE person_id IN (SELECT id FROM s)),
 (SELECT coalesce(json_agg(json_build_array(resident_id, content)), '[]') FROM wish
   WHERE resident_id IN (SELECT id FROM s) AND status = ANY(%(open)s::VARCHAR[])),
 (SELECT coalesce(json_agg(json_build_array(resident_id, n)), '[]') FROM
   (SELECT resident_id, count(*) AS n FROM wish WHERE resident_id IN (SELECT id FROM s) AND created_at >= %(day)s
    GROUP BY resident_id) AS t),
 (SELECT coalesce(json_agg(dedupe_key), '[]') FROM inbound_log WHERE dedupe_key = ANY(%(keys)s::VARCHAR[]))"""


def _read_pg(conn: Any, openids: list[str], keys: list[str], day: datetime) -> _Known:
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(_READ_PG, {"openids": openids, "keys": keys, "open": _OPEN, "day": day})
        row = cursor.fetchone()
    finally:
        cursor.close()
    return _known(row, decode=False)


def _read_core(conn: Any, openids: list[str], keys: list[str], day: datetime) -> _Known:
    """Any other backend: the same reads as five Core statements (the reference the others are tested against)."""
    dialect = conn.dialect.name
    people = {r.openid: _Who(*r) for r in conn.execute(
        select(P.c.id, P.c.openid, P.c.role, P.c.community_id).where(among(dialect, P.c.openid, openids)))}
    ids = [r.id for r in people.values()]
    busy: set[int] = set()
    opens: dict[int, list[str]] = {}
    today: dict[int, int] = {}
    if ids:
        busy = set(conn.execute(select(D.c.person_id).where(among(dialect, D.c.person_id, ids))).scalars())
        for rid, text in conn.execute(select(W.c.resident_id, W.c.content).where(among(dialect, W.c.resident_id, ids), W.c.status.in_(_OPEN))):
            opens.setdefault(rid, []).append(text)
        today = dict(conn.execute(select(W.c.resident_id, func.count()).where(among(dialect, W.c.resident_id, ids), W.c.created_at >= day)
                                  .group_by(W.c.resident_id)).all())
    handled = set(conn.execute(select(I.c.dedupe_key).where(among(dialect, I.c.dedupe_key, keys))).scalars())
    return _Known(people, busy, opens, today, handled)


def submit_many(uow: UnitOfWork, items: list["BatchItem"], nows: list[datetime]) -> list[Any]:
    """Per item: the receipt text, or FALLBACK."""
    results: list[Any] = [FALLBACK] * len(items)
    presence = items[0].presence
    if presence is not None and presence.pending():  # buffered window marks ride along, as on every write job
        presence.flush(uow)
    day = local_day_start(nows[0], items[0].settings)
    tomorrow = local_day_start(day + timedelta(hours=26), items[0].settings)  # 23- and 25-hour days too
    content: dict[int, str] = {}
    for i, it in enumerate(items):
        if it.msg.source in it.settings.admin_openids or not day <= nows[i] < tomorrow:
            continue
        try:
            content[i] = check_content(it.args, it.settings)
        except DomainError:
            continue
    if not content:
        return results
    conn = uow.session.connection()
    dialect = conn.dialect.name

    # -- read everything the decisions need, for all senders at once --------------------------
    openids = list({items[i].msg.source for i in content})
    keys = [items[i].msg.dedupe_key for i in content]
    read = {"sqlite": _read_sqlite, "postgresql": _read_pg}.get(dialect, _read_core)
    people, busy, opens, today, handled = read(conn, openids, keys, day)

    # -- decide: only the plain case goes on --------------------------------------------------
    chosen: list[tuple[int, privacy.PrivateSplit]] = []
    for i, text in content.items():
        it = items[i]
        person = people.get(it.msg.source)
        if it.msg.dedupe_key in handled:
            continue
        if person is not None:
            if person.role != _RESIDENT or person.id in busy:
                continue
            mine = opens.get(person.id, [])
            if len(mine) >= it.settings.resident_max_open or today.get(person.id, 0) >= it.settings.resident_max_per_day:
                continue
        else:
            mine = []
        split = privacy.split_private(text)
        if any(is_similar(split.text, other, it.settings.similar_threshold) for other in mine):
            continue
        chosen.append((i, split))
    if not chosen:
        return results

    # -- write: new residents, window marks, wishes, timeline events, dedupe rows with replies --
    lite = dialect == "sqlite"  # the writer holds SQLite's write lock: nobody can have raced us
    new = [i for i, _ in chosen if items[i].msg.source not in people]
    if new:
        # In openid order: two processes inserting overlapping new residents then wait on each other
        # in the same order instead of deadlocking (PostgreSQL's unique-key waits).
        rows = sorted(({"openid": items[i].msg.source, "role": _RESIDENT, "skills": "", "subscribed": True, "created_at": nows[i],
                        "last_inbound_at": nows[i], "window_sent": 0, "link_failures": 0} for i in new), key=lambda r: r["openid"])
        if lite:
            first = _NEW_PERSON.run(conn, rows) - len(rows) + 1
            people.update((r["openid"], _Who(first + k, r["openid"], _RESIDENT, None)) for k, r in enumerate(rows))
        else:
            for r in _PG_PERSON.run(conn, rows):
                people[r[1]] = _Who(*r)
            chosen = [(i, s) for i, s in chosen if items[i].msg.source in people]  # created elsewhere meanwhile: ordinary path
    created = set(new)
    old = sorted(({"pid": people[items[i].msg.source].id, "at": nows[i]} for i, _ in chosen if i not in created),
                 key=lambda r: r["pid"])  # row locks in id order, the same in every process
    wishes = []
    for i, split in chosen:
        person = people[items[i].msg.source]
        wishes.append({
            "resident_id": person.id, "status": _SUBMITTED, "version": 0, "tier": "personal",
            "category": suggest_category(split.text), "content": split.text, "masked": privacy.mask(split.text),
            "private_details": split.details, "contact_phone": split.phones[0] if split.phones else None,
            "community_id": person.community_id, "source": "text", "concerns_minor": False, "public": True,
            "created_at": nows[i], "cost_pending": False,  # every other column stays NULL, as on the ordinary path
        })
    if lite:
        if old:  # the window marks of residents seen before: presence's one statement, as its flush writes them
            write_marks(conn, {items[i].msg.source: nows[i] for i, _ in chosen if i not in created})
        first = _NEW_WISH.run(conn, wishes) - len(wishes) + 1
        codes = list(range(first, first + len(wishes)))
        events = [{"wish_id": code, "at": nows[i], "actor_id": w["resident_id"], "actor_role": _RESIDENT, "action": "submit",
                   "to_status": _SUBMITTED} for code, (i, _), w in zip(codes, chosen, wishes)]
        _NEW_EVENT.run(conn, events)
        replies = {i: submitted_reply(code) for code, (i, _) in zip(codes, chosen)}
        _NEW_INBOUND.run(conn, [{"dedupe_key": items[i].msg.dedupe_key, "received_at": nows[i], "msg_type": items[i].msg.msg_type,
                                 "reply": replies[i]} for i, _ in chosen])
    else:
        codes = _write_pg(conn, old, wishes, [items[i].msg for i, _ in chosen], [nows[i] for i, _ in chosen])
        replies = {i: submitted_reply(code) for code, (i, _) in zip(codes, chosen)}
    for i, reply in replies.items():
        results[i] = reply
    if presence is not None:
        senders = [items[i].msg.source for i in replies]
        uow.after_commit(lambda: [presence.remember(o, _RESIDENT) for o in senders])
    return results
