"""A refund the provider reversed, retried by an operator and paid again, then reset in
Temporal to its reopened run's first task (a red team): the new run re-sent the reversal's
entries, which the record holds, and waited for an operator while the record said
completed; the same operator's retry was taken for a re-send and recorded nothing. A run
whose re-sent entries are all behind a record that closed the refund now ends as any run
reset to before its record does: it records nothing, the record stands, nothing is paid."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from client.refund_client import RefundClient
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_reset_after_completion import reset_to_first_task
from tests.integration.test_reversals import _paid_refund, _reopened

pytestmark = pytest.mark.stack


async def test_a_reopened_refund_paid_again_then_reset_is_not_left_waiting(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    started, order = await _paid_refund(refunds, sandbox)
    refund_id = started.refund_id
    await faults.reverse(order["provider_refund_id"])
    await eventually(lambda: refunds.status(refund_id), _reopened)
    await refunds.operator_retry(refund_id, "op_1")
    await wait_for_state(refunds, refund_id, "completed")
    handle = refunds.temporal.get_workflow_handle(refund_id)
    await handle.result()  # the reopened run, closed
    paid = await refunds.audit(refund_id)
    assert [e.event for e in paid][-2:] == ["operator_retry", "provider_confirmed"], paid

    await reset_to_first_task(refunds, refund_id)

    # The reset run ends failed with the record's words; it never waits for an operator.
    with pytest.raises(WorkflowFailureError) as failed:  # (before: it waited, for ever)
        await asyncio.wait_for(refunds.temporal.get_workflow_handle(refund_id).result(), 30)
    cause = str(failed.value.cause)
    assert f"refund {refund_id} is completed on its record (entry {paid[-1].seq}" in cause, cause
    assert "the record stands" in cause
    described = await refunds.temporal.get_workflow_handle(refund_id).describe()
    assert described.status is WorkflowExecutionStatus.FAILED
    # The record, the status and the provider's refunds are as they were: paid once again.
    assert [(e.seq, e.event, e.actor) for e in await refunds.audit(refund_id)] == [
        (e.seq, e.event, e.actor) for e in paid
    ]
    assert (await refunds.status(refund_id)).state.value == "completed"
    provider_refunds = await sandbox.refunds(order["order_id"])
    assert sorted(r["status"] for r in provider_refunds) == ["failed", "succeeded"]
