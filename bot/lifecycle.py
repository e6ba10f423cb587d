"""The wish state machine: one table says what may follow what, and who may do it.

Standard library only. `WishRepository.move()` is the only writer of `wish.status`; it asks
`decide()` first and records a timeline event in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Iterable, Mapping


class WishStatus(StrEnum):
    SUBMITTED = "submitted"  # collected, waiting for registration (收集/登记)
    PUBLISHED = "published"  # registered and in the hall (发布)
    CLAIMED = "claimed"  # a member promised it (认领)
    FULFILLED = "fulfilled"  # the member reported it done (落实)
    RATED = "rated"  # the resident or a return visit answered (反馈)
    CLOSED = "closed"  # closed out (销号)
    REJECTED = "rejected"
    DEFERRED = "deferred"  # infeasible for now: explained and archived as pending
    ASSIGNED = "assigned"  # handed to a department or leader (common / legacy problems)
    CANCELLED = "cancelled"  # withdrawn by the resident before anyone claimed


OPEN_STATUSES = frozenset(
    {WishStatus.SUBMITTED, WishStatus.PUBLISHED, WishStatus.CLAIMED, WishStatus.FULFILLED, WishStatus.RATED, WishStatus.ASSIGNED}
)
FINAL_STATUSES = frozenset({WishStatus.CLOSED, WishStatus.REJECTED, WishStatus.CANCELLED})


class Tier(StrEnum):
    PERSONAL = "personal"  # 个性: claimed by a member
    COMMON = "common"  # 共性: a common problem for a department
    LEGACY = "legacy"  # 老大难: a long-standing hard one led by a leader


class Role(StrEnum):
    RESIDENT = "resident"
    MEMBER = "member"
    ADMIN = "admin"


class Party(StrEnum):
    """How an actor stands to one wish; the transition table is written in these terms."""

    OWNER = "owner"  # the resident whose wish it is
    CLAIMER = "claimer"  # the member holding the claim
    MEMBER = "member"  # any bound Party member
    ADMIN = "admin"
    SYSTEM = "system"  # the scheduler


class Action(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    DEFER = "defer"
    ASSIGN = "assign"
    CANCEL = "cancel"
    CLAIM = "claim"
    RELEASE = "release"
    LAPSE = "lapse"
    FULFIL = "fulfil"
    RATE = "rate"
    VISIT = "visit"
    REOPEN = "reopen"  # back to the same claimer
    REWORK = "rework"  # back to the unit it was assigned to (no claimer)
    CLOSE = "close"


@dataclass(frozen=True)
class Rule:
    """`target` is reached when one of `parties` acts, unless the actor is also one of `barred`."""

    target: WishStatus
    parties: frozenset[Party]
    barred: frozenset[Party] = frozenset()


def _rule(target: WishStatus, *parties: Party, barred: Iterable[Party] = ()) -> Rule:
    return Rule(target, frozenset(parties), frozenset(barred))


S, A, P = WishStatus, Action, Party
TRANSITIONS: Mapping[tuple[WishStatus, Action], Rule] = {
    (S.SUBMITTED, A.APPROVE): _rule(S.PUBLISHED, P.ADMIN, P.SYSTEM),  # system: a held minor's wish on consent
    (S.SUBMITTED, A.REJECT): _rule(S.REJECTED, P.ADMIN),
    (S.SUBMITTED, A.DEFER): _rule(S.DEFERRED, P.ADMIN),
    (S.SUBMITTED, A.ASSIGN): _rule(S.ASSIGNED, P.ADMIN),
    (S.SUBMITTED, A.CANCEL): _rule(S.CANCELLED, P.OWNER),
    (S.PUBLISHED, A.CLAIM): _rule(S.CLAIMED, P.MEMBER),
    (S.PUBLISHED, A.CANCEL): _rule(S.CANCELLED, P.OWNER),
    (S.PUBLISHED, A.REJECT): _rule(S.REJECTED, P.ADMIN),
    (S.PUBLISHED, A.DEFER): _rule(S.DEFERRED, P.ADMIN),
    (S.PUBLISHED, A.ASSIGN): _rule(S.ASSIGNED, P.ADMIN),
    (S.CLAIMED, A.RELEASE): _rule(S.PUBLISHED, P.CLAIMER, P.ADMIN),
    (S.CLAIMED, A.LAPSE): _rule(S.PUBLISHED, P.SYSTEM),
    (S.CLAIMED, A.FULFIL): _rule(S.FULFILLED, P.CLAIMER),
    (S.CLAIMED, A.ASSIGN): _rule(S.ASSIGNED, P.ADMIN),
    (S.FULFILLED, A.RATE): _rule(S.RATED, P.OWNER, barred=[P.CLAIMER]),  # nobody rates their own claim
    (S.FULFILLED, A.VISIT): _rule(S.RATED, P.ADMIN, barred=[P.CLAIMER]),  # a return visit is never by the claimer
    (S.FULFILLED, A.REOPEN): _rule(S.CLAIMED, P.OWNER, P.ADMIN),
    (S.FULFILLED, A.REWORK): _rule(S.ASSIGNED, P.OWNER, P.ADMIN),
    (S.RATED, A.CLOSE): _rule(S.CLOSED, P.ADMIN, P.SYSTEM, barred=[P.CLAIMER]),  # nor closes it
    (S.RATED, A.REOPEN): _rule(S.CLAIMED, P.OWNER, P.ADMIN, P.SYSTEM),
    (S.RATED, A.REWORK): _rule(S.ASSIGNED, P.OWNER, P.ADMIN, P.SYSTEM),
    (S.ASSIGNED, A.FULFIL): _rule(S.FULFILLED, P.ADMIN),
    (S.ASSIGNED, A.DEFER): _rule(S.DEFERRED, P.ADMIN),
    (S.DEFERRED, A.APPROVE): _rule(S.PUBLISHED, P.ADMIN),
    (S.DEFERRED, A.ASSIGN): _rule(S.ASSIGNED, P.ADMIN),
    (S.DEFERRED, A.REJECT): _rule(S.REJECTED, P.ADMIN),
    (S.DEFERRED, A.CANCEL): _rule(S.CANCELLED, P.OWNER),
}


class TransitionError(Exception):
    """Base of the refusals `decide` can raise."""


class IllegalTransition(TransitionError):
    def __init__(self, status: WishStatus, action: Action) -> None:
        super().__init__(f"{action} is not possible from {status}")
        self.status, self.action = status, action


class NotAllowed(TransitionError):
    def __init__(self, action: Action, parties: Iterable[Party]) -> None:
        self.action, self.parties = action, frozenset(parties)
        super().__init__(f"{sorted(self.parties)} may not {action}")


def decide(status: WishStatus | str, action: Action, parties: Iterable[Party]) -> WishStatus:
    """The status that `action` leads to, or a refusal. Pure: the table alone decides."""
    rule = TRANSITIONS.get((WishStatus(status), action))
    if rule is None:
        raise IllegalTransition(WishStatus(status), action)
    actor = frozenset(parties)
    if not rule.parties & actor or rule.barred & actor:
        raise NotAllowed(action, actor)
    return rule.target


def allowed_actions(status: WishStatus | str) -> list[Action]:
    """Actions the table allows from `status` (for menus, the dashboard and tests)."""
    return [a for (s, a) in TRANSITIONS if s == WishStatus(status)]
