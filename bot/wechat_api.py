"""A small aiohttp client for the WeChat Official Account API (protocol §4, §6.4).

The access token lives in the `access_token` table, shared by every process. A process that
finds it missing or close to expiry takes a short lease (`refreshing_until`, set by a conditional
UPDATE) and fetches a new one through `stable_token`; the others wait for it and read the row.
A token is never fetched per message: only on expiry, or once after 40001/42001/40014.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from yarl import URL

from bot.config import Settings
from bot.logs import get_logger
from storage.db import Database, UnitOfWork
from storage.models import AccessToken

log = get_logger("microwish.wechat_api")

SANDBOX_SECRET = "sandbox-secret"  # the emulator accepts any secret; never a real one
REFRESH_MARGIN = timedelta(minutes=5)  # stable_token hands out the same token until 5 min before expiry
LEASE = timedelta(seconds=30)
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
TRANSIENT_ERRORS = frozenset({-1, 45009, 45011})
WINDOW_ERRORS = frozenset({45015, 45047})
TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)


class WeChatError(Exception):
    """WeChat answered with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str = "") -> None:
        super().__init__(f"{errcode} {errmsg}".strip())
        self.errcode, self.errmsg = errcode, errmsg

    @property
    def is_transient(self) -> bool:
        return self.errcode in TRANSIENT_ERRORS or self.errcode in TOKEN_ERRORS

    @property
    def is_window_closed(self) -> bool:
        return self.errcode in WINDOW_ERRORS


class TransportError(Exception):
    """No usable answer: connection failure, timeout, a 5xx or a body that is not JSON."""


