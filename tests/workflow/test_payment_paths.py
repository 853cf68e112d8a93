"""The payment paths that wait, fall back or need a person, in virtual time: the durable
fallback, the refund-SLA escalation, the operator reminder, poll backoff, the paid-elsewhere
exit, a second refusal, the return window, withdrawal. Each history can be recorded for
replay (tests/workflow/recording.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from tests.workflow.conftest import Env, policy_variant, tv_order
from tests.workflow.recording import keep_history
from tests.workflow.waiting import result_of, until
from workflows.models import (
    ApproveInput,
    CancelInput,
    ItemReceivedInput,
    OperatorCancelInput,
    OperatorRetryInput,
    ProviderRefundResult,
    ProviderSettlement,
)
from workflows.refund.workflow import RefundWorkflow
from workflows.states import Awaiting, CancelReason, RefundState
from workflows.wording import closed_because

SMALL = 4200  # auto-approved under every policy


async def cancelled_by_operator(env: Env, handle: WorkflowHandle[Any, Any]) -> None:
    """An operator cancels a refund whose payment failed: cancelled, nothing paid."""
    await handle.execute_update(
        RefundWorkflow.operator_cancel, OperatorCancelInput(operator="kim", reason="card gone")
    )
    cancelled = await result_of(handle)
    assert (cancelled.state, cancelled.cancel_reason) == (
        RefundState.CANCELLED,
        CancelReason.PAYMENT_FAILED,
    )
    assert env.systems.paid() == []


def events(env: Env, refund_id: str) -> list[str]:
    return env.systems.events(refund_id)


async def healed_by_reconciliation(env: Env, handle: WorkflowHandle[Any, Any]) -> None:
    """A provider refund of the refund's amount succeeded: reconciliation's heal signal
    completes the refund with it."""
    env.systems.provider_refunds[f"{handle.id}:refund:manual"] = ProviderRefundResult(
        provider_refund_id="re_paid", status="succeeded", amount=SMALL, currency="USD"
    )
    healed = ProviderSettlement(
        provider_refund_id="re_paid", status="succeeded", source="reconcile"
    )
    await handle.signal(RefundWorkflow.provider_settled, healed)
    done = await result_of(handle)
    assert done.state is RefundState.COMPLETED and done.provider_refund_id == "re_paid"


async def test_a_provider_down_beyond_the_fast_path_budget_falls_back_looks_up_and_pays_once(
    env: Env,
) -> None:
    # 503s for longer than the in-process tries (three, about 3 s), then it works.
    env.systems.provider_down_for = 5
    handle = await env.start(tv_order(price=SMALL))
    done = await result_of(handle, timeout=60)
    assert done.state is RefundState.COMPLETED
    key = f"{handle.id}:refund"
    assert [r.idempotency_key for r in env.systems.paid()] == [key]
    # The durable activity ran after the local attempts and looked up before sending.
    assert key in env.systems.durable_lookups


async def test_a_lost_fast_path_call_goes_durable_looks_up_first_and_pays_once(env: Env) -> None:
    env.systems.fast_path_broken = True
    handle = await env.start(tv_order(price=SMALL))
    done = await result_of(handle)
    assert done.state is RefundState.COMPLETED
    key = f"{handle.id}:refund"
    assert env.systems.durable_lookups == [key]
    assert [r.idempotency_key for r in env.systems.paid()] == [key]
    await keep_history(handle, "fast_path_lost_durable_fallback")


@pytest.mark.slow  # an activity retrying in the background stops time skipping: real time
async def test_a_provider_that_never_answers_escalates_at_the_refund_sla(env: Env) -> None:
    env.systems.fast_path_broken = True
    env.systems.provider_down_for = 10_000
    quick_sla = policy_variant("standard-v2", refund_sla_hours=0.001)  # 3.6 s
    env.systems.known_policies.add(quick_sla.content_hash)  # deployed for this test
    handle = await env.start(tv_order(price=SMALL), pinned=quick_sla)
    stalled = await until(handle, lambda s: s.escalation_level == 1, timeout=30)
    assert stalled.state is RefundState.REFUNDING
    assert "provider not answering within 0.001 h" in stalled.timeline[-1].reason
    env.systems.provider_down_for = 0
    assert (await result_of(handle, timeout=60)).state is RefundState.COMPLETED
    assert len(env.systems.paid()) == 1
    await keep_history(handle, "provider_down_escalated_at_refund_sla")


async def test_an_operator_wait_is_reminded_daily_and_a_second_refusal_waits_again(
    env: Env,
) -> None:
    env.systems.provider_answers = ["refuse"]
    handle = await env.start(tv_order(price=SMALL))
    await until(handle, lambda s: s.awaiting is Awaiting.OPERATOR)
    await env.skipper.fast_forward(handle, timedelta(hours=25))
    reminded = await until(
        handle, lambda s: "still waiting for an operator" in s.timeline[-1].reason
    )
    assert reminded.escalation_level == 2
    await handle.execute_update(RefundWorkflow.operator_retry, OperatorRetryInput(operator="kim"))
    again = await until(
        handle, lambda s: s.awaiting is Awaiting.OPERATOR and s.timeline[-1].event == "escalated"
    )
    assert again.provider_failure and "card expired" in again.provider_failure
    with pytest.raises(WorkflowUpdateFailedError):  # a person, not the SDK, decides twice
        await handle.execute_update(RefundWorkflow.approve, ApproveInput(reviewer="kim"))
    await cancelled_by_operator(env, handle)
    await keep_history(handle, "refused_twice_reminded_then_operator_cancel")


async def test_a_pending_refund_is_polled_with_backoff_until_it_settles(env: Env) -> None:
    env.systems.provider_answers = ["pending"]
    handle = await env.start(tv_order(price=SMALL))
    await until(handle, lambda s: any(e.event == "provider_pending" for e in s.timeline))
    # 30 s, 60 s, 120 s, 240 s: four polls within eight minutes, still pending.
    await env.skipper.fast_forward(handle, timedelta(minutes=8))
    await until(handle, lambda s: env.systems.calls.count("poll") >= 4)
    polls = env.systems.calls.count("poll")
    assert polls <= 5  # backoff: not one every 30 s (that would be 16)
    [pending] = env.systems.provider_refunds.values()
    env.systems.settle(pending.provider_refund_id, "succeeded")
    await env.skipper.fast_forward(handle, timedelta(minutes=10))
    done = await result_of(handle)
    assert done.state is RefundState.COMPLETED
    assert "settled via poll" in done.timeline[-1].reason
    await keep_history(handle, "pending_settled_by_poll")


async def test_a_refund_left_pending_escalates_in_the_slas_own_words(env: Env) -> None:
    """A poll notices the SLA passed (here at 90 s of a 36 s SLA; in production up to an
    hour late): the escalation names the SLA, not the time waited ("72.0676 h", a trial)."""
    env.systems.provider_answers = ["pending"]
    quick_sla = policy_variant("standard-v2", refund_sla_hours=0.01)  # 36 s
    env.systems.known_policies.add(quick_sla.content_hash)  # deployed for this test
    handle = await env.start(tv_order(price=SMALL), pinned=quick_sla)
    pending = await until(handle, lambda s: any(e.event == "provider_pending" for e in s.timeline))
    # The refund it waits on is named (a trial: null while the timeline named it).
    [waited_on] = [r.provider_refund_id for r in env.systems.provider_refunds.values()]
    assert pending.provider_refund_id == waited_on, pending
    await env.skipper.fast_forward(handle, timedelta(minutes=2))
    stalled = await until(handle, lambda s: s.escalation_level == 1)
    said = [e.reason for e in stalled.timeline if e.event == "escalated"]
    assert said == ["level 1: refund not settled after 0.01 h"], said
    # Staff are told it is theirs to chase, as the customer is told "our team is following
    # it up" (a trial: "the payment provider (nothing for staff to do)").
    assert stalled.action_by.endswith("staff follow it up with the provider"), stalled.action_by


async def test_a_refund_waiting_for_an_operator_completes_when_the_provider_paid_after_all(
    env: Env,
) -> None:
    env.systems.provider_answers = ["refuse"]
    handle = await env.start(tv_order(price=SMALL))
    await until(handle, lambda s: s.awaiting is Awaiting.OPERATOR)
    # A forged word of payment is checked with the provider and ignored, on the record.
    forged = ProviderSettlement(provider_refund_id="re_x", status="succeeded", source="webhook")
    await handle.signal(RefundWorkflow.provider_settled, forged)
    ignored = await until(handle, lambda s: s.timeline[-1].event == "settlement_unconfirmed")
    assert ignored.awaiting is Awaiting.OPERATOR and "no such refund" in ignored.timeline[-1].reason
    # Not put on the provider: anyone who reaches Temporal can name any sender (a red team's
    # forged one read "by payment-provider via webhook").
    said = ignored.timeline[-1]
    assert (said.actor, said.source) == ("unverified sender", "signal"), said
    assert said.reason.startswith("a signal that names webhook as its sender said"), said
    # Reconciliation found a provider refund for it that did succeed (its heal signal).
    await healed_by_reconciliation(env, handle)
    await keep_history(handle, "operator_wait_forged_then_healed")


async def test_a_webhook_the_provider_does_not_bear_out_changes_nothing(env: Env) -> None:
    env.systems.provider_answers = ["pending"]
    handle = await env.start(tv_order(price=SMALL))
    await until(handle, lambda s: any(e.event == "provider_pending" for e in s.timeline))
    [pending] = env.systems.provider_refunds.values()
    early = ProviderSettlement(provider_refund_id=pending.provider_refund_id, status="succeeded")
    await handle.signal(RefundWorkflow.provider_settled, early)  # the provider: still pending
    ignored = await until(handle, lambda s: s.timeline[-1].event == "settlement_unconfirmed")
    assert ignored.state is RefundState.REFUNDING and "says pending" in ignored.timeline[-1].reason
    # A signal that names no sender (the Web UI's Send a Signal) is not put on the provider's
    # webhook (a trial's forged one read "by payment-provider via webhook").
    said = ignored.timeline[-1]
    assert (said.actor, said.source) == ("unverified sender", "signal"), said
    assert said.reason.startswith("a signal said provider refund"), said
    env.systems.settle(pending.provider_refund_id, "succeeded")
    await handle.signal(RefundWorkflow.provider_settled, early)  # now it is true
    assert (await result_of(handle)).state is RefundState.COMPLETED
    await keep_history(handle, "webhook_confirmed_with_the_provider")


async def test_an_item_not_returned_within_the_window_cancels_the_refund(env: Env) -> None:
    handle = await env.start(tv_order(price=SMALL), policy="returns-v1")
    await until(handle, lambda s: s.awaiting is Awaiting.CUSTOMER)
    await env.skipper.fast_forward(handle, timedelta(days=15))
    done = await result_of(handle)
    assert (done.state, done.cancel_reason) == (
        RefundState.CANCELLED,
        CancelReason.RETURN_WINDOW_ELAPSED,
    )
    assert env.systems.provider_refunds == {}
    await keep_history(handle, "return_window_elapsed")


async def test_the_warehouses_receipt_is_answered_with_the_payment_under_way(env: Env) -> None:
    """A trial: the answer to `received` read "refunding", awaiting the customer ("send the
    item back"), next step "moves on by itself"."""
    handle = await env.start(tv_order(price=SMALL), policy="returns-v1")
    await until(handle, lambda s: s.awaiting is Awaiting.CUSTOMER)
    answer = await handle.execute_update(
        RefundWorkflow.item_received, ItemReceivedInput(actor="warehouse-7", source="warehouse")
    )
    assert (answer.state, answer.awaiting) == (RefundState.REFUNDING, Awaiting.PAYMENT_PROVIDER)
    assert answer.eta is None  # not before the provider has taken it
    assert (await result_of(handle)).state is RefundState.COMPLETED


async def test_the_customer_withdraws_while_waiting_for_review(env: Env) -> None:
    handle = await env.start(tv_order(), reason="changed_mind")
    await until(handle, lambda s: s.awaiting is Awaiting.REVIEWER)
    await handle.execute_update(
        RefundWorkflow.cancel, CancelInput(actor="cust_1", reason="found it", source="web")
    )
    done = await result_of(handle)
    assert (done.state, done.cancel_reason) == (RefundState.CANCELLED, CancelReason.WITHDRAWN)
    assert "USD was withdrawn." in done.message and "our team" not in done.message
    assert closed_because(done) == "withdrawn by cust_1"
    assert events(env, handle.id)[-1] == "withdraw"
    await keep_history(handle, "withdrawn_in_review")


async def test_more_than_is_left_on_the_order_is_declined_before_review(env: Env) -> None:
    order = tv_order(price=SMALL)
    env.systems.remaining[order.order_id] = 1000
    handle = await env.start(order)
    done = await result_of(handle)
    assert done.cancel_reason is CancelReason.EXCEEDS_REFUNDABLE
    await keep_history(handle, "exceeds_refundable")


async def test_an_operator_cannot_cancel_a_refund_the_provider_holds_a_live_refund_for(
    env: Env,
) -> None:
    """The refusal went to an operator, but meanwhile someone paid it from the provider's
    dashboard: cancelling now would lose track of money that moved."""
    env.systems.provider_answers = ["refuse"]
    handle = await env.start(tv_order(price=SMALL))
    await until(handle, lambda s: s.awaiting is Awaiting.OPERATOR)
    env.systems.provider_refunds[f"{handle.id}:dashboard"] = ProviderRefundResult(
        provider_refund_id="re_dash", status="succeeded", amount=SMALL, currency="USD"
    )
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            RefundWorkflow.operator_cancel, OperatorCancelInput(operator="kim", reason="x")
        )
    assert "re_dash has paid 42.00 USD, this refund's amount: retry instead" in str(
        refused.value.cause
    )
    still = await until(handle, lambda s: s.awaiting is Awaiting.OPERATOR)
    assert still.state is RefundState.REFUNDING


async def test_a_settlement_of_another_amount_under_its_id_is_not_its_payment(env: Env) -> None:
    env.systems.provider_answers = ["refuse"]
    handle = await env.start(tv_order(price=SMALL))
    await until(handle, lambda s: s.awaiting is Awaiting.OPERATOR)
    # 1.00 refunded at the provider's dashboard, our refund id typed into its metadata.
    env.systems.provider_refunds[f"{handle.id}:refund:dashboard"] = ProviderRefundResult(
        provider_refund_id="re_dashboard", status="succeeded", amount=100, currency="USD"
    )
    said = ProviderSettlement(provider_refund_id="re_dashboard", status="succeeded")
    await handle.signal(RefundWorkflow.provider_settled, said)
    ignored = await until(handle, lambda s: s.timeline[-1].event == "settlement_unconfirmed")
    assert ignored.state is RefundState.REFUNDING and ignored.awaiting is Awaiting.OPERATOR
    assert "succeeded for 1.00 USD, not 42.00 USD" in ignored.timeline[-1].reason
    # The provider's refund of its amount, found by reconciliation, is its payment.
    await healed_by_reconciliation(env, handle)
    await keep_history(handle, "other_amount_settlement_ignored_then_healed")
