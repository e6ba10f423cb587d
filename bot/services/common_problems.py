"""Common problems found, not waited for (issue 9).

Open, unclaimed wishes (waiting for registration or in the hall) from *different* residents of
one community, in the same category, created within `common_problem_weeks`, whose texts are
similar (difflib ratio ≥ `common_problem_similarity`, or at least
`common_problem_min_shared_keywords` shared jieba keywords) are grouped (connected components)
and proposed to admins as `共性 <编号,编号,…>`. `合并 <编号,…> <单位>` makes them one common problem
handed to that unit: each wish becomes tier common and ASSIGNED, with a timeline note naming the
group, and each resident is told.

Proposals are computed on demand from the (small) set of unregistered wishes: nothing is stored.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Iterable, Sequence

from sqlalchemy import select

from bot import messages
from bot.config import Settings
from bot.lifecycle import Action, Tier, WishStatus
from bot.routing import Refused, parse_code
from bot.services.wishes import notify_resident, parties_for
from storage.db import UnitOfWork
from storage.models import OrgUnit, Person, Wish

CANDIDATE_STATUSES = (WishStatus.SUBMITTED.value, WishStatus.PUBLISHED.value)
MERGEABLE = frozenset({WishStatus.SUBMITTED.value, WishStatus.PUBLISHED.value, WishStatus.DEFERRED.value})
_CODES_SPLIT = re.compile(r"[,，、;；]+")


@dataclass(frozen=True)
class Proposal:
    wishes: tuple[Wish, ...]
    community: str

    @property
    def codes(self) -> str:
        return messages.COMMON_CODE_SEP.join(str(w.id) for w in self.wishes)

    @property
    def residents(self) -> int:
        return len({w.resident_id for w in self.wishes})

    def line(self) -> str:
        first = self.wishes[0]
        text = first.masked if len(first.masked) <= 30 else first.masked[:30] + "…"
        return messages.COMMON_LINE.format(codes=self.codes, community=self.community, category=first.category,
                                           n=self.residents, text=text)


@lru_cache(maxsize=4096)
def keywords(text: str) -> frozenset[str]:
    """Content words of a text (jieba segmentation, two characters or more, no fillers).

    The segmenter is the categories' one (bot/categories.py: jieba with a small dictionary), so
    the bot holds one dictionary, not two.
    """
    from bot.categories import segment

    return frozenset(w for w in segment(text) if len(w) >= 2 and w not in messages.COMMON_STOP_WORDS and not w.isdigit())


def _plain(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


def are_similar(a: str, b: str, settings: Settings) -> bool:
    """Similar texts: sharing enough content words, or close by difflib ratio (cheap bounds first)."""
    if len(keywords(a) & keywords(b)) >= settings.common_problem_min_shared_keywords:
        return True
    pa, pb = _plain(a), _plain(b)
    if not pa or not pb:
        return False
    matcher, threshold = difflib.SequenceMatcher(None, pa, pb), settings.common_problem_similarity
    return matcher.real_quick_ratio() >= threshold and matcher.quick_ratio() >= threshold and matcher.ratio() >= threshold


def _components(wishes: Sequence[Wish], settings: Settings) -> list[list[Wish]]:
    """Connected groups of similar wishes from different residents (union-find within one bucket)."""
    parent = list(range(len(wishes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(wishes)):
        for j in range(i + 1, len(wishes)):
            a, b = wishes[i], wishes[j]
            if root(i) == root(j) or a.resident_id == b.resident_id:
                continue  # already grouped (through another wish), or one resident's own repeat
            if are_similar(a.masked, b.masked, settings):
                parent[root(j)] = root(i)
    groups: dict[int, list[Wish]] = defaultdict(list)
    for i, w in enumerate(wishes):
        groups[root(i)].append(w)
    return [g for g in groups.values() if len({w.resident_id for w in g}) >= 2]


def proposals(uow: UnitOfWork, settings: Settings, *, community_id: int | None = None) -> list[Proposal]:
    """Groups of similar wishes from different residents of one community, oldest group first."""
    since = uow.now - timedelta(weeks=settings.common_problem_weeks)
    stmt = (select(Wish).where(Wish.status.in_(CANDIDATE_STATUSES), Wish.created_at >= since,
                               Wish.community_id.is_not(None), Wish.claimer_id.is_(None))
            .order_by(Wish.community_id, Wish.category, Wish.id))
    if community_id is not None:
        stmt = stmt.where(Wish.community_id == community_id)
    buckets: dict[tuple[int, str], list[Wish]] = defaultdict(list)
    for wish in uow.session.execute(stmt).scalars():
        buckets[(wish.community_id or 0, wish.category)].append(wish)
    found = [group for bucket in buckets.values() if len(bucket) > 1 for group in _components(bucket, settings)]
    names = _community_names(uow, {g[0].community_id or 0 for g in found})
    return sorted((Proposal(tuple(g), names.get(g[0].community_id or 0, "")) for g in found),
                  key=lambda p: p.wishes[0].id or 0)


def _community_names(uow: UnitOfWork, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {u.id or 0: u.name for u in uow.session.execute(select(OrgUnit).where(OrgUnit.id.in_(ids))).scalars()}


def pending_section(uow: UnitOfWork, settings: Settings) -> str:
    """The block `待审` shows after the waiting wishes ("" when there is nothing to propose)."""
    found = proposals(uow, settings)
    if not found:
        return ""
    return "\n".join([messages.COMMON_HEADER, *(p.line() for p in found), messages.COMMON_HINT])


def parse_codes(text: str) -> list[int]:
    """`12,15,18` (also with ， or 、) → distinct wish numbers in order."""
    codes: list[int] = []
    for token in _CODES_SPLIT.split(text.strip()):
        if token.strip():
            code = parse_code(token)
            if code not in codes:
                codes.append(code)
    return codes


def merge_wishes(uow: UnitOfWork, *, wish_ids: Iterable[int], admin: Person, unit: str,
                 settings: Settings) -> list[Wish]:
    """One common problem handed to `unit`: every wish tier common and ASSIGNED, each resident told."""
    ids = list(dict.fromkeys(wish_ids))
    if len(ids) < 2:
        raise Refused(messages.MERGE_TOO_FEW)
    wishes = [uow.wishes.get(i) for i in ids]
    for wish in wishes:  # check all before moving any, so the refusal names the wish that blocks
        if wish.status not in MERGEABLE:
            raise Refused(messages.MERGE_NOT_OPEN.format(code=wish.id, status=messages.STATUS_NAMES[wish.status]))
    for wish in wishes:
        uow.wishes.move(wish, Action.ASSIGN, parties=parties_for(wish, admin), actor=admin,
                        actor_role=admin.role, now=uow.now, note=unit,
                        changes={"assigned_unit": unit, "tier": Tier.COMMON.value})
        others = messages.COMMON_CODE_SEP.join(str(i) for i in ids if i != wish.id)
        uow.wishes.note(wish, action="merge", actor=admin, actor_role=admin.role, now=uow.now,
                        note=messages.MERGE_NOTE.format(codes=others, unit=unit))
        notify_resident(uow, wish, messages.NOTICE_MERGED.format(code=wish.id, unit=unit))
    uow.flush()
    return wishes
