"""The refund state machine: states, events and the one transition table.

Pure code. The workflow asks `apply()` before every state change, and update validators ask
`check()` so an invalid action is refused before it reaches workflow history.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RefundState(StrEnum):
    PENDING_REVIEW = "pending_review"
    APPROVED = "approved"
    REFUNDING = "refunding"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


TERMINAL_STATES = frozenset({RefundState.COMPLETED, RefundState.CANCELLED})


class CancelReason(StrEnum):
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    INELIGIBLE = "ineligible"
    RETURN_WINDOW_ELAPSED = "return_window_elapsed"
    EXCEEDS_REFUNDABLE = "exceeds_refundable"
    PAYMENT_FAILED = "payment_failed"
    CLOSED_IN_TEMPORAL = "closed_in_temporal"
    """Its workflow was ended in Temporal (the Web UI's Terminate, a timeout, a failure)
    before the refund ended, and no money had moved: reconciliation closed it."""


class Awaiting(StrEnum):
    """Who must act next for the refund to move."""

    REVIEWER = "reviewer"
    CUSTOMER = "customer"
    WAREHOUSE = "warehouse"
    PAYMENT_PROVIDER = "payment_provider"
    OPERATOR = "operator"
    NOTHING = "nothing"


class RefundEvent(StrEnum):
    AUTO_APPROVE = "auto_approve"
    APPROVE = "approve"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    EXPIRE = "expire"
    DECLINE_INELIGIBLE = "decline_ineligible"
    START_REFUND = "start_refund"
    RETURN_WINDOW_ELAPSED = "return_window_elapsed"
    PROVIDER_CONFIRMED = "provider_confirmed"
    DECLINE_OVER_REFUND = "decline_over_refund"
    OPERATOR_CANCEL = "operator_cancel"
    PROVIDER_REVERSED = "provider_reversed"
    """The provider took back a refund it had paid (a bank returned it): the case reopens."""
    CLOSED_IN_TEMPORAL = "closed_in_temporal"
    """Recorded by reconciliation, never by a workflow: Temporal ended the refund's workflow
    and the provider holds no refund for it (activities/closing.py)."""


class TimelineEvent(StrEnum):
    """Timeline entries that record a fact without changing the state (every state change is
    recorded under its RefundEvent). Reports and reconciliation key on these, never on the
    entry's human-readable reason."""

    REQUESTED = "requested"
    ESCALATED = "escalated"
    PROVIDER_PENDING = "provider_pending"
    PROVIDER_PAID = "provider_paid"
    OPERATOR_RETRY = "operator_retry"
    FIRST_APPROVAL = "first_approval"
    """One of two approvers the policy wants above its four-eyes threshold."""
    SETTLEMENT_UNCONFIRMED = "settlement_unconfirmed"
    """A settlement signal the provider's own records did not bear out: ignored."""
    PAID_ELSEWHERE = "paid_elsewhere"
    """An operator paid the customer outside the provider, with proof."""
    PROVIDER_REQUIRES_ACTION = "provider_requires_action"
    """The provider needs the customer to act (e.g. bank details) before it can pay."""
    ITEM_RECEIVED = "item_received"
    """The returned item reached the warehouse before the approval: kept, and the refund is
    paid once approved (the receipt of an approved refund is its `start_refund`)."""


class OperatorDecision(StrEnum):
    """How a refund that waits for an operator after a payment failure goes on."""

    RETRY = "retry"
    CANCEL = "cancel"
    PAID = "paid"
    """No operator needed after all: the provider turned out to have paid (reconciliation)."""
    PAID_ELSEWHERE = "paid_elsewhere"
    """An operator paid the customer outside the provider (a bank transfer, store credit)
    and recorded the proof; the provider holds no live refund for it."""


@dataclass(frozen=True)
class Transition:
    to: RefundState
    cancel_reason: CancelReason | None = None


_S = RefundState
_E = RefundEvent
_C = CancelReason

TRANSITIONS: dict[tuple[RefundState, RefundEvent], Transition] = {
    (_S.PENDING_REVIEW, _E.AUTO_APPROVE): Transition(_S.APPROVED),
    (_S.PENDING_REVIEW, _E.APPROVE): Transition(_S.APPROVED),
    (_S.PENDING_REVIEW, _E.REJECT): Transition(_S.CANCELLED, _C.REJECTED),
    (_S.PENDING_REVIEW, _E.WITHDRAW): Transition(_S.CANCELLED, _C.WITHDRAWN),
    (_S.PENDING_REVIEW, _E.EXPIRE): Transition(_S.CANCELLED, _C.EXPIRED),
    (_S.PENDING_REVIEW, _E.DECLINE_INELIGIBLE): Transition(_S.CANCELLED, _C.INELIGIBLE),
    (_S.PENDING_REVIEW, _E.DECLINE_OVER_REFUND): Transition(_S.CANCELLED, _C.EXCEEDS_REFUNDABLE),
    (_S.APPROVED, _E.START_REFUND): Transition(_S.REFUNDING),
    (_S.APPROVED, _E.WITHDRAW): Transition(_S.CANCELLED, _C.WITHDRAWN),
    (_S.APPROVED, _E.RETURN_WINDOW_ELAPSED): Transition(_S.CANCELLED, _C.RETURN_WINDOW_ELAPSED),
    (_S.REFUNDING, _E.PROVIDER_CONFIRMED): Transition(_S.COMPLETED),
    # Only an operator, and only after the workflow has proved with the provider that no
    # money moved (every provider refund for it failed or none exists).
    (_S.REFUNDING, _E.OPERATOR_CANCEL): Transition(_S.CANCELLED, _C.PAYMENT_FAILED),
    # Only in a new run of the refund's workflow, started once the provider has confirmed
    # that the refund it paid was reversed (workflows/refund/reversal.py); an operator decides
    # what happens next, and no money moves again without that decision.
    (_S.COMPLETED, _E.PROVIDER_REVERSED): Transition(_S.REFUNDING),
    # Only by reconciliation, once the provider has said it holds no refund for it.
    (_S.PENDING_REVIEW, _E.CLOSED_IN_TEMPORAL): Transition(_S.CANCELLED, _C.CLOSED_IN_TEMPORAL),
    (_S.APPROVED, _E.CLOSED_IN_TEMPORAL): Transition(_S.CANCELLED, _C.CLOSED_IN_TEMPORAL),
    (_S.REFUNDING, _E.CLOSED_IN_TEMPORAL): Transition(_S.CANCELLED, _C.CLOSED_IN_TEMPORAL),
}
NOT_BY_A_WORKFLOW = frozenset({RefundEvent.CLOSED_IN_TEMPORAL})
"""Events no running refund can take, so never offered in a refusal."""
BY_A_PERSON = {
    RefundEvent.APPROVE: "approve",
    RefundEvent.REJECT: "reject",
    RefundEvent.WITHDRAW: "cancel",
    RefundEvent.OPERATOR_CANCEL: "operator cancel",
}
"""The events a person takes, by the command (and console action) that takes them: what a
refusal offers instead (a trial read "possible now: operator_cancel, provider_confirmed",
the second the provider's word, not a person's)."""


class InvalidTransition(ValueError):
    """An event that the current state does not allow."""


def check(state: RefundState, event: RefundEvent) -> Transition:
    """Return the transition for `event` in `state`, or raise InvalidTransition with a reason."""
    transition = TRANSITIONS.get((state, event))
    if transition is None:
        allowed = sorted(
            BY_A_PERSON[e] for (s, e) in TRANSITIONS if s == state and e in BY_A_PERSON
        )
        # A closed refund reopens only on the provider's confirmed word, never by a person.
        if state in TERMINAL_STATES:
            raise InvalidTransition(f"the refund is {state.value}: no further action is possible")
        possible = f"possible now: {', '.join(allowed)}" if allowed else "nobody acts on it now"
        raise InvalidTransition(
            f"cannot {event.value.replace('_', ' ')} a refund that is {state.value} ({possible})"
        )
    return transition


def allowed_events(state: RefundState) -> list[RefundEvent]:
    return [e for (s, e) in TRANSITIONS if s == state]
