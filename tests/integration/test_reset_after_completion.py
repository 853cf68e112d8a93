"""A Reset in Temporal's Web UI to before a refund was paid makes a new run that holds the
old state (pending review) while the refund's record says completed. Before, that run took a
rejection, recorded it after the payment and cancelled a paid refund; another person's
approval rewrote who approved it in the status. Now such a run records nothing and ends
failed with the record's words before it waits for anyone; a person acting is told the
refund is closed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from client.errors import RefundActionRefused
from client.refund_client import RefundClient
from tests.conftest import Sandbox
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_refund_flow import make_request
from tests.resets import reset_at_first_task
from workflows import names
from workflows.models import ReconcileInput

pytestmark = pytest.mark.stack


async def reset_to_first_task(refunds: RefundClient, refund_id: str, reapply: bool = True) -> None:
    """What the Web UI's Reset (to the first workflow task) does; `reapply=False`: without
    the signals and updates after that point (the Web UI's "reapply" unticked)."""
    await reset_at_first_task(refunds.temporal, refund_id, reapply=reapply)


@pytest.mark.parametrize("action", ["reject", "approve"])
async def test_a_run_reset_to_before_payment_ends_before_anyone_acts_on_the_paid_refund(
    refunds: RefundClient, sandbox: Sandbox, action: str
) -> None:
    order = await sandbox.order(amount=20000)
    refund_id = (await refunds.request(make_request(order))).refund_id  # needs a reviewer
    await refunds.approve(refund_id, reviewer="li", role="lead")
    paid = await wait_for_state(refunds, refund_id, "completed")
    await reset_to_first_task(refunds, refund_id)
    # The reset run holds pending review while its record says completed: before it waits
    # for a reviewer it ends failed with the record's words (it waited, and the same
    # person's action again was taken for a re-send of the record's and recorded nothing).
    handle = refunds.temporal.get_workflow_handle(refund_id)
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), 30)
    assert "the record stands" in str(failed.value.cause), failed.value.cause
    assert f"is completed on its record (entry {paid.timeline[-1].seq}" in str(failed.value.cause)

    with pytest.raises(RefundActionRefused) as refused:
        if action == "reject":
            await refunds.reject(refund_id, "bob", "no damage visible")
        else:  # the same state as recorded, by another person
            await refunds.approve(refund_id, reviewer="mei", role="finance")
    # The refund is closed, not "Temporal ended its workflow; reconciliation…".
    assert "Temporal ended its workflow" not in str(refused.value), refused.value
    assert "completed" in str(refused.value), refused.value

    # The record stands: the same trail, the same status, one provider refund.
    after = await refunds.status(refund_id)
    assert after.state.value == "completed"
    assert [(e.seq, e.event, e.actor) for e in after.timeline] == [
        (e.seq, e.event, e.actor) for e in paid.timeline
    ]
    audit = await refunds.audit(refund_id)
    assert [(e.event, e.actor) for e in audit] == [(e.event, e.actor) for e in paid.timeline]
    assert [r["status"] for r in await sandbox.refunds(order["order_id"])] == ["succeeded"]
    # For whoever looks in the Web UI: failed, and its search attribute says the record's
    # state, not the reset run's.
    described = await handle.describe()
    assert described.status is WorkflowExecutionStatus.FAILED
    assert described.typed_search_attributes[names.SA_REFUND_STATE] == "completed"


async def last_task_of(refunds: RefundClient, refund_id: str, run_id: str) -> int:
    handle = refunds.temporal.get_workflow_handle(refund_id, run_id=run_id)
    return max(
        e.event_id
        for e in (await handle.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    )


async def reset_to_last_task(refunds: RefundClient, refund_id: str, run_id: str) -> None:
    """The remedy reconciliation names: `temporal workflow reset -r <run> --type
    LastWorkflowTask`, which runs the refund on from that run's last step."""
    await refunds.temporal.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=refunds.temporal.namespace,
            workflow_execution=WorkflowExecution(workflow_id=refund_id, run_id=run_id),
            reason="run on",
            workflow_task_finish_event_id=await last_task_of(refunds, refund_id, run_id),
            request_id=str(uuid.uuid4()),
        )
    )


