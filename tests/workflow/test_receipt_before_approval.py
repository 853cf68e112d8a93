"""A returned item the warehouse records while its refund waits for review is kept, and the
refund is paid as soon as it is approved (patch `receipt-before-approval`). A trial: the
receipt was refused and lost; the customer was then asked for an item the warehouse had, and
the return window closed the refund without paying."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.resets import reset_at_first_task
from tests.workflow.conftest import Env, tv_order
from tests.workflow.recording import keep_history
from tests.workflow.waiting import result_of, status_of, until
from workflows.models import ApproveInput, ItemReceivedInput, Notice, RejectInput
from workflows.refund.workflow import RefundWorkflow
from workflows.states import Awaiting, RefundState
from workflows.wording import customer_message

RECEIVED = ItemReceivedInput(actor="warehouse-7", source="warehouse")


async def test_a_receipt_before_the_approval_is_kept_and_paid_on_approval(env: Env) -> None:
    handle = await env.start(tv_order(), reason="changed_mind", policy="returns-v1")
    await until(handle, lambda s: s.awaiting is Awaiting.REVIEWER)

    kept = await handle.execute_update(RefundWorkflow.item_received, RECEIVED)
    # Still the reviewer's to decide, the receipt on the record by whoever made it.
    assert (kept.state, kept.awaiting) == (RefundState.PENDING_REVIEW, Awaiting.REVIEWER)
    entry = kept.timeline[-1]
    assert (entry.event, entry.actor, entry.source) == ("item_received", "warehouse-7", "warehouse")
    assert "kept, and paid once approved" in entry.reason
    assert env.systems.paid() == []
    # A second receipt of the same item is refused, naming the one kept.
    with pytest.raises(WorkflowUpdateFailedError) as again:
        await handle.execute_update(RefundWorkflow.item_received, RECEIVED)
    assert f"already recorded as received (entry {entry.seq}, before the approval)" in str(
        again.value.cause
    )

    await handle.execute_update(RefundWorkflow.approve, ApproveInput(reviewer="li", role="lead"))
    done = await result_of(handle)
    # Paid without waiting for the item: no return window, nobody asked to send it back.
    assert done.state is RefundState.COMPLETED
    assert [p.amount for p in env.systems.paid()] == [done.amount]
    events = [e.event for e in done.timeline]
    assert events[events.index("approve") + 1] == "start_refund", events
    assert "refund on approval: the returned item received before the approval" in (
        done.timeline[events.index("start_refund")].reason
    )
    told = env.systems.told[handle.id]
    assert not [n for n in told if n.facts.item_return_required], told
    assert all(n.facts.eta_kind != "return" for n in told), told
    # Back in stock once paid, as for a receipt after the approval.
    assert env.systems.restocked
    await keep_history(handle, "received_before_approval")


async def test_a_refund_rejected_after_its_receipt_pays_nothing(env: Env) -> None:
    handle = await env.start(tv_order(), reason="changed_mind", policy="returns-v1")
    await until(handle, lambda s: s.awaiting is Awaiting.REVIEWER)
    await handle.execute_update(RefundWorkflow.item_received, RECEIVED)
    await handle.execute_update(
        RefundWorkflow.reject, RejectInput(reviewer="li", reason="not our item")
    )
    done = await result_of(handle)
    assert done.state is RefundState.CANCELLED
    assert env.systems.paid() == [] and not env.systems.restocked
    assert [e.event for e in done.timeline][-2:] == ["item_received", "reject"]


async def test_a_receipt_for_a_refund_paid_on_approval_is_refused(env: Env) -> None:
    handle = await env.start(tv_order(), policy="standard-v2")
    await until(handle, lambda s: s.awaiting is Awaiting.REVIEWER)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(RefundWorkflow.item_received, RECEIVED)
    assert "refunds on approval: no returned item is expected" in str(refused.value.cause)
    assert "item_received" not in [e.event for e in (await status_of(handle)).timeline]


async def test_a_refund_with_nothing_to_return_is_paid_on_approval(env: Env) -> None:
    """returns-v2 names reasons with nothing to send back: a trial's 10.00 late-delivery
    refund under returns-v1 asked the customer to send "the item" back, and closed unpaid
    when nothing came."""
    handle = await env.start(tv_order(), reason="late_delivery", policy="returns-v2")
    await until(handle, lambda s: s.awaiting is Awaiting.REVIEWER)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(RefundWorkflow.item_received, RECEIVED)
    assert "refunds late_delivery on approval: no returned item is expected" in str(
        refused.value.cause
    )
    approved = await handle.execute_update(
        RefundWorkflow.approve, ApproveInput(reviewer="li", role="lead")
    )
    assert approved.awaiting is not Awaiting.CUSTOMER, approved
    done = await result_of(handle)
    assert done.state is RefundState.COMPLETED and len(env.systems.paid()) == 1
    started = next(e for e in done.timeline if e.event == "start_refund")
    assert started.reason == "refund on approval: nothing to return for late_delivery"
    told = env.systems.told[handle.id]
    assert not [n for n in told if n.facts.item_return_required], told
    await keep_history(handle, "nothing_to_return_paid_on_approval")


async def test_a_refund_with_an_item_to_return_under_returns_v2_waits_for_it(env: Env) -> None:
    handle = await env.start(tv_order(), reason="changed_mind", policy="returns-v2")
    await until(handle, lambda s: s.awaiting is Awaiting.REVIEWER)
    await handle.execute_update(RefundWorkflow.approve, ApproveInput(reviewer="li", role="lead"))
    waiting = await until(handle, lambda s: s.awaiting is Awaiting.CUSTOMER)
    assert waiting.state is RefundState.APPROVED and waiting.eta_kind == "return"
    assert env.systems.paid() == []


async def test_a_review_holding_a_kept_receipt_does_not_expire(env: Env) -> None:
    """A review: expired after its receipt was kept, the refund closed without paying and
    without a word of the item; the customer had neither. It waits for a reviewer, staff
    reminded daily, the customer told no closing date."""
    handle = await env.start(tv_order(), reason="changed_mind", policy="returns-v1")
    await until(handle, lambda s: s.awaiting is Awaiting.REVIEWER)
    await handle.execute_update(RefundWorkflow.item_received, RECEIVED)
    await env.skipper.fast_forward(handle, timedelta(hours=49))
    await until(handle, lambda s: s.escalation_level == 2)
    await env.skipper.fast_forward(handle, timedelta(hours=340))  # past the 336 h expiry
    held = await until(
        handle,
        lambda s: any("the request does not expire" in e.reason for e in s.timeline),
        timeout=30,
    )
    assert (held.state, held.awaiting) == (RefundState.PENDING_REVIEW, Awaiting.REVIEWER)
    assert held.eta is None and "closes" not in held.message, held.message
    await env.skipper.fast_forward(handle, timedelta(hours=25))
    await until(handle, lambda s: "still waiting for a reviewer" in s.timeline[-1].reason)
    assert "expire" not in [e.event for e in (await status_of(handle)).timeline]
    told = env.systems.told[handle.id]
    assert not [n for n in told if n.facts.state is RefundState.CANCELLED], told
    await handle.execute_update(RefundWorkflow.approve, ApproveInput(reviewer="li", role="lead"))
    done = await result_of(handle)
    assert done.state is RefundState.COMPLETED and len(env.systems.paid()) == 1
    await keep_history(handle, "kept_receipt_review_not_expired")


async def test_a_receipt_kept_after_the_last_escalation_takes_back_its_closing_date(
    env: Env,
) -> None:
    """A review: the level-2 notice said the request closes unpaid on a date; the receipt
    kept after it holds that off, and the customer was never told."""
    handle = await env.start(tv_order(), reason="changed_mind", policy="returns-v1")
    await until(handle, lambda s: s.awaiting is Awaiting.REVIEWER)
    await env.skipper.fast_forward(handle, timedelta(hours=49))
    await until(handle, lambda s: s.escalation_level == 2)
    await handle.execute_update(RefundWorkflow.item_received, RECEIVED)
    told = await until_told(env, handle.id, lambda n: n.event == "item_received")
    assert told.facts.eta is None and told.facts.escalation_level == 2, told.facts
    assert "closes" not in customer_message(told.facts), customer_message(told.facts)


async def until_told(env: Env, refund_id: str, which: Callable[[Notice], bool]) -> Notice:
    for _ in range(200):
        found = [n for n in env.systems.told.get(refund_id, []) if which(n)]
        if found:
            return found[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(env.systems.told.get(refund_id))


async def test_a_kept_receipt_reapplied_after_a_reset_waits_for_the_first_step(env: Env) -> None:
    """Reset in Temporal to its first task, the new run meets its reapplied receipt while its
    first step is decided: kept once it is (a trial: refused, so the approval asked the
    customer for an item the warehouse held)."""
    handle = await env.start(tv_order(), reason="changed_mind", policy="returns-v1")
    await until(handle, lambda s: s.awaiting is Awaiting.REVIEWER)
    await handle.execute_update(RefundWorkflow.item_received, RECEIVED)
    await reset_at_first_task(env.skipper.client, handle.id)
    handle = env.skipper.client.get_workflow_handle_for(RefundWorkflow.run, handle.id)
    kept = await until(handle, lambda s: "item_received" in [e.event for e in s.timeline])
    assert (kept.state, kept.awaiting) == (RefundState.PENDING_REVIEW, Awaiting.REVIEWER)
    assert kept.escalation_level == 0, kept.timeline  # the record's own entries again
    await handle.execute_update(RefundWorkflow.approve, ApproveInput(reviewer="li", role="lead"))
    done = await result_of(handle)
    assert done.state is RefundState.COMPLETED
    assert [p.amount for p in env.systems.paid()] == [done.amount]
    events = [e.event for e in done.timeline]
    assert events[:4] == ["requested", "item_received", "approve", "start_refund"], events
    await keep_history(handle, "kept_receipt_reapplied_after_reset")


async def test_a_receipt_the_record_kept_is_held_by_a_run_that_never_saw_it(env: Env) -> None:
    """Reset in Temporal without its updates reapplied, the run knew nothing of the receipt
    its record holds; its approval meets it (an audit conflict): paid at once, not asking
    the customer for an item the warehouse has (a trial)."""
    env.systems.other_run_entries, env.systems.other_run_event = 1, "item_received"
    handle = await env.start(tv_order(), reason="changed_mind", policy="returns-v1")
    await until(handle, lambda s: s.awaiting is Awaiting.REVIEWER)
    await handle.execute_update(RefundWorkflow.approve, ApproveInput(reviewer="li", role="lead"))
    done = await result_of(handle)
    assert done.state is RefundState.COMPLETED
    assert [p.amount for p in env.systems.paid()] == [done.amount]
    stored = env.systems.audit[handle.id]
    assert [stored[s].event for s in sorted(stored)][:5] == [
        "requested", "item_received", "approve", "escalated", "start_refund",
    ]  # fmt: skip
    await keep_history(handle, "kept_receipt_found_in_the_record")
