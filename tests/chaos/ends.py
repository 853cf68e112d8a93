"""How a chaos case's refunds must end. A case declares the end of every refund when it asks
for it; after the run the harness checks each refund reached exactly that end.

Three kinds of end: completed; cancelled with a named reason; waiting for an operator with the
provider's failure named, which a case may declare only where it injects a refusal or a failed
settlement. "Some person was told" is not an end a case may hide a regression behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from workflows.models import StatusView
from workflows.states import Awaiting, CancelReason, RefundState


@dataclass(frozen=True)
class End:
    kind: Literal["completed", "cancelled", "operator"]
    reason: str = ""
    """cancelled: the cancel reason; operator: the provider's failure code it must name."""

    def __str__(self) -> str:
        return f"{self.kind} ({self.reason})" if self.reason else self.kind

    def reached_by(self, status: StatusView) -> bool:
        if self.kind == "completed":
            return status.state is RefundState.COMPLETED
        if self.kind == "cancelled":
            reason = status.cancel_reason.value if status.cancel_reason else ""
            return status.state is RefundState.CANCELLED and reason == self.reason
        # Waiting for an operator: still refunding, escalated, and saying why.
        return (
            status.state is RefundState.REFUNDING
            and status.awaiting is Awaiting.OPERATOR
            and status.escalation_level > 0
            and self.reason in (status.provider_failure or "")
        )


COMPLETED = End("completed")


def cancelled(reason: CancelReason) -> End:
    return End("cancelled", reason.value)


def operator_wait(failure_code: str) -> End:
    """Waiting for an operator because the provider refused or failed with this code."""
    assert failure_code, "an operator wait names the provider's failure"
    return End("operator", failure_code)


def at_an_end(status: StatusView) -> bool:
    """Completed, cancelled, or waiting for a person: nothing moves by itself any more."""
    return (
        status.state in (RefundState.COMPLETED, RefundState.CANCELLED)
        or status.awaiting is Awaiting.OPERATOR
    )


def describe(status: StatusView) -> str:
    """The end a refund reached, in the words of End."""
    if status.state is RefundState.CANCELLED:
        return f"cancelled ({status.cancel_reason.value if status.cancel_reason else '?'})"
    if status.awaiting is Awaiting.OPERATOR:
        return f"operator (level {status.escalation_level}: {status.provider_failure})"
    return status.state.value
