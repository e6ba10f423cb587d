"""The outbox dispatcher: sends the rows services queued, exactly once as far as WeChat allows.

One pass (`deliver_due`) claims due rows with a lease (PostgreSQL: FOR UPDATE SKIP LOCKED; both:
a conditional UPDATE of `lease_until`, one statement for the whole batch), commits, sends each
over aiohttp (one concurrent lane per recipient), and marks the rows as their answers come in,
many rows per small transaction (`Marks`). A process that dies between send and mark leaves the row leased;
once the lease runs out another pass sends it again (at worst twice, never lost; the row id is
the template's `client_msg_id`, so WeChat drops the repeat of a template message).

Customer-service messages spend the user's window (48 h and 5 messages from the user's own
message, §4.2): the claim counts them on `Person.window_sent`, switches to the kind's template
(`MICROWISH_TEMPLATES`) before WeChat would refuse, and parks the row as "waiting" when there is
none; the user's next message puts waiting rows back in line.
"""

from __future__ import annotations

import asyncio
import random
import string
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, AsyncIterator, Mapping

import aiohttp
from aiohttp import web
from sqlalchemy import and_, or_, select, update

from bot import claim_channel
from bot.appkeys import CLOCK, DATABASE, METRICS, OUTBOX_WAKE, SETTINGS
from bot.config import Settings
from bot.logs import get_logger, user_ref
from bot.metrics import Metrics
from bot.services.notify import ADMIN_CHANNEL, CLAIM_CHANNEL, CS
from bot.wechat_api import TransportError, WeChatAPI, WeChatError
from storage.bulk import among
from storage.db import Database, UnitOfWork
from storage.models import Outbox, Person

log = get_logger("microwish.outbox")

TEMPLATE = "template"
WEBHOOK_CHANNELS = (CLAIM_CHANNEL, ADMIN_CHANNEL)
WINDOW = timedelta(hours=48)
WINDOW_MESSAGES = 5
LEASE = timedelta(minutes=2)
BATCH = 500  # rows per claim; each claim is a handful of statements whatever its size
MARKS_PER_WRITE = 50  # outcomes that are written at once without waiting …
MARKS_WAIT = 0.01  # … else at most this long (s) after an answer before its mark is written
CONNECTIONS = 100  # requests of one pass out at once (a semaphore in the lanes; the connector itself is unbounded)
BACKOFF_BASE = timedelta(seconds=10)
BACKOFF_CAP = timedelta(hours=1)
POLL_SECONDS = 2.0
STOP_SECONDS = 5.0
TEMPLATE_FIELD_CHARS = 20  # template rules since 2023-05-04 (§4.3)


@dataclass(frozen=True)
class Endpoints:
    """Where the bot's outbound calls go: the WeChat API and each robot's webhook URL."""

    api_base: str
    webhooks: Mapping[str, str | None] = field(default_factory=dict)


def endpoints_for(settings: Settings, *, sandbox_url: str | None = None) -> Endpoints:
    """The configured endpoints; in sandbox mode, the emulator mounted in our own server."""
    claim = settings.claim_webhook.get_secret_value() if settings.claim_webhook else None
    admin = settings.admin_webhook.get_secret_value() if settings.admin_webhook else None
    api_base = settings.wechat_api_base
    if settings.sandbox_enabled:
        from bot.sandbox import emulator_urls

        urls = emulator_urls(settings, sandbox_url)
        if api_base == "https://api.weixin.qq.com":
            api_base = urls["api_base"]
        claim = claim or urls[CLAIM_CHANNEL]
        admin = admin or urls[ADMIN_CHANNEL]
    return Endpoints(api_base=api_base, webhooks={CLAIM_CHANNEL: claim, ADMIN_CHANNEL: admin})


# -- templates ----------------------------------------------------------------------------------

