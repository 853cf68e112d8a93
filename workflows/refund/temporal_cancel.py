"""A cancellation from Temporal (the Web UI's "Request Cancellation", `temporal workflow
cancel`) is a refund event like any other: it withdraws the refund while no money has moved,
and is refused, on the record, once money may have moved or a person must decide."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.refund import patches
    from workflows.refund.case import RefundCase
    from workflows.refund.journal import Journal
    from workflows.refund.payment import Payment
    from workflows.states import Awaiting, RefundEvent, RefundState
    from workflows.wording import OPERATOR_CANCELS, OPERATOR_DECIDES


async def on_cancel_request(
    case: RefundCase, journal: Journal, payment: Payment, requested: str
) -> None:
    """Withdraw the refund, or refuse the cancel and carry on from where it was."""
    said = f" ({requested})" if requested else ""
    if case.p.state in (RefundState.PENDING_REVIEW, RefundState.APPROVED):
        reason = f"cancelled by an operator in Temporal{said}"
        case.apply(RefundEvent.WITHDRAW, "temporal-operator", "temporal", reason)
        return
    if case.p.state is not RefundState.REFUNDING:
        return
    goes_on = workflow.patched(patches.CANCEL_REFUSED_GOES_ON)  # before any activity
    # An operator's decision taken in the same activation (a retry sets the provider as
    # awaited) is the operator wait's too: it is taken from there (a review).
    deciding = case.p.awaiting is Awaiting.OPERATOR or case.p.operator_action is not None
    if deciding and workflow.patched(patches.CANCEL_IN_OPERATOR_WAIT):  # before any activity
        # Not "going on with the same payment": that made a new attempt under the same key,
        # which a provider that refused it (and so kept nothing) paid, nobody deciding,
        # after a person asked to stop it (a review).
        refuse(case, said, f"{OPERATOR_DECIDES}; {OPERATOR_CANCELS}")
        await journal.flush()
        await payment.pay(resume=True)  # back to the operator's wait
        return
    refuse(case, said, "the refund is with the payment provider, so money may have moved")
    await journal.flush()
    # The same idempotency key on every provider call: going on never pays twice.
    await payment.pay(goes_on=goes_on)


def refuse(case: RefundCase, said: str, because: str) -> None:
    case.escalate(
        "temporal-operator",
        f"cancellation requested in Temporal{said} refused: {because}",
        "temporal",
        tell=False,  # staff's: not "taking longer at the provider" to the customer
    )
