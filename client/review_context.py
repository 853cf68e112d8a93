"""What a reviewer weighs beside a refund's status: the order's ledger, the requester's
other recent refunds, the order's requests that closed without paying, and whether Temporal
ended the refund's workflow before the refund ended. One shape for the API (which reads it
inside the boundary) and its clients."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from pydantic import BaseModel

from workflows import second_asks, wording
from workflows.facts import NO_ETA
from workflows.models import StatusView
from workflows.read_models import ClosedRequest, CustomerHistory, Finding, OrderLedger
from workflows.vocabulary import PERSON_DECIDES

if TYPE_CHECKING:
    from activities.pg_store import PostgresRefundStore
    from client.refund_client import RefundClient


class ReviewContext(BaseModel):
    order_ledger: OrderLedger | None = None
    """What every refund of the order holds and has refunded, per line (None: nothing yet)."""
    customer_history: CustomerHistory | None = None
    """The requester's other refunds over the policy's window (None: the store cannot say)."""
    ended_in_temporal: str | None = None
    """How Temporal ended the workflow (terminated, timed out ...) before the refund ended."""
    closed_requests: list[ClosedRequest] = []
    """The order's other refunds that closed without paying: a request rejected once and
    asked again under a new key is in front of its reviewer with the first answer."""
    alike_requests: list[str] = []
    """The order's other refunds, open or paid, that ask for the same (units, or value) for
    the same reason: the same request twice, or two items alike; a person tells them apart
    (second_asks.alike)."""
    open_findings: list[Finding] = []
    """Reconciliation's findings on this refund, and on its order as a whole (money paid
    around refundflow, units refunded twice), that still stand (`anomalies --open`): what
    it escalated to a person, which the refund's own escalation level does not show."""


async def review_context(refunds: RefundClient, status: StatusView) -> ReviewContext:
    """Read inside the boundary, with the Temporal-direct client. A refund that ended as a
    refund does (completed, cancelled) is not asked about an abnormal end."""
    ended = None
    store = await refunds.store()
    if status.state.value not in ("completed", "cancelled"):
        ended = await refunds.abnormal_end(status.refund_id)
    return ReviewContext(
        order_ledger=await refunds.order_ledger(status.order_id),
        customer_history=await refunds.customer_history(status.refund_id),
        ended_in_temporal=ended,
        closed_requests=await store.closed_requests(status.order_id, status.refund_id),
        alike_requests=await _alike_requests(store, status),
        open_findings=await _open_findings(store, status),
    )


def alike_note(refund_ids: list[str]) -> str:
    """What `status` says of `ReviewContext.alike_requests` (the console says the same)."""
    asks = "asks" if len(refund_ids) == 1 else "ask"
    return (
        f"note: the same request twice? {', '.join(refund_ids)} of this order {asks} for the"
        " same, for the same reason: reject one as duplicate_request, or approve both if they"
        " are two items alike"
    )


async def _alike_requests(store: PostgresRefundStore, status: StatusView) -> list[str]:
    every = await store.holds(status.order_id, but="")
    mine = next((hold for hold in every if hold.refund_id == status.refund_id), None)
    if mine is None:  # released (closed unpaid), or never held
        return []
    others = [hold for hold in every if hold.refund_id != status.refund_id]
    return [hold.refund_id for hold in second_asks.alike(mine, others)]


async def _open_findings(store: PostgresRefundStore, status: StatusView) -> list[Finding]:
    """The refund's own open findings, then its order's (a trial: an operator recorded a
    payment elsewhere on an order whose provider had paid 10.00 around refundflow, and the
    refund's status said nothing of it)."""
    own = [
        await _with_the_last_heal_words(store, f)
        for f in await store.findings(refund_id=status.refund_id, open_only=True)
    ]
    on_order = await store.findings(order_id=status.order_id, open_only=True)
    # The refund's own include its order's that name it: each once (a trial read one twice).
    seen = {f.finding_id for f in own}
    return own + [f for f in on_order if f.refund_id is None and f.finding_id not in seen]


_HEAL_WORDS = ("not_healed", PERSON_DECIDES)


