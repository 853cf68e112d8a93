"""Every status a payment provider gives a refund (issue 11): requires_action tells the
customer what to do and keeps waiting; canceled moves no money and waits for an operator,
who may cancel the refund (the provider holds nothing live)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.workflow.conftest import Env, tv_order
from tests.workflow.fakes import INSTRUCTIONS
from tests.workflow.recording import keep_history
from tests.workflow.waiting import result_of, until
from workflows import wording
from workflows.models import OperatorCancelInput, OperatorPaidElsewhereInput
from workflows.refund.workflow import RefundWorkflow
from workflows.states import Awaiting, CancelReason, RefundState

SMALL = 4200  # auto-approved under every policy


async def test_requires_action_tells_the_customer_then_the_refund_settles(env: Env) -> None:
    env.systems.provider_answers = ["requires_action"]
    handle = await env.start(tv_order(price=SMALL))
    waiting = await until(
        handle, lambda s: any(e.event == "provider_requires_action" for e in s.timeline)
    )
    assert waiting.awaiting is Awaiting.PAYMENT_PROVIDER
    # No stop stuck to its address, and no dates: they count from when the customer acts.
    assert waiting.message.endswith(INSTRUCTIONS) and waiting.eta is None, waiting.message
    # Staff read that the customer acts, not the provider (a trial).
    assert waiting.action_by.startswith("the customer, as the payment provider asks")
    assert waiting.next_step.startswith("The customer does what the payment provider asks")
    told = [n for n in env.systems.told[handle.id] if n.event == "provider_requires_action"]
    assert len(told) == 1 and told[0].facts.action_required == INSTRUCTIONS
    notice = wording.notification(told[0].facts)
    assert notice["template"] == "refunding.action_required"
    assert notice["subject"].endswith(": action needed") and INSTRUCTIONS in notice["body"]
    # Polls that still see requires_action do not tell the customer again.
    await env.skipper.fast_forward(handle, timedelta(minutes=5))
    await until(handle, lambda s: env.systems.calls.count("poll") >= 2)
    [refund] = env.systems.provider_refunds.values()
    env.systems.settle(refund.provider_refund_id, "succeeded")
    await env.skipper.fast_forward(handle, timedelta(minutes=10))
    done = await result_of(handle)
    assert done.state is RefundState.COMPLETED and len(env.systems.paid()) == 1
    assert [e.event for e in done.timeline].count("provider_requires_action") == 1
    assert INSTRUCTIONS not in done.message
    await keep_history(handle, "requires_action_then_paid")


async def test_a_refund_the_provider_cancels_waits_for_an_operator_who_may_cancel(
    env: Env,
) -> None:
    env.systems.provider_answers = ["pending"]
    handle = await env.start(tv_order(price=SMALL))
    await until(handle, lambda s: any(e.event == "provider_pending" for e in s.timeline))
    [refund] = env.systems.provider_refunds.values()
    env.systems.settle(refund.provider_refund_id, "canceled")
    await env.skipper.fast_forward(handle, timedelta(minutes=2))
    waiting = await until(handle, lambda s: s.awaiting is Awaiting.OPERATOR)
    assert waiting.provider_failure is not None and "canceled" in waiting.provider_failure
    # The provider holds nothing live for it: an operator may close it.
    await handle.execute_update(
        RefundWorkflow.operator_cancel,
        OperatorCancelInput(operator="op_1", source="cli", reason="provider gave up"),
    )
    done = await result_of(handle)
    assert done.state is RefundState.CANCELLED
    assert done.cancel_reason is CancelReason.PAYMENT_FAILED
    assert env.systems.paid() == []


async def test_an_operator_pays_elsewhere_with_proof_once_the_provider_holds_nothing(
    env: Env,
) -> None:
    env.systems.provider_answers = ["refuse"]
    handle = await env.start(tv_order(price=SMALL))
    await until(handle, lambda s: s.awaiting is Awaiting.OPERATOR)
    done_by = OperatorPaidElsewhereInput(operator="op_1", proof="SEPA transfer TX-4411")
    await handle.execute_update(RefundWorkflow.operator_paid_elsewhere, done_by)
    done = await result_of(handle)
    assert done.state is RefundState.COMPLETED and env.systems.paid() == []
    last = done.timeline[-1]
    assert (last.actor, last.source) == ("operator", "operator")
    assert "paid outside the payment provider" in last.reason and "TX-4411" in last.reason
    assert [e.event for e in done.timeline][-2] == "paid_elsewhere"
    # The customer is not told the money went to their card, nor when a card would show it.
    assert done.facts is not None and done.facts.paid_elsewhere is True
    assert "issued to your original" not in done.message and "another way" in done.message
    assert done.eta is None and "should reach you" not in done.message
    [paid] = [n for n in env.systems.told[handle.id] if n.facts.state is RefundState.COMPLETED]
    assert wording.notification(paid.facts)["template"] == "completed.paid_elsewhere"
    assert "TX-4411" not in wording.customer_message(paid.facts)  # the proof is staff's
    await keep_history(handle, "operator_paid_elsewhere")


async def test_paid_elsewhere_is_refused_when_the_order_would_pay_out_above_its_capture(
    env: Env,
) -> None:
    """Money the provider paid on the order around this refund (a dashboard refund) leaves
    less than this refund's amount: the record is refused, asked at that moment, and the
    refund still waits for an operator, who may cancel it."""
    env.systems.provider_answers = ["refuse"]
    order = tv_order(price=SMALL)
    env.systems.paid_around[order.order_id] = 1000
    handle = await env.start(order)
    await until(handle, lambda s: s.awaiting is Awaiting.OPERATOR)
    asked = OperatorPaidElsewhereInput(operator="op_1", proof="SEPA transfer TX-9")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(RefundWorkflow.operator_paid_elsewhere, asked)
    said = str(refused.value.cause)
    assert f"order {order.order_id} captured 42.00 USD; 10.00 USD of it is paid or held" in said
    assert "32.00 USD is left, less than this refund's 42.00 USD" in said
    status = await until(handle, lambda s: s.awaiting is Awaiting.OPERATOR)
    assert status.state is RefundState.REFUNDING and "paid_elsewhere" not in [
        e.event for e in status.timeline
    ]
    assert env.systems.calls.count("payouts") == 1
    cancel = OperatorCancelInput(operator="op_1", source="cli", reason="paid at the dashboard")
    await handle.execute_update(RefundWorkflow.operator_cancel, cancel)
    assert (await result_of(handle)).state is RefundState.CANCELLED
    await keep_history(handle, "paid_elsewhere_refused_above_capture")


async def test_paid_elsewhere_is_refused_while_the_provider_may_still_pay(env: Env) -> None:
    env.systems.provider_answers = ["pending"]
    handle = await env.start(tv_order(price=SMALL))
    await until(handle, lambda s: any(e.event == "provider_pending" for e in s.timeline))
    asked = OperatorPaidElsewhereInput(operator="op_1", proof="TX-1")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(RefundWorkflow.operator_paid_elsewhere, asked)
    assert "mark it paid elsewhere" in str(refused.value.cause)
    status = await until(handle, lambda s: s.state is RefundState.REFUNDING)
    assert status.awaiting is Awaiting.PAYMENT_PROVIDER


async def test_an_operator_has_the_provider_cancel_a_refund_that_requires_action(
    env: Env,
) -> None:
    env.systems.provider_answers = ["requires_action"]
    handle = await env.start(tv_order(price=SMALL))
    await until(handle, lambda s: any(e.event == "provider_requires_action" for e in s.timeline))
    cancel = OperatorCancelInput(operator="op_1", source="cli", reason="customer has no account")
    answered = await handle.execute_update(RefundWorkflow.operator_cancel, cancel)
    assert answered.state is RefundState.CANCELLED
    done = await result_of(handle)
    assert done.cancel_reason is CancelReason.PAYMENT_FAILED
    [refund] = env.systems.provider_refunds.values()
    assert refund.status == "canceled" and env.systems.paid() == []
    assert "canceled" in done.timeline[-1].reason and done.timeline[-1].actor == "op_1"
    # Told once, that it was cancelled: no "delayed" notice on the way.
    told = [n.event for n in env.systems.told[handle.id]]
    assert told[-1] == "operator_cancel" and "escalated" not in told
    await keep_history(handle, "requires_action_cancelled_by_operator")


async def test_a_pending_refund_the_provider_will_not_cancel_goes_on_unchanged(
    env: Env,
) -> None:
    env.systems.provider_answers = ["pending"]
    handle = await env.start(tv_order(price=SMALL))
    waiting = await until(handle, lambda s: any(e.event == "provider_pending" for e in s.timeline))
    cancel = OperatorCancelInput(operator="op_1", source="cli", reason="asked by customer")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(RefundWorkflow.operator_cancel, cancel)
    assert "only one that requires action can be canceled" in str(refused.value.cause)
    unchanged = await until(handle, lambda s: s.awaiting is Awaiting.PAYMENT_PROVIDER)
    assert unchanged.state is RefundState.REFUNDING
    assert len(unchanged.timeline) == len(waiting.timeline)
    [refund] = env.systems.provider_refunds.values()
    env.systems.settle(refund.provider_refund_id, "succeeded")
    await env.skipper.fast_forward(handle, timedelta(minutes=2))
    assert (await result_of(handle)).state is RefundState.COMPLETED
