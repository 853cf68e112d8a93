"""The transition table, attacked with random event sequences."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows.states import (
    NOT_BY_A_WORKFLOW,
    TERMINAL_STATES,
    TRANSITIONS,
    CancelReason,
    InvalidTransition,
    RefundEvent,
    RefundState,
    allowed_events,
    check,
)

events = st.lists(st.sampled_from(list(RefundEvent)), max_size=30)


def run_sequence(sequence: list[RefundEvent]) -> list[tuple[RefundState, CancelReason | None]]:
    """Apply each event the machine accepts; skip the refused ones (as validators do)."""
    state = RefundState.PENDING_REVIEW
    path: list[tuple[RefundState, CancelReason | None]] = [(state, None)]
    for event in sequence:
        try:
            transition = check(state, event)
        except InvalidTransition:
            continue
        state = transition.to
        path.append((state, transition.cancel_reason))
    return path


@given(events)
def test_terminal_states_are_final(sequence: list[RefundEvent]) -> None:
    """Cancelled is final; completed is left only when the provider reverses the payment,
    and then only back to refunding (where an operator decides)."""
    path = run_sequence(sequence)
    for i, (state, _) in enumerate(path[:-1]):
        if state in TERMINAL_STATES:
            assert (state, path[i + 1][0]) == (RefundState.COMPLETED, RefundState.REFUNDING), (
                f"left terminal state {state} via {path[i + 1]}"
            )


@given(events)
def test_cancelled_always_has_a_reason_and_others_never(sequence: list[RefundEvent]) -> None:
    for state, reason in run_sequence(sequence):
        assert (reason is not None) == (state is RefundState.CANCELLED)


@given(events)
def test_completed_only_after_refunding_and_refunding_cancelled_only_by_payment_failure(
    sequence: list[RefundEvent],
) -> None:
    path = run_sequence(sequence)
    states = [s for s, _ in path]
    for i, state in enumerate(states):
        if state is RefundState.COMPLETED:
            assert states[i - 1] is RefundState.REFUNDING
    if RefundState.REFUNDING in states and states[-1] is RefundState.CANCELLED:
        # Money may have moved: only the operator's cancel (after the workflow proved with
        # the provider that nothing moved), or reconciliation closing a refund whose workflow
        # Temporal ended (after the provider said it holds no refund for it; never by a
        # workflow), leads from refunding to cancelled.
        assert path[-1][1] in (CancelReason.PAYMENT_FAILED, CancelReason.CLOSED_IN_TEMPORAL)
        assert RefundEvent.CLOSED_IN_TEMPORAL in NOT_BY_A_WORKFLOW
        assert TRANSITIONS[(RefundState.REFUNDING, RefundEvent.OPERATOR_CANCEL)].to is (
            RefundState.CANCELLED
        )


@given(events)
def test_path_always_follows_the_lifecycle_order(sequence: list[RefundEvent]) -> None:
    order = {
        RefundState.PENDING_REVIEW: 0,
        RefundState.APPROVED: 1,
        RefundState.REFUNDING: 2,
        RefundState.COMPLETED: 3,
        RefundState.CANCELLED: 3,
    }
    states = [s for s, _ in run_sequence(sequence)]
    reopened = (RefundState.COMPLETED, RefundState.REFUNDING)  # a reversal, the one way back
    assert all(order[a] < order[b] or (a, b) == reopened for a, b in itertools.pairwise(states))


def test_a_completed_refund_refuses_every_person_s_action_with_one_reason() -> None:
    for event in set(RefundEvent) - {RefundEvent.PROVIDER_REVERSED}:
        with pytest.raises(InvalidTransition, match="no further action is possible"):
            check(RefundState.COMPLETED, event)
    assert check(RefundState.COMPLETED, RefundEvent.PROVIDER_REVERSED).to is RefundState.REFUNDING


def test_every_state_is_reachable_and_every_non_terminal_state_can_move() -> None:
    reachable = {RefundState.PENDING_REVIEW} | {t.to for t in TRANSITIONS.values()}
    assert reachable == set(RefundState)
    for state in set(RefundState) - TERMINAL_STATES:
        assert allowed_events(state), state


def test_refusal_says_what_is_possible() -> None:
    with pytest.raises(InvalidTransition, match=r"cannot approve a refund that is approved"):
        check(RefundState.APPROVED, RefundEvent.APPROVE)
    with pytest.raises(InvalidTransition, match="no further action"):
        check(RefundState.COMPLETED, RefundEvent.WITHDRAW)
    # In the commands a person takes, not the events the provider's word moves (a trial
    # read "possible now: operator_cancel, provider_confirmed").
    with pytest.raises(InvalidTransition) as refused:
        check(RefundState.REFUNDING, RefundEvent.REJECT)
    assert str(refused.value) == (
        "cannot reject a refund that is refunding (possible now: operator cancel)"
    )
    with pytest.raises(InvalidTransition, match=r"\(possible now: cancel\)$"):
        check(RefundState.APPROVED, RefundEvent.APPROVE)