async def _with_the_last_heal_words(store: PostgresRefundStore, finding: Finding) -> Finding:
    """A finding a `--no-heal` run reported carries no heal words: the last healing run's
    (why it was not healed, that a person decides) stand until a run heals it (a trial's
    status lost the reset it had to run after a monitoring `reconcile --no-heal`)."""
    if finding.action != "reported" or "not_healed" in finding.details:
        return finding
    run = finding.details.get("run_id")  # the same ended run's, not an earlier episode's
    if finding.kind != "workflow_closed_abnormally" or run is None:
        return finding
    earlier = await store.findings(refund_id=finding.refund_id, kind=finding.kind, limit=500)
    said = next(
        (
            f.details
            for f in earlier
            if "not_healed" in f.details and f.details.get("run_id") == run
        ),
        None,
    )
    if said is None:
        return finding
    words = {key: said[key] for key in _HEAL_WORDS if key in said}
    return finding.model_copy(update={"details": {**finding.details, **words}})


_HOW_IT_ENDS = (
    "closes it (cancelled when no money moved, completed once the payment provider has paid"
    " it) or escalates it to a person"
)
RECONCILIATION_CLOSES = f"reconciliation {_HOW_IT_ENDS}"
"""What becomes of a refund Temporal ended (activities/closing.py), wherever it is said."""
STOPPED_NEXT_STEP = f"Nothing moves it: Temporal ended its workflow. Reconciliation {_HOW_IT_ENDS}."
ESCALATED_WHEN_ENDED = (
    "reconciliation left it to a person, who runs it on as its finding says"
    " (`refundflow anomalies --refund` with its id)"
)
"""What becomes of it once reconciliation escalated it (`escalated_when_ended`)."""
ITEM_BACK = (
    "send it back to the customer, or, if they asked again, record it on their new refund"
    " (`refundflow received NEW_REFUND`)"
)
"""What to do with a returned item the warehouse holds for a refund closed unpaid."""
ITEM_LEFT_WITH_THE_WAREHOUSE = f"; the item is not recorded on it: {ITEM_BACK}"
"""A receipt refused because its refund closed unpaid (a trial: nothing said what to do)."""
STOPPED_ESCALATED = f"Nothing moves it: Temporal ended its workflow, and {ESCALATED_WHEN_ENDED}."


def escalated_when_ended(context: ReviewContext) -> bool:
    """Reconciliation left the ended refund to a person (not a heal it tries again, such as
    a payment still pending or Temporal busy: a review)."""
    return any(_left_to_a_person(f) for f in context.open_findings)


def _left_to_a_person(finding: Finding) -> bool:
    return finding.kind == "workflow_closed_abnormally" and bool(
        finding.details.get(PERSON_DECIDES)
    )


async def left_to_a_person(opening: Awaitable[PostgresRefundStore], refund_id: str) -> bool:
    """`escalated_when_ended` from the store alone (an action refused on an ended refund: a
    trial's `received` was told reconciliation "closes it", which had escalated it); False
    when the store cannot say (only the refusal's wording rides on it)."""
    try:
        store = await opening
        for finding in await store.findings(refund_id=refund_id, open_only=True):
            if _left_to_a_person(await _with_the_last_heal_words(store, finding)):
                return True
    except Exception:
        return False
    return False


def as_stopped(status: StatusView, escalated: bool = False) -> StatusView:
    """A refund whose workflow Temporal ended before the refund ended, as people are told of
    it until reconciliation closes or escalates it: with our team (escalated), and without
    the ETA of a decision or payment that cannot come. Its state stays the one recorded."""
    if status.facts is None:
        return status
    facts = status.facts.model_copy(update={"stopped": True, "received": False, **NO_ETA})
    told = {
        "message": wording.customer_message(facts),
        "support_reply": wording.support_reply(facts),
    }
    return status.model_copy(
        update={
            "facts": facts,  # with our team, in the customer's words
            # Escalated (`escalated`: its open workflow_closed_abnormally finding), it is
            # not "reconciliation closes it": a trial's returns refund waited for a person.
            "next_step": STOPPED_ESCALATED if escalated else STOPPED_NEXT_STEP,
            "action_by": "a person (reconciliation escalated it)"
            if escalated
            else "reconciliation, then a person if money may have moved",
            **NO_ETA,
            **told,
        }
    )