class _Blank(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return ""


def fill_template(fields: Mapping[str, str], values: Mapping[str, Any]) -> dict[str, str]:
    """Each field's text with `{placeholders}` filled: one line, at most 20 characters."""
    out = {}
    blank = _Blank({k: "" if v is None else str(v) for k, v in values.items()})
    for name, pattern in fields.items():
        try:
            text = string.Formatter().vformat(str(pattern), (), blank)
        except (ValueError, IndexError):
            text = str(pattern)
        out[name] = " ".join(text.split())[:TEMPLATE_FIELD_CHARS].rstrip()
    return out


@dataclass(frozen=True)
class Window:
    """The part of a person the window accounting reads (loaded for a whole batch at once)."""

    last_inbound_at: datetime | None
    window_sent: int


def window_open(person: Person | Window | None, now: datetime, *, in_flight: int = 0) -> bool:
    """True while the user's last message keeps the customer-service window open and unspent."""
    return (person is not None and person.last_inbound_at is not None
            and now < person.last_inbound_at + WINDOW and person.window_sent + in_flight < WINDOW_MESSAGES)


# -- claiming -------------------------------------------------------------------------------------

@dataclass
class Claimed:
    id: int
    channel: str
    kind: str
    recipient: str | None
    payload: dict[str, Any]
    attempts: int
    route: str  # cs | template | webhook
    url: str | None = None


def rearm_waiting(uow: UnitOfWork) -> int:
    """Waiting rows whose user has written since they were parked go back in line."""
    rows = uow.session.execute(
        select(Outbox.id).join(Person, Person.openid == Outbox.recipient)
        .where(Outbox.state == "waiting", Person.last_inbound_at.is_not(None),
               Person.last_inbound_at > Outbox.next_attempt_at)).scalars().all()
    if rows:
        uow.session.execute(update(Outbox).where(Outbox.id.in_(rows), Outbox.state == "waiting")
                            .values(state="pending", next_attempt_at=uow.now).execution_options(synchronize_session=False))
    return len(rows)


_OUTBOX = Outbox.__table__
_PERSON = Person.__table__


def _windows(uow: UnitOfWork, openids: set[str]) -> dict[str, Window]:
    """Each user's window (last message, messages spent) for a whole batch: one query, not one per row."""
    p = _PERSON
    query = select(p.c.openid, p.c.last_inbound_at, p.c.window_sent).where(among(uow.dialect, p.c.openid, sorted(openids)))
    return {openid: Window(last_inbound_at, window_sent or 0)
            for openid, last_inbound_at, window_sent in uow.session.connection().execute(query)}


def _lease(uow: UnitOfWork, ids: list[int]) -> set[int]:
    """Lease the rows (still pending, lease free) in one UPDATE; the ids this pass took."""
    now, o = uow.now, _OUTBOX
    conn = uow.session.connection()
    free = and_(o.c.state == "pending", or_(o.c.lease_until.is_(None), o.c.lease_until < now))
    if conn.dialect.update_returning:
        stmt = (update(o).where(among(uow.dialect, o.c.id, ids), free)
                .values(lease_until=now + LEASE, attempts=o.c.attempts + 1).returning(o.c.id))
        return set(conn.execute(stmt).scalars())
    taken: set[int] = set()
    for row_id in ids:  # no RETURNING (old SQLite): one conditional UPDATE per row
        took = conn.execute(update(o).where(o.c.id == row_id, free).values(lease_until=now + LEASE, attempts=o.c.attempts + 1))
        if took.rowcount == 1:
            taken.add(row_id)
    return taken


def _claim_job(settings: Settings, endpoints: Endpoints, limit: int,  # type: ignore[no-untyped-def]
               busy: frozenset[str] = frozenset()):
    """Claim up to `limit` due rows: (the rows leased for sending, how many were left for later).

    `busy`: users with rows of this pass still unmarked; their rows wait for the next claim, so
    the window accounting below reads every mark of theirs and their order stays whole.
    """
    def job(uow: UnitOfWork) -> tuple[list[Claimed], int]:
        now = uow.now
        rearm_waiting(uow)
        o, earlier = _OUTBOX, _OUTBOX.alias("earlier")
        retrying_before = (select(earlier.c.id).where(  # keeps one user's messages in order
            earlier.c.recipient == o.c.recipient, earlier.c.id < o.c.id, earlier.c.state == "pending",
            earlier.c.attempts > 0, or_(earlier.c.next_attempt_at > now, earlier.c.lease_until >= now)))
        query = (select(o.c.id, o.c.channel, o.c.kind, o.c.recipient, o.c.payload, o.c.attempts)
                 .where(o.c.state == "pending", o.c.next_attempt_at <= now,
                        or_(o.c.lease_until.is_(None), o.c.lease_until < now),
                        or_(o.c.recipient.is_(None), ~retrying_before.exists()))
                 .order_by(o.c.id).limit(limit))
        if uow.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True, of=o)
        rows = uow.session.connection().execute(query).all()  # Core rows: no ORM identity map per row
        deferred = 0
        if busy:
            kept = [r for r in rows if r[3] not in busy]
            deferred, rows = len(rows) - len(kept), kept
        cs_users = {recipient for _, channel, _, recipient, _, _ in rows
                    if recipient and channel not in WEBHOOK_CHANNELS and channel != TEMPLATE}
        people = _windows(uow, cs_users) if cs_users else {}
        candidates: list[Claimed] = []
        pacers: dict[str, claim_channel.Pacer] = {}
        in_flight: dict[str, int] = {}  # customer-service messages this batch will spend, per user
        for row_id, channel, kind, recipient, payload, attempts in rows:
            item = Claimed(row_id, channel, kind, recipient, payload or {}, attempts + 1, "")
            if channel in WEBHOOK_CHANNELS:
                item.route, item.url = "webhook", endpoints.webhooks.get(channel)
                if not item.url:  # no robot configured for this group: nothing failed, nothing to send
                    _set(uow, row_id, state="skipped", last_error="webhook not configured", lease_until=None)
                    continue
                pacer = pacers.get(item.url)
                if pacer is None:
                    same_robot = tuple(c for c in WEBHOOK_CHANNELS if endpoints.webhooks.get(c) == item.url)
                    pacer = pacers[item.url] = claim_channel.Pacer(uow, same_robot, settings.webhook_per_minute)
                if not pacer.take():
                    _set(uow, row_id, next_attempt_at=pacer.next_slot())
                    continue
            elif channel == TEMPLATE:
                if kind not in settings.templates:
                    _set(uow, row_id, state="dead", last_error=f"no template for kind {kind}", lease_until=None)
                    continue
                item.route = TEMPLATE
            else:
                openid = recipient or ""
                spent = in_flight.get(openid, 0)
                if window_open(people.get(openid), now, in_flight=spent):
                    in_flight[openid] = spent + 1
                    item.route = CS
                elif kind in settings.templates:
                    item.route = TEMPLATE
                else:
                    _set(uow, row_id, state="waiting", next_attempt_at=now, lease_until=None)
                    continue
            candidates.append(item)
        taken = _lease(uow, [c.id for c in candidates]) if candidates else set()
        return [c for c in candidates if c.id in taken], deferred

    return job


