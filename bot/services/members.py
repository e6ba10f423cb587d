"""Party members: the organisation tree, invite codes, binding and skills (issue 4).

The tree is street → community → grid, with Party branches hanging under a grid (or a
community when no grid is given). Names are free text; `OrgUnit` rows are made on first use.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select, update

from bot import messages
from bot.config import Settings
from bot.lifecycle import Role
from bot.routing import Refused
from storage.db import UnitOfWork
from storage.models import InviteCode, OrgUnit, Person

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: codes are read aloud and typed
CODE_LENGTH = 8
NAME_MAX = 20
_TAG_SPLIT_RE = re.compile(r"[\s,;/" + messages.TAG_SEPARATORS + "]+")


@dataclass
class OrgPath:
    """Where a member sits: branch plus optional community and grid."""

    branch: OrgUnit
    community: OrgUnit | None = None
    grid: OrgUnit | None = None


@dataclass
class MemberRow:
    """One member to import (already validated)."""

    name: str
    branch: str
    phone: str | None = None
    community: str | None = None
    grid: str | None = None
    skills: list[str] = field(default_factory=list)
    line: int = 0  # where it was in the file, for the report


def split_tags(text: str) -> list[str]:
    """Skill tags from free text (spaces or commas, half- or full-width, between them), duplicates dropped."""
    seen: list[str] = []
    for tag in _TAG_SPLIT_RE.split(text.strip()):
        if tag and tag not in seen:
            seen.append(tag[:16])
    return seen


def ensure_org_path(uow: UnitOfWork, *, branch: str, community: str | None = None, grid: str | None = None,
                    street: str | None = None) -> OrgPath:
    """The OrgUnit rows for a branch and where it sits, created on first use."""
    street_unit = uow.org.ensure("street", street) if street else None
    community_unit = uow.org.ensure("community", community, street_unit) if community else None
    grid_unit = uow.org.ensure("grid", grid, community_unit) if grid else None
    branch_unit = uow.org.ensure("branch", branch, grid_unit or community_unit)
    return OrgPath(branch=branch_unit, community=community_unit, grid=grid_unit)


def new_code(uow: UnitOfWork) -> str:
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if uow.session.get(InviteCode, code) is None:
            return code


def issue_invites(uow: UnitOfWork, *, branch: str, count: int, settings: Settings) -> list[str]:
    """`count` single-use codes for a branch, valid for settings.invite_valid_days."""
    path = ensure_org_path(uow, branch=branch)
    codes = []
    for _ in range(count):
        code = new_code(uow)
        uow.session.add(InviteCode(code=code, branch_id=path.branch.id or 0, created_at=uow.now,
                                   expires_at=uow.now + timedelta(days=settings.invite_valid_days)))
        codes.append(code)
    uow.flush()
    return codes


def phones_of_members(uow: UnitOfWork, phones: list[str]) -> set[str]:
    """Which of these phones already belong to a bound member (they must not be imported twice)."""
    if not phones:
        return set()
    found = uow.session.execute(select(Person.phone).where(Person.role == Role.MEMBER.value, Person.phone.in_(phones)))
    return {p for (p,) in found}


def import_members(uow: UnitOfWork, *, rows: list[MemberRow], settings: Settings) -> list[tuple[MemberRow, str]]:
    """A personal invite code per member, carrying the name, place and skills into the binding."""
    out = []
    for row in rows:
        path = ensure_org_path(uow, branch=row.branch, community=row.community, grid=row.grid)
        code = new_code(uow)
        uow.session.add(InviteCode(
            code=code, branch_id=path.branch.id or 0, name=row.name, phone=row.phone,
            community_id=path.community.id if path.community else None, grid_id=path.grid.id if path.grid else None,
            skills=" ".join(row.skills), created_at=uow.now,
            expires_at=uow.now + timedelta(days=settings.invite_valid_days),
        ))
        uow.flush()
        out.append((row, code))
    return out


def check_invite(uow: UnitOfWork, *, person: Person, code: str) -> InviteCode:
    """The usable invite behind `code`, or a refusal saying why not."""
    if person.role == Role.ADMIN:
        raise Refused(messages.BIND_ADMIN)
    if person.role == Role.MEMBER:
        raise Refused(messages.BIND_ALREADY.format(branch=branch_name(uow, person)))
    shown = code.strip()[:20]
    invite = uow.session.get(InviteCode, shown.upper())
    if invite is None:
        raise Refused(messages.BIND_BAD_CODE.format(code=shown))
    if invite.used_by is not None:
        raise Refused(messages.BIND_USED_CODE.format(code=shown))
    if invite.expires_at <= uow.now:
        raise Refused(messages.BIND_EXPIRED_CODE.format(code=shown))
    return invite


def clean_name(name: str | None) -> str | None:
    name = " ".join((name or "").split())
    if not name:
        return None
    if len(name) > NAME_MAX:
        raise Refused(messages.BIND_BAD_NAME)
    return name


def bind_member(uow: UnitOfWork, *, person: Person, code: str, name: str | None, settings: Settings) -> Person:
    """Make `person` a member of the code's branch; the code is used up in the same transaction."""
    invite = check_invite(uow, person=person, code=code)
    final_name = clean_name(name) or invite.name
    if not final_name:
        raise Refused(messages.BIND_ASK_NAME)
    community_id, grid_id = _place_of(uow, invite.grid_id or invite.branch_id)
    person.role = Role.MEMBER.value
    person.name = final_name
    person.branch_id = invite.branch_id
    person.phone = invite.phone or person.phone
    person.community_id = invite.community_id or community_id or person.community_id
    person.grid_id = invite.grid_id or grid_id or person.grid_id
    if invite.skills and not person.skills:
        person.skills = invite.skills
    taken = uow.session.execute(  # compare-and-set: of two people typing one code at once, one wins
        update(InviteCode).where(InviteCode.code == invite.code, InviteCode.used_by.is_(None))
        .values(used_by=person.id, used_at=uow.now).execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        raise Refused(messages.BIND_USED_CODE.format(code=invite.code))
    uow.flush()
    return person


def _place_of(uow: UnitOfWork, unit_id: int | None) -> tuple[int | None, int | None]:
    """(community id, grid id) found walking up the tree from a unit."""
    community_id = grid_id = None
    unit = uow.org.get(unit_id)
    for _ in range(8):  # the tree is shallow; the bound guards against a cycle typed by hand
        if unit is None:
            break
        if unit.kind == "grid" and grid_id is None:
            grid_id = unit.id
        if unit.kind == "community" and community_id is None:
            community_id = unit.id
        unit = uow.org.get(unit.parent_id)
    return community_id, grid_id


def set_skills(uow: UnitOfWork, *, member: Person, text: str) -> list[str]:
    """Replace the member's skill tags (used by matching)."""
    tags = split_tags(text)
    if not tags:
        raise Refused(messages.SKILLS_USAGE)
    member.skills = " ".join(tags)
    uow.flush()
    return tags


def branch_name(uow: UnitOfWork, person: Person | None) -> str:
    unit = uow.org.get(person.branch_id) if person else None
    return unit.name if unit else messages.NO_BRANCH


def member_label(uow: UnitOfWork, person: Person | None) -> tuple[str, str]:
    """(name, branch) as residents and other members see them."""
    return ((person.name if person and person.name else messages.NO_NAME), branch_name(uow, person))
