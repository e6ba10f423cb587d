"""The router: message type / event / command word / dialogue → one handler, with a role filter.

Handlers are small synchronous functions `(msg, ctx) -> reply | None` run inside the callback's
unit of work (off the event loop). Domain refusals raised by services are turned into replies
here, by one table, after the handler's savepoint has rolled back what it wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable

from bot import messages
from bot.config import Settings
from bot.inbound import Inbound
from bot.lifecycle import IllegalTransition, NotAllowed, Role
from bot.messages import ALIASES, Keyword
from storage.db import UnitOfWork
from storage.models import Person
from storage.repositories import WishChanged, WishNotFound


@dataclass
class Context:
    uow: UnitOfWork
    user: Person
    now: datetime
    settings: Settings
    keyword: Keyword | None = None
    args: str = ""

    @property
    def role(self) -> Role:
        return Role(self.user.role)


Handler = Callable[[Inbound, Context], "str | None"]
ReadOnlyHandler = Callable[[Inbound, Role], str]


class DomainError(Exception):
    """A refusal with a ready reply for the user (bad number, limits, not yours, …)."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


class Refused(DomainError):
    pass


_CODE_RE = re.compile(r"^[#＃Ww]?(\d{1,12})$")
_PREFIX_OK_RE = re.compile(r"^[#＃Ww]?\d")
_ALL_WORDS: dict[str, Keyword] = {k.value: k for k in Keyword} | ALIASES
_BY_LENGTH = sorted(_ALL_WORDS, key=len, reverse=True)
_FREE_TEXT_PREFIX = {Keyword.WISH}


def parse_command(text: str) -> tuple[Keyword | None, str]:
    """(keyword, the rest) for a command text, or (None, text)."""
    text = text.strip()
    if not text:
        return None, ""
    parts = text.split(None, 1)
    head, rest = parts[0], (parts[1] if len(parts) > 1 else "")
    kw = _ALL_WORDS.get(head) or _ALL_WORDS.get(head.lower())
    if kw is not None:
        return kw, rest.strip()
    for word in _BY_LENGTH:  # a command glued to its argument: "进度12", "许愿修水管"
        if not word.startswith("/") and text.startswith(word) and len(text) > len(word):
            kw = _ALL_WORDS[word]
            rest = text[len(word):].strip()
            if kw in _FREE_TEXT_PREFIX or _PREFIX_OK_RE.match(rest):
                return kw, rest
    return None, text


def parse_code(token: str) -> int:
    """A wish number written `12`, `#12` or `W12`."""
    m = _CODE_RE.match(token.strip())
    if not m:
        raise Refused(messages.BAD_NUMBER.format(text=token.strip()[:20]))
    return int(m.group(1))


def split_args(args: str, n: int) -> list[str]:
    """Split into at most n parts on white space (the last keeps its spaces)."""
    return args.split(None, n - 1) if args else []


@dataclass
class _Route:
    handler: Handler
    roles: frozenset[Role] | None
    batch: "Callable[..., list[object]] | None" = None  # the set-wise path (storage.db.BatchedJob), if any


