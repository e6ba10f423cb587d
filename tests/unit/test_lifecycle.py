"""The transition table, checked triple by triple against the issue's rules (pure, no database)."""

from __future__ import annotations

import itertools

import pytest

from bot.lifecycle import (FINAL_STATUSES, OPEN_STATUSES, TRANSITIONS, Action, IllegalTransition, NotAllowed, Party,
                           WishStatus, allowed_actions, decide)

S, A, P = WishStatus, Action, Party

# The issue's rules written out by hand: (status, action) → (target, who may).
EXPECTED: dict[tuple[WishStatus, Action], tuple[WishStatus, set[Party]]] = {
    (S.SUBMITTED, A.APPROVE): (S.PUBLISHED, {P.ADMIN, P.SYSTEM}),
    (S.SUBMITTED, A.REJECT): (S.REJECTED, {P.ADMIN}),
    (S.SUBMITTED, A.DEFER): (S.DEFERRED, {P.ADMIN}),
    (S.SUBMITTED, A.ASSIGN): (S.ASSIGNED, {P.ADMIN}),
    (S.SUBMITTED, A.CANCEL): (S.CANCELLED, {P.OWNER}),
    (S.PUBLISHED, A.CLAIM): (S.CLAIMED, {P.MEMBER}),
    (S.PUBLISHED, A.CANCEL): (S.CANCELLED, {P.OWNER}),
    (S.PUBLISHED, A.REJECT): (S.REJECTED, {P.ADMIN}),
    (S.PUBLISHED, A.DEFER): (S.DEFERRED, {P.ADMIN}),
    (S.PUBLISHED, A.ASSIGN): (S.ASSIGNED, {P.ADMIN}),
    (S.CLAIMED, A.RELEASE): (S.PUBLISHED, {P.CLAIMER, P.ADMIN}),
    (S.CLAIMED, A.LAPSE): (S.PUBLISHED, {P.SYSTEM}),
    (S.CLAIMED, A.FULFIL): (S.FULFILLED, {P.CLAIMER}),
    (S.CLAIMED, A.ASSIGN): (S.ASSIGNED, {P.ADMIN}),
    (S.FULFILLED, A.RATE): (S.RATED, {P.OWNER}),
    (S.FULFILLED, A.VISIT): (S.RATED, {P.ADMIN}),
    (S.FULFILLED, A.REOPEN): (S.CLAIMED, {P.OWNER, P.ADMIN}),
    (S.FULFILLED, A.REWORK): (S.ASSIGNED, {P.OWNER, P.ADMIN}),
    (S.RATED, A.CLOSE): (S.CLOSED, {P.ADMIN, P.SYSTEM}),
    (S.RATED, A.REOPEN): (S.CLAIMED, {P.OWNER, P.ADMIN, P.SYSTEM}),
    (S.RATED, A.REWORK): (S.ASSIGNED, {P.OWNER, P.ADMIN, P.SYSTEM}),
    (S.ASSIGNED, A.FULFIL): (S.FULFILLED, {P.ADMIN}),
    (S.ASSIGNED, A.DEFER): (S.DEFERRED, {P.ADMIN}),
    (S.DEFERRED, A.APPROVE): (S.PUBLISHED, {P.ADMIN}),
    (S.DEFERRED, A.ASSIGN): (S.ASSIGNED, {P.ADMIN}),
    (S.DEFERRED, A.REJECT): (S.REJECTED, {P.ADMIN}),
    (S.DEFERRED, A.CANCEL): (S.CANCELLED, {P.OWNER}),
}
BARRED = {(S.FULFILLED, A.VISIT): {P.CLAIMER}, (S.FULFILLED, A.RATE): {P.CLAIMER},
          (S.RATED, A.CLOSE): {P.CLAIMER}}

ALLOWED = [(s, a, p) for (s, a), (_, parties) in EXPECTED.items() for p in sorted(parties)]
REFUSED_PARTY = [(s, a, p) for (s, a), (_, parties) in EXPECTED.items() for p in Party if p not in parties]
ILLEGAL = [(s, a) for s, a in itertools.product(WishStatus, Action) if (s, a) not in EXPECTED]


def test_the_table_is_exactly_the_issues_rules() -> None:
    assert {k: (r.target, set(r.parties)) for k, r in TRANSITIONS.items()} == EXPECTED
    assert {k: set(r.barred) for k, r in TRANSITIONS.items() if r.barred} == BARRED


@pytest.mark.parametrize(("status", "action", "party"), ALLOWED)
def test_allowed_transition(status: WishStatus, action: Action, party: Party) -> None:
    assert decide(status, action, {party}) == EXPECTED[(status, action)][0]


@pytest.mark.parametrize(("status", "action", "party"), REFUSED_PARTY)
def test_refused_party(status: WishStatus, action: Action, party: Party) -> None:
    with pytest.raises(NotAllowed) as exc:
        decide(status, action, {party})
    assert exc.value.action == action


@pytest.mark.parametrize(("status", "action"), ILLEGAL)
@pytest.mark.parametrize("party", list(Party))
def test_illegal_transition_for_everyone(status: WishStatus, action: Action, party: Party) -> None:
    with pytest.raises(IllegalTransition) as exc:
        decide(status, action, {party})
    assert (exc.value.status, exc.value.action) == (status, action)


def test_a_claimer_who_is_also_an_admin_may_not_record_the_return_visit() -> None:
    with pytest.raises(NotAllowed):
        decide(S.FULFILLED, A.VISIT, {P.ADMIN, P.CLAIMER})
    assert decide(S.FULFILLED, A.VISIT, {P.ADMIN, P.MEMBER}) == S.RATED


def test_no_party_at_all_is_refused() -> None:
    with pytest.raises(NotAllowed):
        decide(S.SUBMITTED, A.APPROVE, set())


def test_every_move_changes_the_status() -> None:
    """Timeline notes keep from == to, so a move can always be told from a note."""
    assert all(rule.target != status for (status, _), rule in TRANSITIONS.items())


def test_final_statuses_have_no_way_out_and_open_ones_do() -> None:
    for status in FINAL_STATUSES:
        assert allowed_actions(status) == []
    for status in OPEN_STATUSES | {S.DEFERRED}:
        assert allowed_actions(status)


def test_every_status_is_reachable_from_submitted() -> None:
    seen, frontier = {S.SUBMITTED}, [S.SUBMITTED]
    while frontier:
        current = frontier.pop()
        for action in allowed_actions(current):
            target = TRANSITIONS[(current, action)].target
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(WishStatus)


def test_cancel_only_before_anyone_claimed() -> None:
    cancellable = {s for (s, a) in TRANSITIONS if a == A.CANCEL}
    assert cancellable == {S.SUBMITTED, S.PUBLISHED, S.DEFERRED}


def test_decide_accepts_status_strings() -> None:
    assert decide("submitted", A.APPROVE, [P.ADMIN]) == S.PUBLISHED