def _set(uow: UnitOfWork, row_id: int, **values: Any) -> None:
    uow.session.execute(update(Outbox).where(Outbox.id == row_id).values(**values).execution_options(synchronize_session=False))


# -- marking --------------------------------------------------------------------------------------
#
# What became of each sent row is written by one `Marks` per pass: outcomes queue up while the
# requests go out, and one write job at a time applies everything queued so far with a few
# set-wise UPDATEs (instead of one ORM transaction per row). A row is marked within
# MARKS_WAIT plus one commit of its answer, so a process that dies resends little; `drain` runs
# before the next claim (the window accounting reads the marks) and when the pass is stopped.

SENT, RETRY, DEAD, RELEASE, WAITING = "sent", "retry", "dead", "release", "waiting"


@dataclass
class _Mark:
    what: str  # sent | retry | dead | release | waiting
    item: Claimed
    route: str = ""  # for sent: cs | template | webhook
    error: str | None = None
    retry_at: datetime | None = None


def _outcome(item: Claimed, error: str, *, retry: bool, settings: Settings, now: datetime) -> _Mark:
    if retry and item.attempts < settings.outbox_max_attempts:
        span = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** (item.attempts - 1)))
        delay = span * random.uniform(0.5, 1.0)  # "full jitter": spread the retries of many rows
        return _Mark(RETRY, item, error=error[:500], retry_at=now + delay)
    return _Mark(DEAD, item, error=error[:500])


