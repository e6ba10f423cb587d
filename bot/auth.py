"""Dashboard accounts: argon2 password hashes, signed session cookies, CSRF tokens, lockout.

The session cookie is signed (itsdangerous), HttpOnly and SameSite=Lax. It always carries a
CSRF token, even before login, so the login form is protected too; logging in rotates it.
Every form posts the token back and `check_csrf` compares it in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from bot.config import Settings
from storage.db import UnitOfWork
from storage.models import AdminUser, OrgUnit, Person

COOKIE_NAME = "mw_admin"
SESSION_MAX_AGE = 12 * 3600
DEFAULT_HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
_dummy_hash: str | None = None


class AccountError(ValueError):
    """A create-user request that cannot be honoured (name taken, unknown community, bad password)."""


def hash_password(password: str, hasher: PasswordHasher = DEFAULT_HASHER) -> str:
    return hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Check against the hash's own parameters (stored in it), whatever hasher made it."""
    try:
        return DEFAULT_HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Session:
    csrf: str
    admin_id: int | None = None


class SessionSigner:
    """Turns a `Session` into a cookie value and back; a bad or stale signature is no session."""

    def __init__(self, secret: str) -> None:
        self._s = URLSafeTimedSerializer(secret, salt="microwish-admin-session")

    def dumps(self, session: Session) -> str:
        return self._s.dumps({"c": session.csrf, "a": session.admin_id})

    def loads(self, value: str | None) -> Session | None:
        if not value:
            return None
        try:
            data: Any = self._s.loads(value, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        admin_id = data.get("a")
        return Session(csrf=data["c"], admin_id=admin_id if isinstance(admin_id, int) else None)


def session_secret(settings: Settings) -> str:
    """The configured secret, or a random one (sessions then end when the process restarts)."""
    if settings.admin_session_secret is not None:
        return settings.admin_session_secret.get_secret_value()
    return secrets.token_urlsafe(32)


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def check_csrf(session: Session | None, submitted: str | None) -> bool:
    return bool(session and submitted and hmac.compare_digest(session.csrf.encode(), submitted.encode()))


def create_admin_user(uow: UnitOfWork, *, username: str, password: str, community: str | None = None,
                      hasher: PasswordHasher = DEFAULT_HASHER) -> AdminUser:
    """A login plus the admin Person (no openid) that stands for it on wish timelines."""
    username = username.strip()
    if not username or len(username) > 64:
        raise AccountError("the user name must be 1–64 characters")
    if len(password) < 8:
        raise AccountError("the password must have at least 8 characters")
    if uow.session.execute(select(AdminUser.id).where(AdminUser.username == username)).first():
        raise AccountError(f"there is already a dashboard user named {username!r}")
    community_id = None
    if community:
        unit = uow.org.by_name("community", community)
        if unit is None:
            known = ", ".join(u.name for u in uow.org.all_of_kind("community")) or "none yet"
            raise AccountError(f"no community named {community!r} (known: {known})")
        community_id = unit.id
    person = uow.people.add(Person(openid=None, role="admin", name=username, community_id=community_id, created_at=uow.now))
    user = AdminUser(username=username, password_hash=hash_password(password, hasher), community_id=community_id,
                     person_id=person.id or 0, created_at=uow.now)
    uow.session.add(user)
    uow.flush()
    return user


@dataclass(frozen=True)
class LoginResult:
    admin_id: int | None
    locked: bool = False


def attempt_login(uow: UnitOfWork, *, username: str, password: str, settings: Settings) -> LoginResult:
    """Check a password; count failures and lock the account for a while after too many."""
    user = uow.session.execute(select(AdminUser).where(AdminUser.username == username.strip())).scalar_one_or_none()
    if user is None:
        global _dummy_hash
        _dummy_hash = _dummy_hash or hash_password("microwish-timing-equaliser")
        verify_password(_dummy_hash, password)  # the same work as a real check: names do not leak by timing
        return LoginResult(None)
    if user.locked_until is not None and user.locked_until > uow.now:
        return LoginResult(None, locked=True)
    if not verify_password(user.password_hash, password):
        user.failed_attempts += 1
        locked = user.failed_attempts >= settings.admin_max_failures
        if locked:
            user.locked_until = uow.now + timedelta(minutes=settings.admin_lock_minutes)
            user.failed_attempts = 0
        uow.flush()
        return LoginResult(None, locked=locked)
    user.failed_attempts = 0
    user.locked_until = None
    uow.flush()
    return LoginResult(user.id)


@dataclass(frozen=True)
class AdminView:
    """Who is looking at the dashboard, and what they may see."""

    id: int
    username: str
    person_id: int
    community_id: int | None
    community_name: str | None

    @property
    def is_global(self) -> bool:
        return self.community_id is None


def load_admin(uow: UnitOfWork, admin_id: int) -> AdminView | None:
    user = uow.session.get(AdminUser, admin_id)
    if user is None:
        return None
    unit = uow.session.get(OrgUnit, user.community_id) if user.community_id else None
    return AdminView(user.id or 0, user.username, user.person_id, user.community_id, unit.name if unit else None)
