"""An approval ends the review's escalation: the refund is decided, nobody is late. A trial
found a returns refund approved at level 2 still in `list --escalated`, Temporal's
`EscalationLevel > 0` and the escalated-refunds metric while it waited for the item; a
standard refund approved at level 2 could then never escalate for its provider (its stall
level had to exceed 2)."""

from __future__ import annotations

from datetime import timedelta

from tests.workflow.conftest import Env, tv_order
from tests.workflow.recording import keep_history
from tests.workflow.waiting import result_of, until
from workflows import names
from workflows.models import ApproveInput, ItemReceivedInput
from workflows.refund.workflow import RefundWorkflow
from workflows.states import Awaiting, RefundState

RECEIVED = ItemReceivedInput(actor="warehouse-7", source="warehouse")


async def test_an_approval_after_two_escalations_brings_the_level_back_to_0(env: Env) -> None:
    handle = await env.start(tv_order(), reason="changed_mind", policy="returns-v1")
    await until(handle, lambda s: s.awaiting is Awaiting.REVIEWER)
    await env.skipper.fast_forward(handle, timedelta(hours=49))
    await until(handle, lambda s: s.escalation_level == 2)
    approved = await handle.execute_update(
        RefundWorkflow.approve, ApproveInput(reviewer="li", role="lead")
    )
    assert (approved.state, approved.awaiting) == (RefundState.APPROVED, Awaiting.CUSTOMER)
    assert approved.escalation_level == 0, approved
    # Its audit entry and the customer's notice say the level the status shows.
    assert approved.timeline[-1].event == "approve" and approved.timeline[-1].escalation_level == 0
    assert env.systems.told[handle.id][-1].facts.escalation_level == 0
    described = await handle.describe()
    assert described.typed_search_attributes.get(names.SA_ESCALATION_LEVEL) == 0
    await handle.execute_update(RefundWorkflow.item_received, RECEIVED)
    assert (await result_of(handle)).state is RefundState.COMPLETED
    await keep_history(handle, "escalated_twice_then_approved")
