"""RefundWorkflow's behaviour on the dev server with in-memory activities: the fast loop."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from client.policy_source import load_policy
from tests.workflow.conftest import POLICIES, Env, policy_variant, tv_order
from tests.workflow.recording import keep_history
from tests.workflow.waiting import result_of, status_of, until
from workflows import names
from workflows.models import (
    ApproveInput,
    OperatorCancelInput,
    OperatorRetryInput,
    ProviderSettlement,
    RejectInput,
)
from workflows.refund.workflow import RefundWorkflow
from workflows.states import Awaiting, CancelReason, RefundState
from workflows.wording import closed_because


async def test_a_small_damaged_item_is_auto_approved_paid_once_and_audited(env: Env) -> None:
    handle = await env.start(tv_order(price=4200))
    result = await result_of(handle)
    assert result.state is RefundState.COMPLETED and result.amount == 4200
    provider_calls = [c for c in env.systems.calls if c.startswith("provider:")]
    assert provider_calls == [f"provider:{handle.id}:refund"]
    assert env.systems.events(handle.id) == [
        "requested",
        "auto_approve",
        "start_refund",
        "provider_confirmed",
    ]
    await keep_history(handle, "verified_auto_approved")


async def test_the_request_is_answered_with_the_first_step_in_one_round_trip(env: Env) -> None:
    # RefundClient.request starts with update-with-start: the answer is the refund's first
    # decision, never the moment before it (pending review, nobody asked to act yet).
    handle, answer = await env.start_answered(tv_order(price=4200))
    assert answer.state in (RefundState.REFUNDING, RefundState.COMPLETED)
    assert answer.amount == 4200
    await keep_history(handle, "first_step_update_auto_approved")
    handle, answer = await env.start_answered(tv_order(price=90000))
    assert answer.state is RefundState.PENDING_REVIEW
    assert answer.awaiting is Awaiting.REVIEWER
    await handle.cancel()


async def test_a_refund_above_support_authority_waits_and_only_a_lead_may_approve(
    env: Env,
) -> None:
    handle = await env.start(tv_order(), reason="changed_mind")  # 300.00 less 15 % fee
    waiting = await until(handle, lambda s: s.awaiting is Awaiting.REVIEWER)
    assert (waiting.amount, waiting.approval_by) == (25500, "lead")
    before = len((await status_of(handle)).timeline)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(RefundWorkflow.approve, ApproveInput(reviewer="sam"))
    assert "needs the lead role" in str(refused.value.cause)
    assert len((await status_of(handle)).timeline) == before  # nothing reached history
    await handle.execute_update(RefundWorkflow.approve, ApproveInput(reviewer="li", role="lead"))
    assert (await result_of(handle)).state is RefundState.COMPLETED


async def test_an_undecided_review_escalates_twice_then_expires(env: Env) -> None:
    handle = await env.start(tv_order(), reason="changed_mind")
    await until(handle, lambda s: s.awaiting is Awaiting.REVIEWER)
    await env.skipper.fast_forward(handle, timedelta(hours=25))
    level1 = await until(handle, lambda s: s.escalation_level == 1)
    assert level1.state is RefundState.PENDING_REVIEW
    await env.skipper.fast_forward(handle, timedelta(days=30))
    expired = await result_of(handle)
    assert (expired.state, expired.cancel_reason) == (RefundState.CANCELLED, CancelReason.EXPIRED)
    assert env.systems.events(handle.id).count("escalated") == 2
    assert expired.escalation_level == 0  # closed: nobody needs to act any more
    # and the closing notice says the level the status shows (one truth).
    assert env.systems.told[handle.id][-1].facts.escalation_level == 0
    await keep_history(handle, "escalated_twice_expired_level_cleared")
    assert not [c for c in env.systems.calls if c.startswith("provider:")]


async def test_a_refusal_goes_to_an_operator_whose_retry_pays_with_a_new_key(env: Env) -> None:
    env.systems.provider_answers = ["refuse", "succeeded"]
    handle = await env.start(tv_order(price=4200))
    stuck = await until(handle, lambda s: s.awaiting is Awaiting.OPERATOR)
    assert stuck.escalation_level == 2 and "card expired" in (stuck.provider_failure or "")
    retried = await handle.execute_update(
        RefundWorkflow.operator_retry, OperatorRetryInput(operator="kim")
    )
    assert retried.awaiting is Awaiting.PAYMENT_PROVIDER and retried.provider_failure is None
    done = await result_of(handle)
    assert done.state is RefundState.COMPLETED
    assert env.systems.provider_refunds.keys() == {f"{handle.id}:refund:2"}


async def test_a_retry_the_provider_leaves_pending_starts_afresh(env: Env) -> None:
    """A trial: after an operator's retry the provider still had the refund (pending), so
    nothing was for staff to do, yet the level stayed 2 and its ETA counted from the first
    attempt, days before."""
    env.systems.provider_answers = ["refuse", "pending"]
    handle = await env.start(tv_order(price=4200))
    await until(handle, lambda s: s.awaiting is Awaiting.OPERATOR)
    await env.skipper.fast_forward(handle, timedelta(days=3))  # the operator comes late
    retried = await handle.execute_update(
        RefundWorkflow.operator_retry, OperatorRetryInput(operator="kim")
    )
    pending = await until(handle, lambda s: any(e.event == "provider_pending" for e in s.timeline))
    assert (pending.awaiting, pending.escalation_level) == (Awaiting.PAYMENT_PROVIDER, 0)
    retried_at = retried.timeline[-1].at
    assert pending.eta_earliest is not None and pending.eta_earliest >= retried_at
    assert "taking longer" not in pending.message and "on its way" in pending.message
    described = await handle.describe()
    level = described.typed_search_attributes.get(names.SA_ESCALATION_LEVEL)
    assert level == 0  # not in `list --escalated` nor the Web UI's EscalationLevel > 0
    [second] = env.systems.provider_refunds.values()  # the refused one made none
    env.systems.settle(second.provider_refund_id, "succeeded")
    settled = ProviderSettlement(provider_refund_id=second.provider_refund_id, status="succeeded")
    await handle.signal(RefundWorkflow.provider_settled, settled)
    assert (await result_of(handle)).state is RefundState.COMPLETED
    await keep_history(handle, "retry_left_pending_starts_afresh")


async def test_an_operator_cannot_cancel_while_a_provider_refund_is_pending(env: Env) -> None:
    env.systems.provider_answers = ["pending"]
    handle = await env.start(tv_order(price=4200))
    await until(handle, lambda s: any(e.event == "provider_pending" for e in s.timeline))
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(
            RefundWorkflow.operator_cancel, OperatorCancelInput(operator="kim", reason="x")
        )
    [pending] = env.systems.provider_refunds.values()
    env.systems.settle(pending.provider_refund_id, "succeeded")  # then its webhook arrives
    settled = ProviderSettlement(provider_refund_id=pending.provider_refund_id, status="succeeded")
    await handle.signal(RefundWorkflow.provider_settled, settled)
    done = await result_of(handle)
    assert (
        done.state is RefundState.COMPLETED
        and done.provider_refund_id == pending.provider_refund_id
    )


async def test_a_request_beyond_what_is_left_on_the_order_is_declined(env: Env) -> None:
    order = tv_order(price=4200)
    env.systems.remaining[order.order_id] = 1000
    result = await (await env.start(order)).result()
    assert (result.state, result.cancel_reason) == (
        RefundState.CANCELLED,
        CancelReason.EXCEEDS_REFUNDABLE,
    )
    assert not [c for c in env.systems.calls if c.startswith("provider:")]


async def test_a_cancel_from_temporal_withdraws_a_refund_no_money_has_moved_for(
    env: Env,
) -> None:
    handle = await env.start(tv_order(), reason="changed_mind")
    await until(handle, lambda s: s.awaiting is Awaiting.REVIEWER)
    await handle.cancel()  # the Web UI's "Request Cancellation"
    result = await result_of(handle)
    assert (result.state, result.cancel_reason) == (RefundState.CANCELLED, CancelReason.WITHDRAWN)
    withdrawn = result.timeline[-1]
    assert (withdrawn.event, withdrawn.source) == ("withdraw", "temporal")
    assert "cancelled by an operator in Temporal" in withdrawn.reason
    # The customer did not withdraw it, and is not told they did.
    assert "was cancelled by our team; no money moved" in result.message
    # Staff read the same: not "withdrawn" alone, which reads as the customer's doing.
    assert closed_because(result) == "by temporal-operator, not by the customer"
    assert env.systems.events(handle.id)[-1] == "withdraw"  # audited, so the store releases it
    assert result.escalation_level == 0


async def test_a_cancel_from_temporal_after_money_may_have_moved_is_refused_on_the_record(
    env: Env,
) -> None:
    env.systems.provider_answers = ["pending"]
    handle = await env.start(tv_order(price=4200))
    pending_told = await until(
        handle, lambda s: any(e.event == "provider_pending" for e in s.timeline)
    )
    await handle.cancel()
    refused = await until(handle, lambda s: s.timeline[-1].source == "temporal")
    assert refused.state is RefundState.REFUNDING and refused.escalation_level == 1
    assert "refused" in refused.timeline[-1].reason
    # The same payment goes on (a trial: a second identical "on its way" notice, and the
    # SLA clock and the ETA started again from the cancel).
    # (Past the moment the same payment is asked again, when the ETA is briefly not known.)
    going_on = await until(
        handle, lambda s: s.awaiting is Awaiting.PAYMENT_PROVIDER and s.eta is not None
    )
    assert [e.event for e in going_on.timeline].count("provider_pending") == 1
    assert going_on.eta == pending_told.eta
    [pending] = env.systems.provider_refunds.values()
    env.systems.settle(pending.provider_refund_id, "succeeded")  # then its webhook arrives
    settled = ProviderSettlement(provider_refund_id=pending.provider_refund_id, status="succeeded")
    await handle.signal(RefundWorkflow.provider_settled, settled)
    done = await result_of(handle)
    assert done.state is RefundState.COMPLETED
    assert len(env.systems.provider_refunds) == 1  # the same key again: paid once
    told = [n.event for n in env.systems.told[handle.id]]
    assert told.count("provider_pending") == 1, told
    await keep_history(handle, "cancel_request_refused_while_refunding")


async def test_the_requester_cannot_approve_their_own_refund_whatever_role_they_claim(
    env: Env,
) -> None:
    handle = await env.start(tv_order(), reason="changed_mind", requested_by="cust_9")
    await until(handle, lambda s: s.awaiting is Awaiting.REVIEWER)
    before = await status_of(handle)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            RefundWorkflow.approve, ApproveInput(reviewer="cust_9", role="finance")
        )
    assert "requested this refund and cannot approve it" in str(refused.value.cause)
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(
            RefundWorkflow.reject, RejectInput(reviewer="Cust_9", reason="mine")
        )
    assert await status_of(handle) == before  # nothing reached history


SMALL = 4200


async def test_a_forged_start_is_declined_before_anything_is_held_or_paid(env: Env) -> None:
    """Anyone with Temporal access can start a refund: its money facts are checked."""
    real = tv_order(price=SMALL)
    env.systems.orders[real.order_id] = real
    inflated = real.model_copy(update={"captured_amount": 999_999})
    generous = policy_variant("standard-v2", auto_approve_limit=10_000_000)
    honest = load_policy(POLICIES, "standard-v2")
    rewritten = honest.model_copy(update={"document": generous.document})  # hash kept
    for order, pinned, why in [
        (inflated, None, "captured_amount differs"),
        (real, generous, "not one this worker knows"),
        (real, rewritten, "does not match its hash"),
    ]:
        handle = await env.start(order, pinned=pinned)
        result = await result_of(handle)
        await keep_history(handle, f"forged_start_declined_{why.split()[-1]}")
        assert (result.state, result.cancel_reason) == (
            RefundState.CANCELLED,
            CancelReason.INELIGIBLE,
        )
        assert why in result.timeline[-1].reason or (
            why == "not one this worker knows" and "policy unknown" in result.timeline[-1].reason
        )
    assert not [c for c in env.systems.calls if c.startswith(("provider:", "reserve"))]


async def test_above_the_four_eyes_threshold_two_different_people_approve(env: Env) -> None:
    handle = await env.start(tv_order(price=150_000), policy="standard-v3")  # 1500.00
    await until(handle, lambda s: s.awaiting is Awaiting.REVIEWER)
    # Above 500.00 the approver says what they checked: refused without it, nothing changed.
    with pytest.raises(WorkflowUpdateFailedError) as unchecked:
        await handle.execute_update(
            RefundWorkflow.approve, ApproveInput(reviewer="fin_1", role="finance")
        )
    assert "evidence is required above 500.00 USD" in str(unchecked.value.cause)
    first = ApproveInput(reviewer="fin_1", role="finance", evidence="photos in ticket 7")
    waiting = await handle.execute_update(RefundWorkflow.approve, first)
    assert waiting.evidence == "fin_1: photos in ticket 7"
    assert waiting.state is RefundState.PENDING_REVIEW
    assert "a second, different person must approve" in " ".join(waiting.policy_notes)
    await until(handle, lambda s: "first_approval" in env.systems.events(handle.id))  # audited
    for again in (first, ApproveInput(reviewer="cust_1", role="finance")):
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(RefundWorkflow.approve, again)
    # The review clock still runs between the two approvals.
    await env.skipper.fast_forward(handle, timedelta(hours=25))
    await until(handle, lambda s: s.escalation_level == 1)
    await handle.execute_update(
        RefundWorkflow.approve, ApproveInput(reviewer="fin_2", role="finance")
    )
    done = await result_of(handle)
    assert done.state is RefundState.COMPLETED and done.amount == 150_000
    approved = next(e for e in done.timeline if e.event == "approve")
    assert approved.actor == "fin_2" and "second approver after fin_1" in approved.reason
    assert done.evidence == "fin_1: photos in ticket 7"  # the first approver's serves both
    await keep_history(handle, "two_approvers_with_evidence")
