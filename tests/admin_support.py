"""Shared seed data and helpers for the dashboard and ledger tests."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher

from bot.auth import create_admin_user
from bot.privacy import mask
from storage.db import UnitOfWork
from storage.models import Claim, OrgUnit, Outbox, Person, Wish

ROOT, ROOT_PW = "root", "root-password-1"
ALICE, ALICE_PW = "alice", "alice-password-1"  # admin of community A only
PHONE = "13812345678"
RESIDENT_PHONE = "13987654321"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # the CLI test uses the real one


@dataclass
class Seed:
    community_a: int = 0
    community_b: int = 0
    branch_a: int = 0
    member: int = 0
    resident: int = 0
    wishes_a: list[int] = field(default_factory=list)
    wishes_b: list[int] = field(default_factory=list)
    dead_outbox: int = 0


def add_wish(uow: UnitOfWork, seed: Seed, *, community: int, status: str = "submitted", category: str = "other",
             tier: str = "personal", claim_branch: int | None = None, **extra: Any) -> Wish:
    content = f"please help fix the tap, call {PHONE}"
    wish = Wish(resident_id=seed.resident, status=status, tier=tier, category=category, content=content,
                masked=mask(content), contact_phone=PHONE, community_id=community, created_at=uow.now, **extra)
    uow.session.add(wish)
    uow.flush()
    if claim_branch is not None:
        claim = Claim(wish_id=wish.id or 0, member_id=seed.member, branch_id=claim_branch, claimed_at=uow.now,
                      due_at=uow.now + timedelta(days=7))
        uow.session.add(claim)
        uow.flush()
        wish.claim_id, wish.claimer_id, wish.claimed_at = claim.id, seed.member, uow.now
    uow.wishes.note(wish, action="submit", actor=None, actor_role="resident", now=uow.now)
    return wish


def seed_basics(uow: UnitOfWork) -> Seed:
    """Two communities, a branch in A, a member, a resident, one wish in each community, a dead message."""
    seed = Seed()
    a = OrgUnit(kind="community", name="Dongfeng")
    b = OrgUnit(kind="community", name="Xihu")
    uow.session.add_all([a, b])
    uow.flush()
    branch = OrgUnit(kind="branch", name="Dongfeng Branch One", parent_id=a.id)
    uow.session.add(branch)
    uow.flush()
    seed.community_a, seed.community_b, seed.branch_a = a.id or 0, b.id or 0, branch.id or 0
    seed.member = uow.people.add(Person(openid="o_member_x", role="member", name="Li Ming", community_id=a.id,
                                        branch_id=branch.id, created_at=uow.now)).id or 0
    seed.resident = uow.people.add(Person(openid="o_resident_x", name="Wang Fang", phone=RESIDENT_PHONE,
                                          community_id=a.id, created_at=uow.now)).id or 0
    seed.wishes_a.append(add_wish(uow, seed, community=seed.community_a).id or 0)
    seed.wishes_b.append(add_wish(uow, seed, community=seed.community_b).id or 0)
    dead = Outbox(channel="cs", recipient="o_resident_x", kind="notice", payload={"text": "x"}, state="dead",
                  created_at=uow.now, next_attempt_at=uow.now, attempts=8, last_error="45015")
    uow.session.add(dead)
    uow.flush()
    seed.dead_outbox = dead.id or 0
    create_admin_user(uow, username=ROOT, password=ROOT_PW, hasher=FAST_HASHER)
    create_admin_user(uow, username=ALICE, password=ALICE_PW, community="Dongfeng", hasher=FAST_HASHER)
    return seed


def csrf_in(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "no CSRF token on the page"
    return m.group(1)


async def login(client: Any, username: str, password: str) -> Any:
    page = await client.get("/admin/login")
    token = csrf_in(await page.text())
    return await client.post("/admin/login", data={"csrf": token, "username": username, "password": password},
                             allow_redirects=False)


async def page_csrf(client: Any) -> str:
    return csrf_in(await (await client.get("/admin")).text())
