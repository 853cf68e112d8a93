"""Durable timers, tested in virtual time with the dev server's per-workflow time skipping."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest
from temporalio.testing import TimeSkipper

from client.refund_client import RefundClient
from tests.conftest import Sandbox
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_refund_flow import make_request
from workflows.models import StatusView

pytestmark = pytest.mark.stack


async def review_refund_after(
    refunds: RefundClient, skipper: TimeSkipper, sandbox: Sandbox, hours: float
) -> StatusView:
    """A refund waiting for review, after `hours` of virtual time have passed."""
    order = await sandbox.order(amount=20000)
    status = await refunds.request(make_request(order))
    handle = refunds.temporal.get_workflow_handle(status.refund_id)
    await skipper.fast_forward(handle, timedelta(hours=hours))
    return status


async def test_review_escalates_after_sla_then_again_then_expires(
    refunds: RefundClient, skipper: TimeSkipper, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(amount=20000)
    status = await refunds.request(make_request(order))
    handle = refunds.temporal.get_workflow_handle(status.refund_id)
    assert status.escalation_level == 0

    await skipper.fast_forward(handle, timedelta(hours=25))
    level1 = await eventually(
        lambda: refunds.status(status.refund_id), lambda s: s.escalation_level == 1
    )
    assert (level1.state.value, level1.awaiting.value) == ("pending_review", "reviewer")
    assert level1.timeline[-1].event == "escalated"
    assert "24 h" in level1.timeline[-1].reason
    assert "escalated" in level1.message

    escalated = await eventually(
        lambda: refunds.list(escalated=True, order_id=order["order_id"]),
        lambda rows: len(rows) == 1,
    )
    assert escalated[0].escalation_level == 1

    async def visible(query: str) -> list[str]:
        full = f"OrderId = '{order['order_id']}' AND {query}"
        return [w.id async for w in refunds.temporal.list_workflows(full)]

    # What operators filter on in the Web UI follows the refund, not just its final state.
    wanted = [status.refund_id]
    query = "RefundState = 'pending_review' AND RefundAwaiting = 'reviewer' AND EscalationLevel = 1"
    assert await eventually(lambda: visible(query), lambda ids: ids == wanted)

    await skipper.fast_forward(handle, timedelta(hours=24))
    await eventually(lambda: refunds.status(status.refund_id), lambda s: s.escalation_level == 2)

    # Policy: review expires 336 h after the request; we are at 49 h.
    await skipper.fast_forward(handle, timedelta(hours=290))
    expired = await wait_for_state(refunds, status.refund_id, "cancelled")
    assert expired.cancel_reason == "expired"
    assert await sandbox.refunds(order["order_id"]) == []


async def test_approval_after_escalation_still_pays(
    refunds: RefundClient, skipper: TimeSkipper, sandbox: Sandbox
) -> None:
    status = await review_refund_after(refunds, skipper, sandbox, hours=25)
    await eventually(lambda: refunds.status(status.refund_id), lambda s: s.escalation_level == 1)
    await refunds.approve(status.refund_id, "lead-dana")
    done = await wait_for_state(refunds, status.refund_id, "completed")
    # Paid: nobody needs to act any more (the escalation stays in the timeline and audit).
    assert done.escalation_level == 0
    assert [e.escalation_level for e in done.timeline if e.event == "escalated"] == [1]
    assert len(await sandbox.refunds(status.order_id)) == 1


async def test_no_timer_fires_before_its_time(
    refunds: RefundClient, skipper: TimeSkipper, sandbox: Sandbox
) -> None:
    status = await review_refund_after(refunds, skipper, sandbox, hours=23)
    # fast_forward returns once the workflow's clock has moved 23 h: the 24 h SLA timer must
    # not have fired. Two hours later it must have.
    assert (await refunds.status(status.refund_id)).escalation_level == 0
    await asyncio.sleep(0.5)
    assert (await refunds.status(status.refund_id)).escalation_level == 0
    handle = refunds.temporal.get_workflow_handle(status.refund_id)
    await skipper.fast_forward(handle, timedelta(hours=2))
    await eventually(lambda: refunds.status(status.refund_id), lambda s: s.escalation_level == 1)
