"""Plain-language wording of a refund's status, rendered from the status fields alone.

Every channel (CLI, tracking page, support reply) takes its text from here, so two people
looking at the same refund read the same thing.
"""

from __future__ import annotations

from workflows.money import format_minor
from workflows.states import Awaiting, CancelReason, RefundState

_NEXT_STEP: dict[tuple[RefundState, Awaiting], str] = {
    (RefundState.PENDING_REVIEW, Awaiting.REVIEWER): "A reviewer approves or rejects the refund.",
    (RefundState.APPROVED, Awaiting.CUSTOMER): "The customer sends the item back.",
    (RefundState.APPROVED, Awaiting.WAREHOUSE): "The warehouse confirms the item was received.",
    (RefundState.APPROVED, Awaiting.NOTHING): "The refund is sent to the payment provider.",
    (RefundState.REFUNDING, Awaiting.PAYMENT_PROVIDER): "The payment provider pays the refund.",
    (RefundState.REFUNDING, Awaiting.OPERATOR): (
        "An operator retries the refund or cancels it (no money has moved)."
    ),
}

_CANCELLED: dict[CancelReason, str] = {
    CancelReason.REJECTED: "The refund request was rejected after review.",
    CancelReason.WITHDRAWN: "The refund request was withdrawn.",
    CancelReason.EXPIRED: "The refund request expired without a decision.",
    CancelReason.INELIGIBLE: "The refund request is not eligible under the refund policy.",
    CancelReason.RETURN_WINDOW_ELAPSED: "The item was not returned in time.",
    CancelReason.EXCEEDS_REFUNDABLE: (
        "The refund request is more than what is still refundable on this order."
    ),
    CancelReason.PAYMENT_FAILED: "The refund could not be paid and was cancelled; no money moved.",
}


def next_step(state: RefundState, awaiting: Awaiting) -> str:
    if state is RefundState.COMPLETED:
        return "Nothing: the refund has been paid."
    if state is RefundState.CANCELLED:
        return "Nothing: the refund is closed."
    return _NEXT_STEP.get((state, awaiting), "The refund moves on by itself.")


def message(
    state: RefundState,
    cancel_reason: CancelReason | None,
    amount: int,
    currency: str,
    escalation_level: int,
) -> str:
    money = format_minor(amount, currency)
    if state is RefundState.PENDING_REVIEW:
        text = f"Your refund of {money} is waiting for review."
        if escalation_level:
            text += " It has taken longer than it should and has been escalated."
        return text
    if state is RefundState.APPROVED:
        return f"Your refund of {money} is approved."
    if state is RefundState.REFUNDING:
        return f"Your refund of {money} is on its way to your original payment method."
    if state is RefundState.COMPLETED:
        return f"Your refund of {money} has been paid to your original payment method."
    reason = (
        _CANCELLED.get(cancel_reason, "The refund request was closed.") if cancel_reason else ""
    )
    return reason or "The refund request was closed."
