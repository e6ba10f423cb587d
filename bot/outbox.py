"""The outbox dispatcher: sends the rows services queued, exactly once as far as WeChat allows.

One pass (`deliver_due`) claims due rows with a lease (PostgreSQL: FOR UPDATE SKIP LOCKED; both:
a conditional UPDATE of `lease_until`), commits, sends each over aiohttp, and marks each row in
its own small transaction. A process that dies between send and mark leaves the row leased;
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
from sqlalchemy import or_, select, update
from sqlalchemy.orm import aliased

from bot import claim_channel
from bot.appkeys import CLOCK, DATABASE, METRICS, OUTBOX_WAKE, SETTINGS
from bot.config import Settings
from bot.logs import get_logger, user_ref
from bot.metrics import Metrics
from bot.services.notify import ADMIN_CHANNEL, CLAIM_CHANNEL, CS
from bot.wechat_api import TransportError, WeChatAPI, WeChatError
from storage.db import Database, UnitOfWork
from storage.models import Outbox, Person

log = get_logger("microwish.outbox")

TEMPLATE = "template"
WEBHOOK_CHANNELS = (CLAIM_CHANNEL, ADMIN_CHANNEL)
WINDOW = timedelta(hours=48)
WINDOW_MESSAGES = 5
LEASE = timedelta(minutes=2)
BATCH = 50
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


def window_open(person: Person | None, now: datetime, *, in_flight: int = 0) -> bool:
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


def _claim_job(settings: Settings, endpoints: Endpoints, limit: int):  # type: ignore[no-untyped-def]
    def job(uow: UnitOfWork) -> list[Claimed]:
        now = uow.now
        rearm_waiting(uow)
        earlier = aliased(Outbox)
        retrying_before = (select(earlier.id).where(  # keeps one user's messages in order
            earlier.recipient == Outbox.recipient, earlier.id < Outbox.id, earlier.state == "pending",
            earlier.attempts > 0, or_(earlier.next_attempt_at > now, earlier.lease_until >= now)))
        query = (select(Outbox).where(Outbox.state == "pending", Outbox.next_attempt_at <= now,
                                      or_(Outbox.lease_until.is_(None), Outbox.lease_until < now),
                                      or_(Outbox.recipient.is_(None), ~retrying_before.exists()))
                 .order_by(Outbox.id).limit(limit))
        if uow.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True, of=Outbox)
        claimed: list[Claimed] = []
        pacers: dict[str, claim_channel.Pacer] = {}
        in_flight: dict[str, int] = {}  # customer-service messages this batch will spend, per user
        for row in uow.session.execute(query).scalars().all():
            assert row.id is not None
            item = Claimed(row.id, row.channel, row.kind, row.recipient, dict(row.payload or {}), row.attempts + 1, "")
            if row.channel in WEBHOOK_CHANNELS:
                item.route, item.url = "webhook", endpoints.webhooks.get(row.channel)
                if not item.url:  # no robot configured for this group: nothing failed, nothing to send
                    _set(uow, row.id, state="skipped", last_error="webhook not configured", lease_until=None)
                    continue
                pacer = pacers.get(item.url)
                if pacer is None:
                    same_robot = tuple(c for c in WEBHOOK_CHANNELS if endpoints.webhooks.get(c) == item.url)
                    pacer = pacers[item.url] = claim_channel.Pacer(uow, same_robot, settings.webhook_per_minute)
                if not pacer.take():
                    _set(uow, row.id, next_attempt_at=pacer.next_slot())
                    continue
            elif row.channel == TEMPLATE:
                if row.kind not in settings.templates:
                    _set(uow, row.id, state="dead", last_error=f"no template for kind {row.kind}", lease_until=None)
                    continue
                item.route = TEMPLATE
            else:
                openid = row.recipient or ""
                if window_open(uow.people.by_openid(openid), now, in_flight=in_flight.get(openid, 0)):
                    in_flight[openid] = in_flight.get(openid, 0) + 1
                    item.route = CS
                elif row.kind in settings.templates:
                    item.route = TEMPLATE
                else:
                    _set(uow, row.id, state="waiting", next_attempt_at=now, lease_until=None)
                    continue
            took = uow.session.execute(
                update(Outbox).where(Outbox.id == row.id, Outbox.state == "pending",
                                     or_(Outbox.lease_until.is_(None), Outbox.lease_until < now))
                .values(lease_until=now + LEASE, attempts=Outbox.attempts + 1)
                .execution_options(synchronize_session=False))
            if took.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(item)
        uow.flush()
        return claimed

    return job


def _set(uow: UnitOfWork, row_id: int, **values: Any) -> None:
    uow.session.execute(update(Outbox).where(Outbox.id == row_id).values(**values).execution_options(synchronize_session=False))


# -- marking --------------------------------------------------------------------------------------

def _mark_sent(item: Claimed, route: str):  # type: ignore[no-untyped-def]
    def job(uow: UnitOfWork) -> None:
        if route == CS and item.recipient:  # counted once it went out, so a crash never leaks a slot
            uow.session.execute(update(Person).where(Person.openid == item.recipient)
                                .values(window_sent=Person.window_sent + 1).execution_options(synchronize_session=False))
        _set(uow, item.id, state="sent", sent_at=uow.now, lease_until=None, last_error=None,
             channel=TEMPLATE if route == TEMPLATE and item.channel == CS else item.channel)

    return job


def _mark_failed(item: Claimed, error: str, *, retry: bool, settings: Settings):  # type: ignore[no-untyped-def]
    def job(uow: UnitOfWork) -> str:
        if retry and item.attempts < settings.outbox_max_attempts:
            span = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** (item.attempts - 1)))
            delay = span * random.uniform(0.5, 1.0)  # "full jitter": spread the retries of many rows
            _set(uow, item.id, next_attempt_at=uow.now + delay, lease_until=None, last_error=error[:500])
            return "retry"
        _set(uow, item.id, state="dead", lease_until=None, last_error=error[:500])
        return "dead"

    return job


def _release(item: Claimed):  # type: ignore[no-untyped-def]
    def job(uow: UnitOfWork) -> None:
        _set(uow, item.id, lease_until=None, attempts=Outbox.attempts - 1)

    return job


def _mark_waiting(item: Claimed):  # type: ignore[no-untyped-def]
    def job(uow: UnitOfWork) -> None:
        _set(uow, item.id, state="waiting", next_attempt_at=uow.now, lease_until=None, last_error="window closed")

    return job


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
                       settings: Settings, now: datetime, metrics: Metrics | None) -> bool:
    channel = item.channel
    try:
        route = await _send(api, session, db, item, settings, now)
    except _Waiting:
        await db.write(_mark_waiting(item), now=now)
        log.info("outbox.waiting", id=item.id, user=user_ref(item.recipient))
        return False
    except (WeChatError, TransportError) as exc:
        transient = (claim_channel.is_transient(exc) if item.route == "webhook"
                     else isinstance(exc, TransportError) or exc.is_transient)  # type: ignore[union-attr]
        error = f"{type(exc).__name__}: {exc}"
        outcome = await db.write(_mark_failed(item, error, retry=transient, settings=settings), now=now)
        if metrics is not None:
            metrics.outbox_failed.labels(channel, str(getattr(exc, "errcode", "transport"))).inc()
            if outcome == "dead":
                metrics.outbox_dead.labels(channel).inc()
        log.warning("outbox.failed", id=item.id, channel=channel, error=error, outcome=outcome, attempt=item.attempts)
        return False
    await db.write(_mark_sent(item, route), now=now)
    if metrics is not None:
        metrics.outbox_sent.labels(TEMPLATE if route == TEMPLATE else channel).inc()
    log.info("outbox.sent", id=item.id, channel=channel, route=route, kind=item.kind)
    return True


async def _deliver_lane(api: WeChatAPI, session: aiohttp.ClientSession, db: Database, items: list[Claimed],
                        settings: Settings, now: datetime, metrics: Metrics | None) -> int:
    """One recipient's rows in order; after a failure to a user, that user's later rows wait their turn.

    Lanes run concurrently, and their marks are write jobs that the group commit batches together.
    """
    delivered = 0
    for i, item in enumerate(items):
        if await _deliver_one(api, session, db, item, settings, now, metrics):
            delivered += 1
        elif item.recipient:
            for later in items[i + 1:]:
                await db.write(_release(later), now=now)
            break
    return delivered


async def deliver_due(database: Database, settings: Settings, now: datetime, *, metrics: Metrics | None = None,
                      session: aiohttp.ClientSession | None = None, endpoints: Endpoints | None = None) -> int:
    """Send every outbox row due at `now`; the number delivered (used by `tick`, `serve`, tests)."""
    own_session = session is None
    session = session or aiohttp.ClientSession()
    endpoints = endpoints or endpoints_for(settings)
    api = WeChatAPI(settings, database, session, base=endpoints.api_base)
    delivered = 0
    try:
        for _ in range(1000):
            batch = await database.write(_claim_job(settings, endpoints, BATCH), now=now)
            if not batch:
                break
            groups: dict[str, list[Claimed]] = {}
            for item in batch:  # one lane per user (order kept) and per robot channel (pacing kept)
                groups.setdefault(item.recipient or f"channel:{item.channel}", []).append(item)
            lanes = [_deliver_lane(api, session, database, items, settings, now, metrics) for items in groups.values()]
            delivered += sum(await asyncio.gather(*lanes))
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
