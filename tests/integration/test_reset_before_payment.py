"""A Reset in Temporal to before a refund's payment makes a run that pays again from the
start while the refund's record has moved past it. A refund whose payment the provider had
refused, waiting for an operator's decision, was paid with nobody deciding (a trial). A
payment goes out only while the record is at the run's last entry or still with the payment
provider; otherwise the run ends as any run reset to before its record does, and the record
stands. A completed refund is found paid, even once the provider forgot the key."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from client.errors import RefundActionRefused
from client.refund_client import RefundClient
from tests.conftest import Sandbox
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_refund_flow import make_request
from tests.integration.test_reset_after_completion import reset_to_first_task
from tests.integration.test_returns_policy import LINES
from workflows.models import StatusView

pytestmark = pytest.mark.stack


async def run_ended(refunds: RefundClient, refund_id: str) -> None:
    handle = refunds.temporal.get_workflow_handle(refund_id)
    await eventually(handle.describe, lambda d: d.status is not WorkflowExecutionStatus.RUNNING)


async def ended_failed_saying(refunds: RefundClient, refund_id: str) -> str:
    handle = refunds.temporal.get_workflow_handle(refund_id)
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    return str(failed.value.cause)


async def receive_again_unless_reapplied(refunds: RefundClient, refund_id: str) -> None:
    handle = refunds.temporal.get_workflow_handle(refund_id)
    for _ in range(100):
        if (await handle.describe()).status is not WorkflowExecutionStatus.RUNNING:
            return
        if (await refunds.status(refund_id, live=True)).awaiting.value == "customer":
            with contextlib.suppress(RefundActionRefused):  # reapplied meanwhile
                await refunds.item_received(refund_id, "warehouse-7")
            return
        await asyncio.sleep(0.1)


async def test_a_completed_refund_reset_to_its_start_is_not_paid_again(
    refunds: RefundClient, sandbox: Sandbox, faults: object
) -> None:
    order = await sandbox.order(amount=20000)
    refund_id = (await refunds.request(make_request(order, amount=2000))).refund_id
    paid = await wait_for_state(refunds, refund_id, "completed")
    # The provider has forgotten the key, as Stripe does after 24 hours.
    await faults.set_faults({"payment.idempotency_retention_s": "0"})  # type: ignore[attr-defined]
    await reset_to_first_task(refunds, refund_id)

    await run_ended(refunds, refund_id)
    # The run found the payment by the refund id in its metadata (kept forever), as the fast
    # path's first try does, and completed as the record did (not refused by the guard).
    assert [r["amount"] for r in await sandbox.refunds(order["order_id"])] == [2000]
    described = await refunds.temporal.get_workflow_handle(refund_id).describe()
    assert described.status is WorkflowExecutionStatus.COMPLETED
    after = await refunds.status(refund_id)
    assert after.state.value == "completed"
    assert [(e.seq, e.event) for e in after.timeline] == [(e.seq, e.event) for e in paid.timeline]


async def refused_waiting_for_an_operator(
    refunds: RefundClient, sandbox: Sandbox, faults: Any
) -> tuple[dict[str, Any], str, StatusView]:
    """A returns-v1 refund whose payment the provider refused once its item came back,
    waiting for an operator; the provider's faults cleared, so a new attempt would be paid."""
    order = await sandbox.order(lines=LINES)
    refund_id = (await refunds.request(make_request(order, amount=2400))).refund_id
    await eventually(lambda: refunds.status(refund_id), lambda s: s.awaiting.value == "customer")
    await faults.set_faults({"payment.refuse": "expired_card"})
    await refunds.item_received(refund_id, "warehouse-7")
    waiting = await eventually(
        lambda: refunds.status(refund_id), lambda s: s.awaiting.value == "operator"
    )
    await faults.clear_faults()
    return order, refund_id, waiting


async def test_a_refund_waiting_for_an_operator_reset_to_its_start_waits_for_one_again(
    returns_refunds: RefundClient, sandbox: Sandbox, faults: object
) -> None:
    order, refund_id, waiting = await refused_waiting_for_an_operator(
        returns_refunds, sandbox, faults
    )
    await reset_to_first_task(returns_refunds, refund_id)
    # Temporal reapplies the warehouse's update to the new run, or the warehouse says so
    # again (the trial): either way the reset run moves on to pay.
    await receive_again_unless_reapplied(returns_refunds, refund_id)

    # Not paid: the reset run waits for an operator after the record's entries.
    again = await eventually(
        lambda: returns_refunds.status(refund_id),
        lambda s: s.timeline[-1].seq > waiting.timeline[-1].seq,
    )
    assert await sandbox.refunds(order["order_id"]) == []  # the refusal made none
    assert (again.state.value, again.awaiting.value) == ("refunding", "operator")
    audit = await returns_refunds.audit(refund_id)
    assert [(e.seq, e.event) for e in audit[: len(waiting.timeline)]] == [
        (e.seq, e.event) for e in waiting.timeline
    ]
    # After them, this run's: the guard's refusal, and the audit saying two runs wrote.
    past = [(e.actor, e.reason) for e in audit if e.seq > waiting.timeline[-1].seq]
    assert past[0][0] == "payment-guard", past
    assert "past this run's last entry (3)" in past[0][1] and "An operator decides" in past[0][1]
    assert "audit conflict" in past[-1][1], past
    # Every view shows the whole record, the other run's entries in their places.
    assert [(e.seq, e.event, e.at) for e in again.timeline] == [
        (e.seq, e.event, e.at) for e in audit
    ]
    # The customer was told once that it could not be paid yet, not again at the reset (a
    # trial: a second "could not be paid yet" at each Reset).
    told = [m["body"] for m in await sandbox.inbox(refund_id)]
    assert sum("could not be paid yet" in body for body in told) == 1, told
    live = await returns_refunds.status(refund_id, live=True)
    assert (live.awaiting.value, live.timeline[-1].seq) == ("operator", again.timeline[-1].seq)

    # The operator decides: paid once.
    await returns_refunds.operator_retry(refund_id, "ops-1")
    await wait_for_state(returns_refunds, refund_id, "completed")
    assert [r["amount"] for r in await sandbox.refunds(order["order_id"])] == [2400]


async def test_an_action_refused_by_a_run_behind_its_record_says_so_and_what_to_do(
    returns_refunds: RefundClient, sandbox: Sandbox, faults: object
) -> None:
    """A trial: reset to its first task, the run waits for the item again (Temporal's reapply
    of the warehouse's update is refused when it comes before the run's approval; here none
    is reapplied), while the record waits for an operator: `operator retry` was refused
    "waiting for the customer", with nothing to say why or what to do."""
    order, refund_id, _ = await refused_waiting_for_an_operator(returns_refunds, sandbox, faults)
    await reset_to_first_task(returns_refunds, refund_id, reapply=False)
    await eventually(
        lambda: returns_refunds.status(refund_id, live=True),
        lambda s: s.awaiting.value == "customer",
    )
    with pytest.raises(RefundActionRefused) as refused:
        await returns_refunds.operator_retry(refund_id, "ops-1")
    said = str(refused.value)
    assert "Its record is further on: refunding, an operator" in said, said
    assert "reset the run that wrote the record to its last task" in said
    assert await sandbox.refunds(order["order_id"]) == []