async def test_a_reset_run_that_ended_behind_the_record_is_not_closed_from_its_state(
    refunds: RefundClient, sandbox: Sandbox, faults: Any
) -> None:
    """A trial: reset to its first task while its provider refund was pending, then acted
    on (refused, the run failed), then paid by the provider. Reconciliation tried to close
    it from the failed run's state ('entry 2 is already recorded as … by alice, not … by
    li'). Now it says what happened and how to run the refund on from its record; doing
    that completes it, paid once."""
    await faults.set_faults(
        {
            "payment.pending_rate": "1",
            "payment.settle_after_ms": "4000",
            "payment.webhooks": "false",
        }
    )
    order = await sandbox.order(amount=20000)
    refund_id = (await refunds.request(make_request(order))).refund_id
    await refunds.approve(refund_id, reviewer="li", role="lead")
    await wait_for_state(refunds, refund_id, "refunding")
    recorded_by = (await refunds.temporal.get_workflow_handle(refund_id).describe()).run_id
    await reset_to_first_task(refunds, refund_id)
    # The reset run may still be taking its reservation again (when the first task ended
    # before it): until then it answers "still being checked", as any new refund does.
    refused = ""
    for _ in range(50):
        try:
            await refunds.approve(refund_id, reviewer="mei", role="finance")
        except RefundActionRefused as err:
            refused = str(err)
        if "still being checked" not in refused:
            break
        await asyncio.sleep(0.2)
    assert "is refunding on its record" in refused, refused
    await faults.clear_faults()
    await eventually(
        lambda: sandbox.refunds(order["order_id"]),
        lambda found: [r["status"] for r in found] == ["succeeded"],
        timeout=30,
    )
    report = await refunds.reconcile(ReconcileInput(grace_seconds=0))
    [closing] = [
        f
        for f in await (await refunds.store()).findings(refund_id=refund_id)
        if f.run_id == report.run_id
    ]
    assert (closing.kind, closing.action) == ("workflow_closed_abnormally", "escalated")
    assert closing.details["not_healed"].startswith(
        "its ended run was reset to before the refund's record: it ends with"
    ), closing.details
    assert "record with" in closing.details["not_healed"] and recorded_by not in str(closing)
    # A command that runs as given (a trial: `temporal workflow reset` requires --reason).
    assert "--type LastWorkflowTask --reason" in closing.details["not_healed"]
    assert "heal_error" not in closing.details
    assert (await refunds.status(refund_id)).state.value == "refunding"

    # The remedy it names: reset the run that wrote the record, to its last task.
    await reset_to_last_task(refunds, refund_id, recorded_by)
    await refunds.reconcile(ReconcileInput(grace_seconds=0))  # tells it the provider paid
    done = await wait_for_state(refunds, refund_id, "completed")
    assert [r["status"] for r in await sandbox.refunds(order["order_id"])] == ["succeeded"]
    assert done.provider_refund_id is not None


async def test_a_run_that_records_the_same_steps_again_shows_the_recorded_times(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    """An auto-approved refund reset to its first task completes again as the record did;
    its status and the customer's page showed the new run's times beside the audit's (a
    trial: "requested 07:42:57" for an audit's 07:42:42)."""
    order = await sandbox.order(amount=2000)
    refund_id = (await refunds.request(make_request(order, amount=2000))).refund_id
    await wait_for_state(refunds, refund_id, "completed")
    await asyncio.sleep(1.1)  # the new run's clock reads at least a second later
    await reset_to_first_task(refunds, refund_id)
    handle = refunds.temporal.get_workflow_handle(refund_id)
    await eventually(handle.describe, lambda d: d.status is WorkflowExecutionStatus.COMPLETED)
    recorded = {e.seq: e.at for e in await refunds.audit(refund_id)}
    status = await refunds.status(refund_id)
    assert {e.seq: e.at for e in status.timeline} == recorded
    tracked = [
        datetime.fromisoformat(e["at"]) for e in (await refunds.track(refund_id))["timeline"]
    ]
    assert tracked and set(tracked) <= set(recorded.values()), (tracked, recorded)
