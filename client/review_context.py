"""What a reviewer weighs beside a refund's status: the order's ledger, the requester's
other recent refunds, the order's requests that closed without paying, and whether Temporal
ended the refund's workflow before the refund ended. One shape for the API (which reads it
inside the boundary) and its clients."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from workflows.models import StatusView
from workflows.read_models import ClosedRequest, CustomerHistory, OrderLedger

if TYPE_CHECKING:
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


async def review_context(refunds: RefundClient, status: StatusView) -> ReviewContext:
    """Read inside the boundary, with the Temporal-direct client. A refund that ended as a
    refund does (completed, cancelled) is not asked about an abnormal end."""
    ended = None
    if status.state.value not in ("completed", "cancelled"):
        ended = await refunds.abnormal_end(status.refund_id)
    return ReviewContext(
        order_ledger=await refunds.order_ledger(status.order_id),
        customer_history=await refunds.customer_history(status.refund_id),
        ended_in_temporal=ended,
        closed_requests=await (await refunds.store()).closed_requests(
            status.order_id, status.refund_id
        ),
    )