def dumps(body: Any) -> bytes:
    """JSON with raw UTF-8: WeChat refuses `\\u` escapes of non-ASCII text with 40033 (§4)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


JSON_TYPE = "application/json; charset=utf-8"


async def post_json(session: aiohttp.ClientSession, url: str | URL, body: Any, *,
                    params: dict[str, str] | None = None) -> dict[str, Any]:
    """POST a JSON body; the decoded answer, or TransportError."""
    try:
        # A ready payload (it carries the Content-Type) and, from `WeChatAPI.call`, a ready URL:
        # the client's per-request work on the outbox's hot path, kept small.
        async with session.post(url, params=params, data=aiohttp.BytesPayload(dumps(body), content_type=JSON_TYPE),
                                timeout=TIMEOUT) as resp:
            if resp.status >= 500:
                raise TransportError(f"HTTP {resp.status}")
            raw = await resp.read()
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise TransportError(type(exc).__name__) from None
    try:
        answer = json.loads(raw)
    except ValueError:
        raise TransportError(f"not JSON (HTTP {resp.status})") from None
    if not isinstance(answer, dict):
        raise TransportError("not a JSON object")
    return answer


def _check(answer: dict[str, Any]) -> dict[str, Any]:
    code = int(answer.get("errcode", 0) or 0)
    if code != 0:
        raise WeChatError(code, str(answer.get("errmsg", "")))
    return answer


@dataclass
class _Cached:
    token: str | None
    expires_at: datetime | None


class WeChatAPI:
    """The calls the bot makes: custom send, template send, media upload, menu create."""

    def __init__(self, settings: Settings, database: Database, session: aiohttp.ClientSession, *,
                 base: str | None = None) -> None:
        self.settings, self.db, self.session = settings, database, session
        self.base = (base or settings.wechat_api_base).rstrip("/")
        self.app_id = settings.app_id
        secret = settings.wechat_app_secret
        self.secret = secret.get_secret_value() if secret is not None else SANDBOX_SECRET
        self.token_fetches = 0  # for tests and logs: how often this client asked WeChat for a token
        self._memo = _Cached(None, None)  # the shared token as this client last saw it (no read per message)
        self._refreshing = False  # one coroutine of this client reads/refreshes the shared row at a time
        self._urls: dict[tuple[str, str], URL] = {}  # (path, token) → the call's URL, parsed once

    # -- the token --------------------------------------------------------------------------

    async def access_token(self, now: datetime, *, stale: str | None = None) -> str:
        """A valid token from the shared cache; refresh it (one process at a time) when needed.

        `stale` is a token WeChat just refused: it is never returned again.
        """
        memo = self._memo
        if memo.token and memo.token != stale and memo.expires_at and memo.expires_at - REFRESH_MARGIN > now:
            return memo.token
        for _ in range(50):
            if self._refreshing:  # another coroutine of this client is at it: wait for its result, no DB round trip
                await asyncio.sleep(0.1)
                memo = self._memo
                if memo.token and memo.token != stale and memo.expires_at and memo.expires_at - REFRESH_MARGIN > now:
                    return memo.token
                continue
            self._refreshing = True
            try:
                token = await self._shared_token(now, stale)
            finally:
                self._refreshing = False
            if token is not None:
                return token
            await asyncio.sleep(0.1)  # another process is refreshing: read its result
        raise TransportError("access token refresh did not finish")

    async def _shared_token(self, now: datetime, stale: str | None) -> str | None:
        """The shared row's token, refreshed by this process if needed; None while another process refreshes it."""
        cached = await self.db.read(self._read_token, now=now)
        if cached.token and cached.token != stale and cached.expires_at and cached.expires_at - REFRESH_MARGIN > now:
            self._memo = cached
            return cached.token
        taken = await self.db.write(lambda uow: self._take_lease(uow, stale), now=now)
        if isinstance(taken, str):  # another process refreshed it meanwhile
            return taken
        if taken:
            try:
                token, ttl = await self._fetch(force=stale is not None and cached.token == stale)
            except BaseException:
                await self.db.write(self._drop_lease, now=now)
                raise
            await self.db.write(lambda uow: self._store(uow, token, ttl), now=now)
            self._memo = _Cached(token, now + timedelta(seconds=ttl))
            return token
        return None

    def _read_token(self, uow: UnitOfWork) -> _Cached:
        row = uow.session.get(AccessToken, self.app_id)
        return _Cached(row.token, row.expires_at) if row else _Cached(None, None)

    def _take_lease(self, uow: UnitOfWork, stale: str | None) -> bool | str:
        """True: this process refreshes. False: another one is at it. A str: a fresh token."""
        row = uow.session.get(AccessToken, self.app_id)
        if row is None:
            try:
                with uow.session.begin_nested():
                    uow.session.add(AccessToken(app_id=self.app_id))
            except IntegrityError:
                pass  # created by another process meanwhile
        elif row.token and row.token != stale and row.expires_at and row.expires_at - REFRESH_MARGIN > uow.now:
            return row.token
        needs = or_(AccessToken.token.is_(None), AccessToken.expires_at.is_(None),
                    AccessToken.expires_at <= uow.now + REFRESH_MARGIN,
                    *([AccessToken.token == stale] if stale else []))
        result = uow.session.execute(
            update(AccessToken)
            .where(AccessToken.app_id == self.app_id, needs,
                   or_(AccessToken.refreshing_until.is_(None), AccessToken.refreshing_until < uow.now))
            .values(refreshing_until=uow.now + LEASE)
            .execution_options(synchronize_session=False))
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def _drop_lease(self, uow: UnitOfWork) -> None:
        uow.session.execute(update(AccessToken).where(AccessToken.app_id == self.app_id)
                            .values(refreshing_until=None).execution_options(synchronize_session=False))

    def _store(self, uow: UnitOfWork, token: str, ttl: int) -> None:
        uow.session.execute(update(AccessToken).where(AccessToken.app_id == self.app_id)
                            .values(token=token, expires_at=uow.now + timedelta(seconds=ttl), refreshing_until=None)
                            .execution_options(synchronize_session=False))

    async def _fetch(self, *, force: bool) -> tuple[str, int]:
        """POST stable_token (§4.1): the same token until near expiry, unaffected by other tools."""
        body = {"grant_type": "client_credential", "appid": self.app_id, "secret": self.secret, "force_refresh": force}
        answer = await post_json(self.session, f"{self.base}/cgi-bin/stable_token", body)
        self.token_fetches += 1
        if int(answer.get("errcode", 0) or 0) != 0:  # e.g. 40164 IP whitelist, 40125 secret: retry later, never drop
            raise TransportError(f"token refused: {answer.get('errcode')} {answer.get('errmsg', '')}".strip())
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise TransportError("stable_token answered without a token")
        log.info("wechat.token_refreshed", app_id=self.app_id, forced=force)
        return token, int(answer.get("expires_in", 7200))

    # -- calls ----------------------------------------------------------------------------------

    async def call(self, path: str, body: Any, now: datetime) -> dict[str, Any]:
        """POST `cgi-bin/<path>` with the token; on a refused token refresh once and retry once."""
        token = await self.access_token(now)
        answer = await post_json(self.session, self._url(path, token), body)
        if int(answer.get("errcode", 0) or 0) in TOKEN_ERRORS:
            token = await self.access_token(now, stale=token)
            answer = await post_json(self.session, self._url(path, token), body)
        return _check(answer)

    def _url(self, path: str, token: str) -> URL:
        url = self._urls.get((path, token))
        if url is None:
            if len(self._urls) > 64:  # old tokens
                self._urls.clear()
            url = self._urls[(path, token)] = URL(f"{self.base}/cgi-bin/{path}").with_query(access_token=token)
        return url

    async def send_text(self, openid: str, text: str, now: datetime) -> dict[str, Any]:
        return await self.call("message/custom/send", {"touser": openid, "msgtype": "text", "text": {"content": text}}, now)

    async def send_template(self, openid: str, template_id: str, data: dict[str, str], now: datetime, *,
                            client_msg_id: str | None = None, url: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"touser": openid, "template_id": template_id,
                                "data": {k: {"value": v} for k, v in data.items()}}
        if client_msg_id:
            body["client_msg_id"] = client_msg_id
        if url:
            body["url"] = url
        return await self.call("message/template/send", body, now)

    async def create_menu(self, menu: dict[str, Any], now: datetime) -> dict[str, Any]:
        return await self.call("menu/create", menu, now)

    async def get_media(self, media_id: str, now: datetime) -> tuple[bytes, str]:
        """Download temporary media (a voice wish, a photo): (bytes, content type). WeChat keeps it 3 days."""
        token = await self.access_token(now)
        for attempt in range(2):
            try:
                async with self.session.get(f"{self.base}/cgi-bin/media/get", timeout=TIMEOUT,
                                            params={"access_token": token, "media_id": media_id}) as resp:
                    if resp.status >= 500:
                        raise TransportError(f"HTTP {resp.status}")
                    data, kind = await resp.read(), resp.content_type
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise TransportError(type(exc).__name__) from None
            if kind not in ("application/json", "text/plain"):
                return data, kind
            try:
                answer = json.loads(data)
            except ValueError:
                raise TransportError("media/get answered neither media nor JSON") from None
            if attempt == 0 and int(answer.get("errcode", 0) or 0) in TOKEN_ERRORS:
                token = await self.access_token(now, stale=token)
                continue
            _check(answer)
            raise TransportError("media/get answered JSON without an error")
        raise TransportError("media/get refused the token twice")

    async def upload_media(self, filename: str, data: bytes, content_type: str, now: datetime, *,
                           media_type: str = "image") -> str:
        """Upload temporary media; the file name must carry a real extension (§4.6, 40005)."""
        token = await self.access_token(now)
        answer: dict[str, Any] = {}
        for attempt in range(2):
            form = aiohttp.FormData()
            form.add_field("media", data, filename=filename, content_type=content_type)
            try:
                async with self.session.post(f"{self.base}/cgi-bin/media/upload", data=form, timeout=TIMEOUT,
                                             params={"access_token": token, "type": media_type}) as resp:
                    if resp.status >= 500:
                        raise TransportError(f"HTTP {resp.status}")
                    answer = json.loads(await resp.read())
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                raise TransportError(type(exc).__name__) from None
            if attempt == 0 and int(answer.get("errcode", 0) or 0) in TOKEN_ERRORS:
                token = await self.access_token(now, stale=token)
                continue
            break
        return str(_check(answer)["media_id"])