def _ids(marks: list[_Mark]) -> list[int]:
    return [m.item.id for m in marks]


def _apply_marks(marks: list[_Mark]):  # type: ignore[no-untyped-def]
    """One job for many outcomes: an UPDATE … WHERE id IN (…) per kind of outcome, a few rows each otherwise."""
    def job(uow: UnitOfWork) -> None:
        conn, now, o, p = uow.session.connection(), uow.now, _OUTBOX, _PERSON
        by_channel: dict[str, list[int]] = {}
        spent: dict[str, int] = {}  # counted once it went out, so a crash never leaks a slot
        for m in marks:
            if m.what == SENT:
                channel = TEMPLATE if m.route == TEMPLATE and m.item.channel == CS else m.item.channel
                by_channel.setdefault(channel, []).append(m.item.id)
                if m.route == CS and m.item.recipient:
                    spent[m.item.recipient] = spent.get(m.item.recipient, 0) + 1
        for channel, ids in by_channel.items():
            conn.execute(update(o).where(among(uow.dialect, o.c.id, ids))
                         .values(state="sent", sent_at=now, lease_until=None, last_error=None, channel=channel))
        by_count: dict[int, list[str]] = {}
        for openid, n in spent.items():
            by_count.setdefault(n, []).append(openid)
        for n, openids in by_count.items():
            conn.execute(update(p).where(among(uow.dialect, p.c.openid, sorted(openids))).values(window_sent=p.c.window_sent + n))
        released = _ids([m for m in marks if m.what == RELEASE])
        if released:
            conn.execute(update(o).where(among(uow.dialect, o.c.id, released)).values(lease_until=None, attempts=o.c.attempts - 1))
        waiting = _ids([m for m in marks if m.what == WAITING])
        if waiting:
            conn.execute(update(o).where(among(uow.dialect, o.c.id, waiting))
                         .values(state="waiting", next_attempt_at=now, lease_until=None, last_error="window closed"))
        for m in marks:  # failures: each has its own time and error (rare)
            if m.what == RETRY:
                conn.execute(update(o).where(o.c.id == m.item.id)
                             .values(next_attempt_at=m.retry_at, lease_until=None, last_error=m.error))
            elif m.what == DEAD:
                conn.execute(update(o).where(o.c.id == m.item.id).values(state="dead", lease_until=None, last_error=m.error))

    return job


class Marks:
    """The outcomes of one pass, written in the background as they come (one write job at a time)."""

    def __init__(self, db: Database, now: datetime) -> None:
        self.db, self.now = db, now
        self.queued: list[_Mark] = []
        self.writer: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None
        self.hurry = asyncio.Event()  # set by `drain`: write what is queued now
        self.busy: dict[str, int] = {}  # user → claimed rows not yet durably marked
        self.slots = asyncio.Semaphore(CONNECTIONS)

    def claimed(self, items: list[Claimed]) -> None:
        for item in items:
            if item.recipient:
                self.busy[item.recipient] = self.busy.get(item.recipient, 0) + 1

    def add(self, mark: _Mark) -> None:
        self.queued.append(mark)
        if self.writer is None:
            self.writer = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        try:
            while self.queued:
                if len(self.queued) < MARKS_PER_WRITE and not self.hurry.is_set():
                    with suppress(asyncio.TimeoutError):  # let a few more answers arrive: fewer, fuller transactions
                        await asyncio.wait_for(self.hurry.wait(), MARKS_WAIT)
                marks, self.queued = self.queued, []
                await self.db.write(_apply_marks(marks), now=self.now)
                for m in marks:
                    user = m.item.recipient
                    if user and user in self.busy:
                        self.busy[user] -= 1
                        if not self.busy[user]:
                            del self.busy[user]
        except BaseException as exc:  # e.g. the database went away: the rows stay leased and are resent later
            self.failure = exc
            self.queued = []
        finally:
            self.writer = None

    async def drain(self) -> None:
        """Wait until everything queued is durable; raise what the writes ran into."""
        self.hurry.set()
        try:
            while self.writer is not None:
                await asyncio.shield(self.writer)
        finally:
            self.hurry.clear()
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure


