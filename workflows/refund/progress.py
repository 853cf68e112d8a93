"""`Progress`: everything about a refund that changes while it runs (RefundCase's state,
workflows/refund/case.py), carried whole from one run to the next."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from workflows.models import Notice, ProviderRefundResult, ProviderSettlement, TimelineEntry
from workflows.states import Awaiting, CancelReason, OperatorDecision, RefundState


class Progress(BaseModel):
    """Everything about a refund that changes while it runs."""

    state: RefundState = RefundState.PENDING_REVIEW
    cancel_reason: CancelReason | None = None
    awaiting: Awaiting = Awaiting.NOTHING
    escalation: int = 0
    requested_at: datetime
    """When the workflow started (review deadlines run from here)."""
    max_amount: int
    """The most a reviewer may approve: the requested amount less fees."""
    amount: int
    """What the refund pays (a reviewer may approve less than `max_amount`)."""
    timeline: list[TimelineEntry] = []
    notices: list[Notice] = []
    """State changes not yet written to the outbox."""
    recorded: int = 0
    """How many timeline entries the audit store already has."""
    item_received: bool = False
    refunding_since: datetime | None = None
    provider_refund_id: str | None = None
    operator_note: str | None = None
    """The provider's reason for the last failure, shown to operators."""
    refused_by: str = "payment-provider"
    """Who refused the last payment: the provider, or refundflow's own check before sending
    (`failures.refused_by`), named as the actor of the escalation that follows."""
    operator_action: OperatorDecision | None = None
    payment_attempt: int = 1
    reserved: bool = False
    withheld_because: str | None = None
    """Why the store held the refund back from the auto-approval the policy gave (the same
    request twice, a spent budget): carried, so a continued run decides as the first one did
    (a review: its rule table read "Approved automatically" again)."""
    tried_fast_path: bool = False
    settlements: dict[str, ProviderSettlement] = {}
    """The provider's final word per provider refund id (first one wins)."""
    settled_by: dict[str, str] = {}
    confirm_hints: bool = False
    """Settlement signals are confirmed with the provider before they count (refunds started
    since that patch); before, they counted as received."""
    hints: dict[str, ProviderSettlement] = {}
    """Settlement signals not yet confirmed with the provider."""
    clear_escalation_on_close: bool = False
    """A closed refund's escalation goes back to 0 (refunds started since that patch)."""
    approvals: list[str] = []
    """Who approved so far, when the policy wants two approvers for this amount."""
    evidence: str | None = None
    """What a reviewer checked, as approvals record it ("li: photos in ticket 123")."""
    published: tuple[str, int, str] = (
        RefundState.PENDING_REVIEW.value,
        0,
        Awaiting.NOTHING.value,
    )
    """(state, escalation, awaiting) as the search attributes last showed them."""
    long_lived: bool = False
    """Bounded store calls, audit conflicts re-sequenced, continue-as-new on long waits
    (refunds started since that patch)."""
    local_fast_path: bool = False
    """Store calls and the first provider call run in-process (refunds since that patch)."""
    all_above: bool = False
    """Started on patch ALL_ABOVE: takes every earlier patch's new path without asking."""
    record_with_payment: bool = False
    """The first payment attempt's audit write goes with the provider call, in one local
    activity (patch RECORD_WITH_PAYMENT)."""
    seq_base: int = 0
    """Added to a timeline position to get its audit sequence number: more than 0 once
    another run of this refund (a reset) wrote entries this run does not have."""
    pending_settlement: ProviderRefundResult | None = None
    """The provider refund whose settlement the refund waits for, while it waits."""
    waits_on: str | None = None
    """Its provider refund id, for staff's status only: set before the pending entry is
    recorded, so the status written with it names it (`pending_settlement` is set after,
    and the code that reads it keeps its order)."""
    poll_every: timedelta = timedelta(seconds=30)
    runs: int = 1
    """How many workflow runs this refund has had (continue-as-new keeps history short)."""
    withdrawn_for_customer: bool = False
    """Withdrawn by a service acting for the customer (the shop's own cancel button), not by
    staff: the customer reads "withdrawn", not "cancelled by our team"."""
    paid_elsewhere: str | None = None
    """The operator and proof of a payment made outside the provider (operator_paid_elsewhere)."""
    provider_instructions: str | None = None
    """What the provider asks the customer to do (requires_action), until it settles."""
    sent_unanswered: bool = False
    """A payment attempt is with the provider, which has not answered yet: no arrival dates
    are told until it takes the refund (a trial read "should reach you between 4 and 11
    Dec", then "could not be paid yet", in one second)."""
    reversals: list[str] = []
    """Provider refunds the provider reversed after paying them (each reopened the refund)."""
    reversal_open: bool = False
    """A reversal reopened the refund and an operator has not decided yet."""
