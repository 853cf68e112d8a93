"""The returned item of a refund whose policy pays once the item is back (`on_item_received`):
when its receipt may be recorded, and a receipt recorded before the approval.

A trial: a warehouse that recorded the item while the refund waited for its review was
refused and the receipt lost; the customer was then asked for an item the warehouse had,
and the return window closed the refund. Now such a receipt is kept (an `item_received`
entry, the state unchanged) and the refund is paid as soon as it is approved, without asking
the customer for the item.

No patch: every history recorded before replays as it did (the validator refused such a
receipt, and validators do not run in replay, so none holds one; an approved refund with
`item_received` set was impossible). Workers older than this cannot replay a refund that
kept a receipt: no rollback below it while one is open (docs/deployment.md).

A receipt while the refund's first step is decided waits for it, then is kept or taken as
any other (`RefundWorkflow.item_received`): a run reset in Temporal to its first task meets
its reapplied receipt there (a trial: refused, the approval asked the customer for an item
the warehouse held). No patch either: such a receipt was refused by the validator before,
so no history holds one, and the handler awaits nothing in any other state."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import workflow

from workflows.policy import REVIEW_EXPIRY_LEVEL
from workflows.states import RefundEvent, RefundState, TimelineEvent
from workflows.wording import kept_receipt_entry

if TYPE_CHECKING:
    from workflows.models import ItemReceivedInput
    from workflows.refund.case import RefundCase
    from workflows.refund.journal import Journal

REVIEWER_REMINDER = timedelta(hours=24)

KEPT_WORDS = "returned item received before the approval: kept, and paid once approved"


def receipt_refusal(case: RefundCase) -> str | None:
    """Why a receipt cannot be recorded now (None: it can). Validators do not run when a
    history is replayed: these words change nothing recorded."""
    if case.policy.refund.trigger != "on_item_received":
        return (
            f"policy {case.inp.policy.name} v{case.inp.policy.version} refunds on approval:"
            " no returned item is expected"
        )
    reason = case.inp.request.reason_code
    if not case.policy.refund.awaits_item(reason):
        return (
            f"policy {case.inp.policy.name} v{case.inp.policy.version} refunds {reason} on"
            " approval: no returned item is expected"
        )
    if case.p.item_received:
        kept = kept_receipt_entry(case.p.timeline)
        entry = f" (entry {kept}, before the approval)" if kept else ""
        return f"the returned item is already recorded as received{entry}"
    if case.p.state is RefundState.PENDING_REVIEW:
        # Kept until a reviewer decides; while its first step is decided, the receipt
        # waits for it (the workflow's handler asks again then).
        return None
    if case.p.state is not RefundState.APPROVED:
        return f"the refund is {case.p.state.value}: no returned item is awaited"
    return None


def receive(case: RefundCase, inp: ItemReceivedInput) -> None:
    """Record the receipt: an approved refund moves on to pay; one still in review keeps it."""
    case.p.item_received = True
    if case.p.state is RefundState.PENDING_REVIEW:
        case.append(
            TimelineEvent.ITEM_RECEIVED, case.p.state, inp.actor, inp.source, KEPT_WORDS, inp.issuer
        )
        if case.p.escalation >= REVIEW_EXPIRY_LEVEL:
            # The last escalation's notice told a closing date the receipt now holds off (a
            # review): told again, without it.
            case.notice(TimelineEvent.ITEM_RECEIVED)
        return
    received = "returned item received"
    case.apply(RefundEvent.START_REFUND, inp.actor, inp.source, received, inp.issuer)


async def remind_until_decided(case: RefundCase, journal: Journal, waited: str) -> None:
    """A review past its expiry while the warehouse holds the item (a receipt kept before
    the approval): not expired, or the customer would have neither the item nor the money
    and nobody would be told (a review); staff are reminded daily until a reviewer decides
    (or the customer withdraws). Only refunds that kept a receipt come here: no earlier
    history does."""
    case.escalate(
        "timer",
        f"no review decision within {waited}; the warehouse holds the returned item, so the"
        " request does not expire: a reviewer decides",
    )
    while case.p.state is RefundState.PENDING_REVIEW:
        await journal.flush()
        try:
            await workflow.wait_condition(
                lambda: case.p.state is not RefundState.PENDING_REVIEW or case.has_unrecorded(),
                timeout=REVIEWER_REMINDER,
                timeout_summary="reviewer reminder",
            )
        except TimeoutError:
            case.escalate("timer", "still waiting for a reviewer; the warehouse holds the item")


def nothing_to_return(case: RefundCase) -> bool:
    """Approved for a reason the policy pays on approval, nothing coming back (returns v2
    on: a parcel that never arrived, a late delivery): on to the payment at once (True).
    Pinned policies before it name no such reason, so their refunds go as they went."""
    reason = case.inp.request.reason_code
    if case.p.state is not RefundState.APPROVED or case.policy.refund.awaits_item(reason):
        return False
    words = f"refund on approval: nothing to return for {reason}"
    case.apply(RefundEvent.START_REFUND, "policy", "workflow", words)
    return True


def paid_on_approval(case: RefundCase) -> bool:
    """Approved with a receipt kept from before: on to the payment at once (True)."""
    if case.p.state is not RefundState.APPROVED or not case.p.item_received:
        return False
    kept = f"refund on approval: the {KEPT_WORDS.split(':')[0]}"
    case.apply(RefundEvent.START_REFUND, "policy", "workflow", kept)
    return True
