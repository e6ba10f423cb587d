"""An emulator of the WeChat API endpoints the bot calls and of the WeCom group-robot webhook.

It enforces the rules that shape the bot (protocol §4–5): tokens from `token`/`stable_token`
(a token refused with 40001 once replaced or revoked), the customer-service window opened by the
user's own messages (48 h, 5 messages → 45015 / 45047), template fields (≤ 20 characters, one
line → 47003), `\\u` escapes of non-ASCII text (40033), menu limits, and 20 posts a minute per robot (45009).
Every request is recorded; `fail_next` makes the next calls of a path fail (tests, demos).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from bot.clock import Clock, SystemClock

WINDOW = timedelta(hours=48)
WINDOW_MESSAGES = 5
TOKEN_TTL = 7200


@dataclass
class Recorded:
    """One request the emulator answered."""

    seq: int
    path: str  # e.g. "message/custom/send", "webhook/send"
    query: dict[str, str]
    body: Any
    at: datetime
    answer: Any
    status: int = 200

    @property
    def ok(self) -> bool:
        return self.status == 200 and isinstance(self.answer, dict) and int(self.answer.get("errcode", 0) or 0) == 0


@dataclass
class Failure:
    errcode: int | None = None
    status: int | None = None
    delay: float = 0.0
    to: str | None = None  # only a call for this recipient (`touser`) takes it


@dataclass
class EmulatorState:
    """Everything the emulator knows: issued tokens, users' windows, robots' rates, the record."""

    clock: Clock = field(default_factory=SystemClock)
    webhook_per_minute: int = 20
    requests: list[Recorded] = field(default_factory=list)
    tokens: dict[str, datetime] = field(default_factory=dict)  # valid token → expiry
    stable: str | None = None
    windows: dict[str, tuple[datetime, int]] = field(default_factory=dict)  # openid → (opened, used)
    robot_posts: dict[str, deque[datetime]] = field(default_factory=lambda: defaultdict(deque))
    failures: dict[str, deque[Failure]] = field(default_factory=lambda: defaultdict(deque))
    base_url: str = ""  # set by whoever serves the app (tests, the sandbox)
    in_flight: int = 0
    menu: Any = None
    media: dict[str, bytes] = field(default_factory=dict)
    _seq: Any = field(default_factory=lambda: itertools.count(1))

    # -- steering -------------------------------------------------------------------------------

    def fail_next(self, path: str, *, errcode: int | None = None, status: int | None = None,
                  delay: float = 0.0, times: int = 1, to: str | None = None) -> None:
        """The next `times` calls of `path` (for recipient `to`, if given) fail: an errcode, an
        HTTP status, or a slow answer."""
        for _ in range(times):
            self.failures[_norm(path)].append(Failure(errcode, status, delay, to))

    def _take_failure(self, path: str, raw: bytes) -> Failure | None:
        """The first queued failure of `path` that applies to this call, removed from the queue."""
        queued = self.failures.get(path)
        if not queued:
            return None
        touser = None
        if any(f.to is not None for f in queued):
            try:
                touser = json.loads(raw or b"{}").get("touser")
            except (ValueError, AttributeError):
                touser = None
        for f in queued:
            if f.to is None or f.to == touser:
                queued.remove(f)
                return f
        return None

    def user_sent(self, openid: str, at: datetime | None = None) -> None:
        """The user wrote to the account: a new window of 48 hours and 5 messages (§4.2)."""
        self.windows[openid] = (at or self.clock.now(), 0)

    def revoke_tokens(self) -> None:
        """Every issued token becomes stale (as if another tool fetched a new one)."""
        self.tokens.clear()
        self.stable = None

    # -- reading the record --------------------------------------------------------------------

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == _norm(path)]

    def delivered(self, path: str) -> list[Recorded]:
        return [r for r in self.calls(path) if r.ok]

    def texts_to(self, openid: str) -> list[str]:
        return [r.body["text"]["content"] for r in self.delivered("message/custom/send") if r.body.get("touser") == openid]

    def templates_to(self, openid: str) -> list[dict[str, Any]]:
        return [r.body for r in self.delivered("message/template/send") if r.body.get("touser") == openid]

    def webhook_posts(self, key: str | None = None) -> list[dict[str, Any]]:
        return [r.body for r in self.delivered("webhook/send") if key is None or r.query.get("key") == key]

    def since(self, seq: int) -> list[Recorded]:
        return [r for r in self.requests if r.seq > seq]

    # -- rules -----------------------------------------------------------------------------------

    def issue_token(self, *, reuse: bool) -> str:
        now = self.clock.now()
        if reuse and self.stable and self.tokens.get(self.stable, now) - timedelta(minutes=5) > now:
            return self.stable
        token = "emu-" + hashlib.sha1(f"{next(self._seq)}:{now.isoformat()}".encode()).hexdigest()[:24]
        self.tokens[token] = now + timedelta(seconds=TOKEN_TTL)
        self.stable = token
        return token

    def token_error(self, query: Any) -> dict[str, Any] | None:
        token = query.get("access_token")
        if not token:
            return {"errcode": 41001, "errmsg": "access_token missing"}
        expiry = self.tokens.get(token)
        if expiry is None:
            return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
        if expiry <= self.clock.now():
            return {"errcode": 42001, "errmsg": "access_token expired"}
        return None


def _norm(path: str) -> str:
    path = path.strip("/")
    return path.removeprefix("cgi-bin/")


def _json(raw: bytes) -> tuple[Any, dict[str, Any] | None]:
    if b"\\u" in raw:
        return None, {"errcode": 40033, "errmsg": "invalid charset. please check your request, if include \\uxxxx will create fail!"}
    try:
        return json.loads(raw.decode("utf-8")), None
    except (ValueError, UnicodeDecodeError):
        return None, {"errcode": 47001, "errmsg": "data format error"}


def _template_error(body: dict[str, Any]) -> dict[str, Any] | None:
    if not body.get("touser") or not body.get("template_id"):
        return {"errcode": 47003, "errmsg": "argument invalid! touser/template_id"}
    for name, value in (body.get("data") or {}).items():
        text = str((value or {}).get("value", ""))
        if len(text) > 20 or "\n" in text or "\r" in text:
            return {"errcode": 47003, "errmsg": f"argument invalid! data.{name}.value"}
    return None


def _menu_error(body: dict[str, Any]) -> dict[str, Any] | None:
    buttons = body.get("button") or []
    if not 1 <= len(buttons) <= 3:
        return {"errcode": 40017, "errmsg": "invalid button size"}
    for button in buttons:
        if len(str(button.get("name", "")).encode()) > 16:
            return {"errcode": 40018, "errmsg": "invalid button name size"}
        subs = button.get("sub_button") or []
        if len(subs) > 5:
            return {"errcode": 40023, "errmsg": "invalid sub button size"}
        for sub in subs:
            if len(str(sub.get("name", "")).encode()) > 60:
                return {"errcode": 40018, "errmsg": "invalid sub button name size"}
            if sub.get("type") == "click" and len(str(sub.get("key", "")).encode()) > 128:
                return {"errcode": 40019, "errmsg": "invalid button key size"}
    return None


def create_emulator_app(state: EmulatorState | None = None, *, clock: Clock | None = None,
                        webhook_per_minute: int = 20) -> web.Application:
    """The emulator as an aiohttp app (mount it, or serve it on its own port in tests)."""
    state = state or EmulatorState(clock=clock or SystemClock(), webhook_per_minute=webhook_per_minute)
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[EMULATOR] = state

    async def handle(request: web.Request) -> web.StreamResponse:
        path = _norm(request.match_info["path"])
        raw = await request.read()
        failure = state._take_failure(path, raw)
        state.in_flight += 1
        try:
            if failure and failure.delay:  # the request has arrived; the answer is slow
                await asyncio.sleep(failure.delay)
        finally:
            state.in_flight -= 1
        body: Any = None
        answer: Any = None
        status = 200
        if request.method == "POST" and path != "media/upload":
            body, answer = _json(raw)
        if failure and failure.status:
            status, answer = failure.status, {"errcode": -1, "errmsg": "emulated HTTP error"}
        elif failure and failure.errcode is not None:
            answer = {"errcode": failure.errcode, "errmsg": "emulated failure"}
        elif path == "media/upload":
            answer, body = await _upload(state, request, raw)
        elif path == "media/get" and request.query.get("media_id", "") in state.media:
            state.requests.append(Recorded(next(state._seq), path, dict(request.query), None, state.clock.now(), {}, 200))
            return web.Response(body=state.media[request.query["media_id"]], content_type="audio/amr")
        elif path == "media/get":
            answer = {"errcode": 40007, "errmsg": "invalid media_id"}
        elif answer is None:
            answer = _answer(state, path, request.query, body)
        state.requests.append(Recorded(next(state._seq), path, dict(request.query), body, state.clock.now(), answer, status))
        if status != 200:
            return web.Response(status=status, text="emulated server error")
        return web.json_response(answer, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    app.router.add_route("*", "/cgi-bin/{path:.+}", handle)
    return app


def _answer(state: EmulatorState, path: str, query: Any, body: Any) -> dict[str, Any]:
    now = state.clock.now()
    if path == "token":
        if query.get("grant_type") != "client_credential" or not query.get("appid") or not query.get("secret"):
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        return {"access_token": state.issue_token(reuse=False), "expires_in": TOKEN_TTL}
    if path == "stable_token":
        if not isinstance(body, dict) or not body.get("appid") or not body.get("secret"):
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        return {"access_token": state.issue_token(reuse=not body.get("force_refresh")), "expires_in": TOKEN_TTL}
    if path == "webhook/send":
        return _webhook(state, query, body, now)
    refused = state.token_error(query)
    if refused:
        return refused
    if not isinstance(body, dict):
        return {"errcode": 47001, "errmsg": "data format error"}
    if path == "message/custom/send":
        openid = str(body.get("touser", ""))
        opened, used = state.windows.get(openid, (None, 0))
        if opened is None or now >= opened + WINDOW:
            return {"errcode": 45015, "errmsg": "response out of time limit or subscription is canceled"}
        if used >= WINDOW_MESSAGES:
            return {"errcode": 45047, "errmsg": "out of response count limit"}
        state.windows[openid] = (opened, used + 1)
        return {"errcode": 0, "errmsg": "ok"}
    if path == "message/template/send":
        return _template_error(body) or {"errcode": 0, "errmsg": "ok", "msgid": next(state._seq)}
    if path == "menu/create":
        error = _menu_error(body)
        if error is None:
            state.menu = body
        return error or {"errcode": 0, "errmsg": "ok"}
    return {"errcode": 48001, "errmsg": "api unauthorized (not emulated)"}


def _webhook(state: EmulatorState, query: Any, body: Any, now: datetime) -> dict[str, Any]:
    key = query.get("key")
    if not key:
        return {"errcode": 93000, "errmsg": "invalid webhook url"}
    posts = state.robot_posts[key]
    while posts and posts[0] <= now - timedelta(minutes=1):
        posts.popleft()
    if len(posts) >= state.webhook_per_minute:
        return {"errcode": 45009, "errmsg": "api freq out of limit"}
    kind = body.get("msgtype") if isinstance(body, dict) else None
    if kind == "markdown" and len(str(body["markdown"].get("content", "")).encode()) > 4096:
        return {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}
    if kind == "text" and len(str(body["text"].get("content", "")).encode()) > 2048:
        return {"errcode": 40058, "errmsg": "text.content exceed max length 2048"}
    if kind == "image":
        try:
            data = base64.b64decode(body["image"]["base64"])
        except (KeyError, ValueError):
            return {"errcode": 40009, "errmsg": "invalid image"}
        if hashlib.md5(data).hexdigest() != body["image"].get("md5"):
            return {"errcode": 301019, "errmsg": "media md5 mismatch"}
    elif kind not in ("markdown", "text", "news"):
        return {"errcode": 40008, "errmsg": "invalid message type"}
    posts.append(now)
    return {"errcode": 0, "errmsg": "ok"}


async def _upload(state: EmulatorState, request: web.Request, raw: bytes) -> tuple[dict[str, Any], Any]:
    refused = state.token_error(request.query)
    if refused:
        return refused, None
    ctype = request.headers.get("Content-Type", "")
    if "multipart/form-data" not in ctype:
        return {"errcode": 40005, "errmsg": "invalid file type"}, None
    boundary = ctype.split("boundary=", 1)[-1].strip('"')
    for part in raw.split(b"--" + boundary.encode()):
        head, _, data = part.partition(b"\r\n\r\n")
        if b'name="media"' in head:
            filename = head.split(b'filename="', 1)[-1].split(b'"', 1)[0].decode("utf-8", "replace") if b"filename=" in head else ""
            if "." not in filename:
                return {"errcode": 40005, "errmsg": "invalid file type"}, {"filename": filename}
            media_id = "emu-media-" + hashlib.md5(data).hexdigest()[:16]
            state.media[media_id] = data.removesuffix(b"\r\n")
            return ({"type": request.query.get("type", "image"), "media_id": media_id,
                     "created_at": int(state.clock.now().timestamp())}, {"filename": filename})
    return {"errcode": 41005, "errmsg": "media data missing"}, None


EMULATOR = web.AppKey("emulator", EmulatorState)
