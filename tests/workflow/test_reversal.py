"""A paid refund the provider takes back (issue 11, item 3): a new run of the refund's
workflow reopens it from the closed run's whole state; the customer is told in the one
wording; nothing is paid again until an operator decides, and then under a new key."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowUpdateFailedError

from activities.reversals import Reopened, reopen_if_reversed
from tests.workflow.conftest import Env, tv_order
from tests.workflow.fakes import FakeSystems
from tests.workflow.recording import keep_history
from tests.workflow.waiting import result_of, until
from workflows import wording
from workflows.models import (
    ApproveInput,
    OperatorPaidElsewhereInput,
    OperatorRetryInput,
    ProviderRefundResult,
)
from workflows.refund.workflow import RefundWorkflow
from workflows.states import Awaiting, RefundState

SMALL = 4200  # auto-approved under every policy


class FakeProvider:
    """The provider's word on one refund, from the fake systems' ledger."""

    def __init__(self, systems: FakeSystems) -> None:
        self._systems = systems

    async def get_refund(self, provider_refund_id: str) -> ProviderRefundResult:
        [refund] = [
            r
            for r in self._systems.provider_refunds.values()
            if r.provider_refund_id == provider_refund_id
        ]
        return refund


async def _reopen(env: Env, refund_id: str, provider_refund_id: str | None = None) -> Reopened:
    return await reopen_if_reversed(
        env.skipper.client,
        FakeProvider(env.systems),  # type: ignore[arg-type]
        env.task_queue,
        refund_id,
        "webhook",
        provider_refund_id,
    )


async def test_a_reversed_refund_reopens_and_is_paid_again_only_on_an_operator_s_retry(
    env: Env,
) -> None:
    handle = await env.start(tv_order(price=SMALL))
    paid = await result_of(handle)
    assert paid.state is RefundState.COMPLETED
    [first] = env.systems.paid()
    # The provider has not taken it back: nothing reopens.
    assert await _reopen(env, handle.id) is Reopened.NOT_REVERSED
    env.systems.settle(first.provider_refund_id, "failed")
    assert await _reopen(env, handle.id, "re_some_other") is Reopened.NOT_PAID_BY_IT
    assert await _reopen(env, handle.id, first.provider_refund_id) is Reopened.REOPENED
    reopened = env.skipper.client.get_workflow_handle_for(RefundWorkflow.run, handle.id)
    waiting = await until(reopened, lambda s: s.awaiting is Awaiting.OPERATOR)
    assert await _reopen(env, handle.id) is Reopened.RUNNING
    assert waiting.state is RefundState.REFUNDING and waiting.escalation_level == 2
    assert [e.event for e in waiting.timeline].count("requested") == 1  # the whole state
    told = [n for n in env.systems.told[handle.id] if n.event == "provider_reversed"]
    assert len(told) == 1 and told[0].facts.payment_reversed
    assert wording.notification(told[0].facts)["template"] == "refunding.reversed"
    assert "returned to us by the payment provider" in waiting.message
    # People other than an operator cannot move it, and nothing was paid again.
    with pytest.raises(WorkflowUpdateFailedError):
        await reopened.execute_update(RefundWorkflow.approve, ApproveInput(reviewer="li"))
    assert env.systems.paid() == []

    await reopened.execute_update(
        RefundWorkflow.operator_retry, OperatorRetryInput(operator="op_1")
    )
    done = await result_of(reopened)
    assert done.state is RefundState.COMPLETED and done.escalation_level == 0
    assert env.systems.told[reopened.id][-1].facts.escalation_level == 0  # as the status
    [second] = env.systems.paid()
    assert second.provider_refund_id != first.provider_refund_id
    assert second.idempotency_key != first.idempotency_key  # a new key: a new payment
    assert "returned to us" not in done.message
    await keep_history(reopened, "reversed_then_paid_again")


@pytest.mark.parametrize("wait_for_the_operator_wait", [True, False])
async def test_a_reversed_refund_may_be_paid_elsewhere_in_its_reopened_run(
    env: Env, wait_for_the_operator_wait: bool
) -> None:
    """The order's payouts are asked in the reopened run too (a review: no history had a
    patch asked there, where the run's first store write may still be in flight); asked
    at once as well as once the run waits, both recorded for replay."""
    handle = await env.start(tv_order(price=SMALL))
    await result_of(handle)
    [first] = env.systems.paid()
    env.systems.settle(first.provider_refund_id, "failed")
    assert await _reopen(env, handle.id, first.provider_refund_id) is Reopened.REOPENED
    reopened = env.skipper.client.get_workflow_handle_for(RefundWorkflow.run, handle.id)
    if wait_for_the_operator_wait:
        await until(reopened, lambda s: s.awaiting is Awaiting.OPERATOR)
    paid = OperatorPaidElsewhereInput(operator="op_1", proof="SEPA TX-5150")
    for _ in range(40):  # at once: the update may meet the run before it has reopened
        try:
            await reopened.execute_update(RefundWorkflow.operator_paid_elsewhere, paid)
            break
        except WorkflowUpdateFailedError as err:
            assert "the refund is completed" in str(err.cause), err.cause
            await asyncio.sleep(0.05)
    done = await result_of(reopened)
    assert done.state is RefundState.COMPLETED and done.facts is not None
    assert done.facts.paid_elsewhere and env.systems.paid() == []
    assert env.systems.calls.count("payouts") == 1
    when = "after_the_wait" if wait_for_the_operator_wait else "at_once"
    await keep_history(reopened, f"reversed_then_paid_elsewhere_{when}")