@dataclass
class Router:
    """Routes of one area (residents, members, admins). Registration order is priority."""

    name: str
    commands: dict[Keyword, _Route] = field(default_factory=dict)
    events: dict[tuple[str, str | None], _Route] = field(default_factory=dict)
    types: dict[str, _Route] = field(default_factory=dict)
    dialogues: dict[str, Handler] = field(default_factory=dict)
    matchers: list[tuple[Callable[[Inbound, Context], bool], _Route]] = field(default_factory=list)
    readonly: dict[Keyword, ReadOnlyHandler] = field(default_factory=dict)

    def command(self, *keywords: Keyword, roles: Iterable[Role] | None = None,
                batch: Callable[..., list[object]] | None = None) -> Callable[[Handler], Handler]:
        """`batch`: a group function doing the common case of this command for many messages at once
        (see storage.db.BatchedJob); whatever it leaves comes to `fn` as usual."""
        def deco(fn: Handler) -> Handler:
            for kw in keywords:
                self.commands[kw] = _Route(fn, frozenset(roles) if roles else None, batch)
            return fn
        return deco

    def read_only(self, *keywords: Keyword) -> Callable[[ReadOnlyHandler], ReadOnlyHandler]:
        """A command answered from the sender's role alone: no write, no dedupe row, no ORM."""
        def deco(fn: ReadOnlyHandler) -> ReadOnlyHandler:
            for kw in keywords:
                self.readonly[kw] = fn
            return fn
        return deco

    def event(self, event: str, key: str | None = None, roles: Iterable[Role] | None = None) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.events[(event, key)] = _Route(fn, frozenset(roles) if roles else None)
            return fn
        return deco

    def message(self, msg_type: str, roles: Iterable[Role] | None = None) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.types[msg_type] = _Route(fn, frozenset(roles) if roles else None)
            return fn
        return deco

    def dialogue(self, flow: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.dialogues[flow] = fn
            return fn
        return deco

    def when(self, predicate: Callable[[Inbound, Context], bool], roles: Iterable[Role] | None = None) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.matchers.append((predicate, _Route(fn, frozenset(roles) if roles else None)))
            return fn
        return deco


ROLE_REFUSALS = {Role.MEMBER: messages.NEED_MEMBER, Role.ADMIN: messages.NEED_ADMIN}


def refusal_for(exc: Exception, code: str = "") -> str | None:
    """The one table from domain refusals to replies."""
    if isinstance(exc, DomainError):
        return exc.reply
    if isinstance(exc, WishNotFound):
        return messages.UNKNOWN_NUMBER.format(code=exc.wish_id)
    code = str(getattr(exc, "wish_id", None) or code)
    if isinstance(exc, IllegalTransition):
        return messages.ILLEGAL_TRANSITION.format(code=code, status=messages.STATUS_NAMES[exc.status.value],
                                                  action=messages.ACTION_NAMES.get(exc.action.value, exc.action.value))
    if isinstance(exc, NotAllowed):
        return messages.NOT_ALLOWED.format(code=code, action=messages.ACTION_NAMES.get(exc.action.value, exc.action.value))
    if isinstance(exc, WishChanged):
        return messages.WISH_CHANGED.format(code=exc.wish_id)
    return None


class Dispatcher:
    """All routers in priority order plus a fallback; `handle` picks one route."""

    def __init__(self, routers: list[Router], fallback: Handler) -> None:
        self.routers = routers
        self.fallback = fallback

    @staticmethod
    def _text_command(msg: Inbound) -> tuple[Keyword | None, str]:
        return parse_command(msg.content) if msg.msg_type == "text" else (None, "")

    def read_only(self, msg: Inbound) -> ReadOnlyHandler | None:
        """The read-only handler for a text command, if it has one (checked before any DB work)."""
        keyword, _ = self._text_command(msg)
        if keyword is None:
            return None
        return next((r.readonly[keyword] for r in self.routers if keyword in r.readonly), None)

    def batch_for(self, msg: Inbound) -> tuple[Callable[..., list[object]], str] | None:
        """(group function, the command's argument) when the text command has a set-wise path."""
        keyword, args = self._text_command(msg)
        if keyword is None:
            return None
        route = next((r.commands[keyword] for r in self.routers if keyword in r.commands), None)
        return (route.batch, args) if route is not None and route.batch is not None else None

    def _allowed(self, route: _Route, ctx: Context) -> str | None:
        if route.roles is None or ctx.role in route.roles:
            return None
        needed = Role.ADMIN if Role.ADMIN in route.roles and Role.MEMBER not in route.roles else Role.MEMBER
        return ROLE_REFUSALS[needed]

    def resolve(self, msg: Inbound, ctx: Context) -> Handler | str:
        """The handler for `msg`, or a refusal text."""
        if msg.msg_type == "text":
            keyword, args = parse_command(msg.content)
            lapsed = ctx.uow.dialogues.expired(ctx.user.id or 0, ctx.now)
            state = ctx.uow.dialogues.active(ctx.user.id or 0, ctx.now)  # deletes a lapsed one
            if state is not None and keyword not in _DIALOGUE_BREAKERS:
                for r in self.routers:
                    if state.flow in r.dialogues:
                        return r.dialogues[state.flow]
            if lapsed and keyword is None:  # an answer to a dialogue that timed out: say so, once
                return messages.DLG_EXPIRED
            if keyword is not None:
                ctx.keyword, ctx.args = keyword, args
                for r in self.routers:
                    route = r.commands.get(keyword)
                    if route is not None:
                        return self._allowed(route, ctx) or route.handler
        elif msg.msg_type == "event":
            for r in self.routers:
                route = r.events.get((msg.event, msg.event_key)) or r.events.get((msg.event, None))
                if route is not None:
                    return self._allowed(route, ctx) or route.handler
        else:
            lapsed = ctx.uow.dialogues.expired(ctx.user.id or 0, ctx.now)
            state = ctx.uow.dialogues.active(ctx.user.id or 0, ctx.now)
            if state is not None and msg.msg_type in ("location", "voice"):
                for r in self.routers:
                    if state.flow in r.dialogues:
                        return r.dialogues[state.flow]
            if lapsed and msg.msg_type == "location":
                return messages.DLG_EXPIRED
            for r in self.routers:
                route = r.types.get(msg.msg_type)
                if route is not None:
                    return self._allowed(route, ctx) or route.handler
        for r in self.routers:
            for predicate, route in r.matchers:
                if predicate(msg, ctx):
                    return self._allowed(route, ctx) or route.handler
        return self.fallback


# Commands that always take effect, even in the middle of a dialogue.
_DIALOGUE_BREAKERS = frozenset({Keyword.HELP})