def _close_window(openid: str):  # type: ignore[no-untyped-def]
    def job(uow: UnitOfWork) -> None:
        uow.session.execute(update(Person).where(Person.openid == openid).values(window_sent=WINDOW_MESSAGES)
                            .execution_options(synchronize_session=False))

    return job


# -- sending --------------------------------------------------------------------------------------

class _Waiting(Exception):
    """The user's window is closed and the kind has no template."""


async def _send_template(api: WeChatAPI, item: Claimed, settings: Settings, now: datetime) -> None:
    spec = settings.templates[item.kind]
    data = fill_template(spec.get("fields", {}), item.payload.get("template") or {})
    await api.send_template(item.recipient or "", str(spec["id"]), data, now, client_msg_id=f"mw-outbox-{item.id}",
                            url=spec.get("url"))


async def _send(api: WeChatAPI, session: aiohttp.ClientSession, db: Database, item: Claimed,
                settings: Settings, now: datetime) -> str:
    """Send one claimed row; the route it went by."""
    if item.route == "webhook":
        assert item.url is not None
        await claim_channel.post(session, item.url, item.payload)
        return "webhook"
    if item.route == TEMPLATE:
        await _send_template(api, item, settings, now)
        return TEMPLATE
    try:
        await api.send_text(item.recipient or "", str(item.payload.get("text", "")), now)
        return CS
    except WeChatError as exc:
        if not exc.is_window_closed:
            raise
    # WeChat says the window is closed (45015/45047): believe it, then fall back (§4.2).
    await db.write(_close_window(item.recipient or ""), now=now)
    if item.kind not in settings.templates:
        raise _Waiting()
    await _send_template(api, item, settings, now)
    return TEMPLATE


async def _deliver_one(api: WeChatAPI, session: aiohttp.ClientSession, db: Database, item: Claimed,
                       settings: Settings, now: datetime, metrics: Metrics | None, marks: Marks) -> bool:
    channel = item.channel
    try:
        route = await _send(api, session, db, item, settings, now)
    except _Waiting:
        marks.add(_Mark(WAITING, item))
        log.info("outbox.waiting", id=item.id, user=user_ref(item.recipient))
        return False
    except (WeChatError, TransportError) as exc:
        transient = (claim_channel.is_transient(exc) if item.route == "webhook"
                     else isinstance(exc, TransportError) or exc.is_transient)  # type: ignore[union-attr]
        error = f"{type(exc).__name__}: {exc}"
        mark = _outcome(item, error, retry=transient, settings=settings, now=now)
        marks.add(mark)
        if metrics is not None:
            metrics.outbox_failed.labels(channel, str(getattr(exc, "errcode", "transport"))).inc()
            if mark.what == DEAD:
                metrics.outbox_dead.labels(channel).inc()
        log.warning("outbox.failed", id=item.id, channel=channel, error=error, outcome=mark.what, attempt=item.attempts)
        return False
    marks.add(_Mark(SENT, item, route))
    if metrics is not None:
        metrics.outbox_sent.labels(TEMPLATE if route == TEMPLATE else channel).inc()
    log.info("outbox.sent", id=item.id, channel=channel, route=route, kind=item.kind)
    return True


async def _deliver_lane(api: WeChatAPI, session: aiohttp.ClientSession, db: Database, items: list[Claimed],
                        settings: Settings, now: datetime, metrics: Metrics | None, marks: Marks) -> int:
    """One recipient's rows in order; after a failure to a user, that user's later rows wait their turn.

    Lanes run concurrently; their outcomes go to the pass's `Marks`.
    """
    delivered = 0
    for i, item in enumerate(items):
        async with marks.slots:  # at most CONNECTIONS requests out at once (cheaper than the connector's queue)
            ok = await _deliver_one(api, session, db, item, settings, now, metrics, marks)
        if ok:
            delivered += 1
        elif item.recipient:
            for later in items[i + 1:]:
                marks.add(_Mark(RELEASE, later))
            break
    return delivered


