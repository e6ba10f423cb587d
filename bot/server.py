"""HTTP edge: `/wechat` (GET verify, POST push), `/healthz`, `/metrics`.

`wechat_callback` reads top to bottom, one line per step: verify → decrypt → parse → dispatch
under the reply budget → render (and encrypt). Only this module sees HTTP requests.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
import weakref
from datetime import datetime
from typing import TYPE_CHECKING, Any, AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError

from bot import messages
from bot.appkeys import CLOCK, DATABASE, DISPATCHER, METRICS, OUTBOX_WAKE, PRESENCE, SETTINGS
from bot.gateway import Duplicate, handle_job
from bot.inbound import Inbound, InboundError, check_signature, check_timestamp, parse_inbound, refuse_dtd, render_text_reply
from bot.logs import bind_request, get_logger, unbind_request
from bot.presence import role_query, special_roles_query
from bot.services import notify
from storage.db import DatabaseClosed

if TYPE_CHECKING:
    from wechatpy.crypto import WeChatCrypto

log = get_logger("microwish.server")
SUCCESS = "success"


def _refuse(request: web.Request, reason: str, status: int) -> web.Response:
    request.app[METRICS].refusals.labels(reason).inc()
    log.warning("callback.refused", reason=reason, status=status, remote=request.remote)
    return web.Response(status=status, text=reason)


def _crypto(app: web.Application) -> "WeChatCrypto | None":
    """The AES envelope in safe mode. wechatpy is imported only then: with the HTTP client and
    payment modules its package pulls in, it is ~8 MB of a plaintext-mode process's memory."""
    settings = app[SETTINGS]
    if not settings.aes_key:
        return None
    from wechatpy.crypto import WeChatCrypto

    return WeChatCrypto(settings.token, settings.aes_key, settings.app_id)


