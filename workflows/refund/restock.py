"""Returning a refunded order's lines to stock: once each, whatever is retried."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import names
    from workflows.models import RestockInput, RestockResult
    from workflows.refund.case import RefundCase

INVENTORY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=[names.INVENTORY_REFUSED_ERROR],
)


async def restock_lines(case: RefundCase) -> None:
    """Return each refunded line to stock once (keyed per line); a refusal does not undo
    the refund: it is recorded and escalated for the warehouse to sort out."""
    for line in case.inp.resolved.lines:
        try:
            await _restock_line(case.inp.refund_id, line.sku, line.quantity)
        except ActivityError as err:
            cause = err.cause.message if isinstance(err.cause, ApplicationError) else str(err)
            case.escalate("inventory", f"restock of {line.sku} refused: {cause}", "inventory")


async def _restock_line(refund_id: str, sku: str, quantity: int) -> None:
    await workflow.execute_activity(
        names.ACTIVITY_RESTOCK_LINE,
        RestockInput(
            refund_id=refund_id,
            sku=sku,
            quantity=quantity,
            idempotency_key=f"{refund_id}:restock:{sku}",
        ),
        result_type=RestockResult,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=INVENTORY_RETRY,
        summary=f"restock {sku}",
    )