async def deliver_due(database: Database, settings: Settings, now: datetime, *, metrics: Metrics | None = None,
                      session: aiohttp.ClientSession | None = None, endpoints: Endpoints | None = None,
                      batch_size: int = BATCH) -> int:
    """Send every outbox row due at `now`; the number delivered (used by `tick`, `serve`, tests).

    The next batch is claimed while the current one is being sent (at most two in flight); a
    user with rows of this pass not yet marked is left out of that claim (`Marks.busy`).
    """
    own_session = session is None
    session = session or aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    endpoints = endpoints or endpoints_for(settings)
    api = WeChatAPI(settings, database, session, base=endpoints.api_base)
    delivered = 0
    marks = Marks(database, now)
    sending: list[asyncio.Future[list[int]]] = []

    async def claim() -> tuple[list[Claimed], int]:
        return await database.write(_claim_job(settings, endpoints, batch_size, frozenset(marks.busy)), now=now)

    def send(batch: list[Claimed]) -> asyncio.Future[list[int]]:
        marks.claimed(batch)
        groups: dict[str, list[Claimed]] = {}
        for item in batch:  # one lane per user (order kept) and per robot channel (pacing kept)
            groups.setdefault(item.recipient or f"channel:{item.channel}", []).append(item)
        return asyncio.gather(*(_deliver_lane(api, session, database, items, settings, now, metrics, marks)
                                for items in groups.values()))

    try:
        for _ in range(1000):
            batch, deferred = await claim()
            if batch:
                sending.append(send(batch))
                if len(sending) > 1:  # the next claim overlaps the newest batch's sends
                    delivered += sum(await sending.pop(0))
                continue
            if not sending and not deferred:
                break
            while sending:  # nothing more to claim now: let what is out finish and be marked, then look again
                delivered += sum(await sending.pop(0))
            await marks.drain()
        while sending:
            delivered += sum(await sending.pop(0))
        await marks.drain()
    except BaseException:
        # Stopped or failed mid-pass: what did go out is still marked (bounded wait), the rest
        # stays leased and is sent again once the lease runs out; nothing is lost.
        for pending in sending:
            pending.cancel()
        with suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.gather(*sending, return_exceptions=True), STOP_SECONDS)
        with suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(marks.drain(), STOP_SECONDS)
        raise
    finally:
        if own_session:
            await session.close()
    if metrics is not None:
        counts = await database.read(lambda uow: uow.outbox.count_by_state(), now=now)
        metrics.outbox_pending.set(counts.get("pending", 0) + counts.get("waiting", 0))
    return delivered


async def run_outbox_sender(app: web.Application) -> AsyncIterator[None]:
    """Cleanup-context step for `serve`: a background task that keeps the outbox empty."""
    session = aiohttp.ClientSession()
    stop = asyncio.Event()
    task = asyncio.create_task(_sender_loop(app, session, stop), name="outbox-sender")
    yield
    stop.set()  # let the current pass finish its marks; a pass cut short is resent after its lease
    app[OUTBOX_WAKE].set()
    with suppress(asyncio.TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(task), STOP_SECONDS)
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    await session.close()


async def _sender_loop(app: web.Application, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
    settings, wake = app[SETTINGS], app[OUTBOX_WAKE]
    while not stop.is_set():
        try:
            sandbox_url = None
            if settings.sandbox_enabled:
                from bot.sandbox import own_url

                sandbox_url = own_url(app)
            await deliver_due(app[DATABASE], settings, app[CLOCK].now(), metrics=app[METRICS], session=session,
                              endpoints=endpoints_for(settings, sandbox_url=sandbox_url))
        except Exception:  # keep the sender alive; the rows stay in the outbox
            log.exception("outbox.pass_failed")
        if stop.is_set():
            return
        wake.clear()
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(wake.wait(), POLL_SECONDS)
