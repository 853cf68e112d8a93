"""Reopening a refund the provider reversed after paying it (issue 11, item 3).

The provider's word that a paid refund was taken back arrives by webhook (after the refund's
workflow completed, its signal has nowhere to go) or is found by reconciliation. Either way
it is a money fact, so it is confirmed with the provider before anything changes; then a new
run of the refund's workflow starts under the same id from the closed run's whole state
(workflows/refund/reversal.py), and an operator decides what happens next.

Idempotent: only the refund's latest run, only when it completed paid by exactly the
provider refund that was reversed, and only one new run (Temporal refuses a second start
while one runs; a reopened refund that completed again is paid by another provider refund).
"""

from __future__ import annotations

from enum import StrEnum

import structlog
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.ports import PaymentProvider
from workflows import names
from workflows.activity_contracts import NO_MONEY
from workflows.models import ProviderSettlement
from workflows.refund.case import ContinuedRefundInput
from workflows.states import RefundState

log = structlog.get_logger("refundflow.reversals")


class Reopened(StrEnum):
    """What became of a reported reversal."""

    REOPENED = "reopened"
    ALREADY = "already reopened"
    RUNNING = "still running"
    """The refund's run is open: it takes the provider's word itself (signal)."""
    NOT_REVERSED = "not reversed"
    """The provider does not say so (yet): nothing changes."""
    NOT_PAID_BY_IT = "not paid by that provider refund"
    NOT_FOUND = "no such refund"


async def reopen_if_reversed(
    temporal: Client,
    provider: PaymentProvider,
    task_queue: str,
    refund_id: str,
    source: str,
    provider_refund_id: str | None = None,
) -> Reopened:
    """Reopen `refund_id` if the provider confirms that the refund it paid it with (or
    `provider_refund_id`, when the report names one) was reversed."""
    handle = temporal.get_workflow_handle(refund_id)
    try:
        described = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return Reopened.NOT_FOUND
        raise
    if described.status == WorkflowExecutionStatus.RUNNING:
        return Reopened.RUNNING
    if described.status != WorkflowExecutionStatus.COMPLETED:
        return Reopened.NOT_PAID_BY_IT  # terminated or failed: reconciliation's other finding
    carried: ContinuedRefundInput = await handle.query(
        names.QUERY_CARRY_OVER, result_type=ContinuedRefundInput
    )
    paid_by = carried.carried.provider_refund_id
    if carried.carried.state is not RefundState.COMPLETED or paid_by is None:
        return Reopened.NOT_PAID_BY_IT  # cancelled, or paid outside the provider
    if provider_refund_id not in (None, paid_by):
        return Reopened.NOT_PAID_BY_IT  # an earlier attempt's news: the refund is paid
    answer = await provider.get_refund(paid_by)
    if answer.status not in NO_MONEY:
        return Reopened.NOT_REVERSED
    reversal = ProviderSettlement(
        provider_refund_id=paid_by,
        status="canceled" if answer.status == "canceled" else "failed",
        failure_code=answer.failure_code,
        source=source,
    )
    reopening = carried.model_copy(update={"reversal": reversal})
    try:
        await temporal.start_workflow(
            "RefundWorkflow",
            reopening,
            id=refund_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            # The one way a finished refund runs again: a confirmed reversal.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=described.typed_search_attributes,
            static_summary=await described.static_summary(),
        )
    except WorkflowAlreadyStartedError:
        return Reopened.ALREADY
    log.warning("refund_reopened", refund_id=refund_id, provider_refund_id=paid_by)
    return Reopened.REOPENED