async def wechat_verify(request: web.Request) -> web.Response:
    """GET: answer `echostr` when the signature is valid (plaintext even in safe mode, §1.2)."""
    q = request.query
    settings = request.app[SETTINGS]
    if not check_signature(settings.token, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", "")):
        return _refuse(request, "signature", 403)
    return web.Response(text=q.get("echostr", ""))


def decrypt_body(request: web.Request, body: bytes, now: datetime) -> bytes:
    """The plaintext XML of a push, after every check the mode needs (§1.3–1.4)."""
    settings, q = request.app[SETTINGS], request.query
    if not check_timestamp(q.get("timestamp", ""), now.timestamp(), settings.timestamp_tolerance_seconds):
        raise InboundError("timestamp", 403)
    if not check_signature(settings.token, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", "")):
        raise InboundError("signature", 403)
    refuse_dtd(body)
    if q.get("encrypt_type", "raw") == "aes":
        crypto = request.app[CRYPTO]
        if crypto is None:
            raise InboundError("aes_not_configured", 400)
        try:
            return crypto.decrypt_message(body, q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")).encode("utf-8")
        except Exception as exc:  # wrong key surfaces as struct.error/UnicodeDecodeError (§1.4)
            raise InboundError("msg_signature" if "Signature" in type(exc).__name__ else "decrypt", 403) from None
    if settings.wechat_require_aes:
        raise InboundError("plaintext_refused", 403)
    return body


async def wechat_callback(request: web.Request) -> web.Response:
    app, started = request.app, time.perf_counter()
    now = app[CLOCK].now()  # one reading of the clock for the checks, the window mark and a read-only reply
    try:
        body = await request.read()
        xml = decrypt_body(request, body, now)
        msg = parse_inbound(xml)
    except web.HTTPRequestEntityTooLarge:
        return _refuse(request, "too_large", 413)
    except InboundError as exc:
        return _refuse(request, exc.reason, exc.status)
    read_only = app[DISPATCHER].read_only(msg)
    if read_only is not None:  # the lean path: no log context to bind, nothing written
        reply, outcome = await answer_read_only(app, msg, read_only, now)
    else:
        bound = bind_request(next_request_id(), msg.source, msg.dedupe_key)
        try:
            reply, outcome = await dispatch(app, msg)
        finally:
            unbind_request(bound)
        now = app[CLOCK].now()
    _count(app, msg.event or msg.msg_type, outcome)
    app[METRICS].latency.observe(time.perf_counter() - started)
    if not reply:
        return web.Response(body=SUCCESS_BYTES, headers=TEXT_HEADERS)
    xml_reply = render_text_reply(msg, reply, int(now.timestamp()), fixed=outcome == "read_only")
    if request.query.get("encrypt_type") == "aes":
        xml_reply = app[CRYPTO].encrypt_message(xml_reply, request.query.get("nonce", ""), request.query.get("timestamp"))
    return web.Response(body=xml_reply.encode("utf-8"), headers=XML_HEADERS)


_REQUEST_PREFIX = uuid.uuid4().hex[:6]  # per process: ids stay unique across several `serve` processes
_request_counter = itertools.count(1)


def next_request_id() -> str:
    """A short id for one callback's log lines (uuid4 per request cost 7 % of the 许愿 path's CPU)."""
    return f"{_REQUEST_PREFIX}-{next(_request_counter):x}"


SUCCESS_BYTES = SUCCESS.encode()
TEXT_HEADERS = {"Content-Type": "text/plain; charset=utf-8"}
XML_HEADERS = {"Content-Type": "application/xml; charset=utf-8"}


def _count(app: web.Application, kind: str, outcome: str) -> None:
    """The callbacks counter's labelled child, looked up once per (kind, outcome) and app."""
    children = app[CALLBACK_CHILDREN]
    child = children.get((kind, outcome))
    if child is None:
        child = children[(kind, outcome)] = app[METRICS].callbacks.labels(kind, outcome)
    child.inc()


async def dispatch(app: web.Application, msg: Inbound) -> tuple[str | None, str]:
    """Run the message's job under the reply budget; (reply, outcome for metrics)."""
    settings, db = app[SETTINGS], app[DATABASE]
    now = app[CLOCK].now()
    try:
        future = db.submit(handle_job(msg, settings, app[DISPATCHER], app[PRESENCE], on_outbox=app[OUTBOX_WAKE].set), now=now)
        if not await _within(future, settings.reply_budget_seconds):
            future.add_done_callback(lambda f: _deliver_late(app, msg, f))
            log.warning("callback.over_budget", budget=settings.reply_budget_seconds)
            return None, "late"
        result = future.result()
    except Exception as exc:
        _log_failure(exc)
        return messages.SORRY, "error"
    if isinstance(result, Duplicate):
        return result.reply, "duplicate"
    return result, "ok"


async def _within(future: "asyncio.Future[Any]", seconds: float) -> bool:
    """Wait for `future` at most `seconds`; True when it is done. The future itself is left alone
    (its job still commits, and the reply then goes out through the outbox). Cheaper than
    wait_for(shield(…)): one waiter and one timer, no task."""
    if future.done():
        return True
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def wake(_: Any = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    timer = loop.call_later(seconds, wake)
    future.add_done_callback(wake)
    try:
        await waiter
    finally:
        timer.cancel()
        future.remove_done_callback(wake)
    return future.done()


async def answer_read_only(app: web.Application, msg: Inbound, handler: Any, now: datetime) -> tuple[str | None, str]:
    """帮助 and the like: the role from memory (bot/presence.py; one indexed read only when the
    snapshot of non-residents is missing or stale), no write, no dedupe row."""
    presence = app[PRESENCE]
    presence.touch(msg.source, now)
    refresh = _start_role_refresh(app) if presence.refresh_due() else _RUNNING.get(presence)
    role = presence.known_role(msg.source)
    if role is None and refresh is not None:  # no fresh snapshot yet: wait for the one read under way
        await asyncio.shield(refresh)
        role = presence.known_role(msg.source)
    if role is None:
        try:
            role = await app[DATABASE].read_connection(role_query(msg.source, app[SETTINGS].admin_openids))
        except Exception as exc:
            _log_failure(exc)
            return messages.SORRY, "error"
        presence.remember(msg.source, role)
    return handler(msg, role), "read_only"


_RUNNING: "weakref.WeakKeyDictionary[Any, asyncio.Task[None]]" = weakref.WeakKeyDictionary()  # presence → its refresh


def _start_role_refresh(app: web.Application) -> "asyncio.Task[None]":
    """Read the non-resident openids again, in the background (a message waits for it only when
    there is no fresh snapshot to answer from)."""
    presence = app[PRESENCE]

    async def refresh() -> None:
        try:
            started, special = await app[DATABASE].read_connection(special_roles_query(app[SETTINGS].admin_openids))
        except Exception as exc:
            presence.refresh_failed()
            _log_failure(exc)
            return
        except BaseException:  # cancelled at shutdown
            presence.refresh_failed()
            raise
        presence.apply_snapshot(special, started)

    task = _RUNNING[presence] = asyncio.ensure_future(refresh())
    task.add_done_callback(lambda t: _RUNNING.pop(presence, None) if _RUNNING.get(presence) is t else None)
    return task


def _log_failure(exc: BaseException) -> None:
    """One short line when the database is away (a traceback per callback would stall the loop
    in an outage, and the driver's message may quote SQL parameters); a full traceback for bugs."""
    if isinstance(exc, (DBAPIError, DatabaseClosed)):
        log.error("callback.db_unavailable", error=type(getattr(exc, "orig", None) or exc).__name__)
    else:
        log.exception("callback.failed")


async def flush_presence(app: web.Application) -> AsyncIterator[None]:
    """Cleanup-context step: write buffered window marks every second, and at shutdown."""
    async def loop() -> None:
        while True:
            await asyncio.sleep(1.0)
            if app[PRESENCE].pending():
                try:
                    await app[DATABASE].write(app[PRESENCE].flush, now=app[CLOCK].now())
                except Exception:
                    log.exception("presence.flush_failed")

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    if app[PRESENCE].pending():
        try:
            await app[DATABASE].write(app[PRESENCE].flush, now=app[CLOCK].now())
        except Exception:
            log.exception("presence.flush_failed")


def _deliver_late(app: web.Application, msg: Inbound, fut: "asyncio.Future[Any]") -> None:
    """A reply that missed the deadline goes to the user as a customer-service message."""
    if fut.cancelled() or fut.exception() is not None:
        return
    reply = fut.result()
    if isinstance(reply, Duplicate) or not reply:
        return
    app[METRICS].late_replies.inc()

    def job(uow: Any) -> None:
        person = uow.people.by_openid(msg.source)
        notify.to_person(uow, person, reply, kind="late_reply", dedupe_key=f"late:{msg.dedupe_key}")

    async def write() -> None:
        try:
            await app[DATABASE].write(job, now=app[CLOCK].now())
        except DatabaseClosed:  # after shutdown's last write: one line, not a task's lost traceback
            log.warning("callback.late_reply_dropped", reason="database closed")
        except Exception as exc:
            _log_failure(exc)
        app[OUTBOX_WAKE].set()

    asyncio.ensure_future(write())


async def healthz(request: web.Request) -> web.Response:
    ok = await asyncio.get_running_loop().run_in_executor(None, request.app[DATABASE].ping)
    return web.json_response({"status": "ok" if ok else "unavailable", "db": "ok" if ok else "down"}, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


CRYPTO: "web.AppKey[WeChatCrypto | None]" = web.AppKey("crypto")
CALLBACK_CHILDREN: web.AppKey[dict[tuple[str, str], Any]] = web.AppKey("callback_children", dict)


def add_routes(app: web.Application) -> None:
    app[CRYPTO] = _crypto(app)
    app[CALLBACK_CHILDREN] = {}
    app.router.add_get("/wechat", wechat_verify)
    app.router.add_post("/wechat", wechat_callback)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
