"""The sandbox provider's every status on the real stack (issue 11): a refund that needs the
customer first (requires_action) tells them what to do and is paid once it settles; one the
provider cancels moves no money and waits for an operator."""

from __future__ import annotations

import pytest

from client.refund_client import RefundClient
from sandbox.admin_client import SandboxAdmin
from sandbox.records import ACTION_INSTRUCTIONS
from tests.conftest import Sandbox
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_refund_flow import make_request

pytestmark = pytest.mark.stack


async def test_requires_action_is_told_to_the_customer_then_paid(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    await faults.set_faults(
        {
            "payment.pending_rate": "1",
            "payment.requires_action_rate": "1",
            "payment.settle_after_ms": "1500",
        }
    )
    order = await sandbox.order(amount=4000)
    started = await refunds.request(make_request(order))
    done = await wait_for_state(refunds, started.refund_id, "completed")
    assert [e.event for e in done.timeline].count("provider_requires_action") == 1
    inbox = await eventually(lambda: sandbox.inbox(started.refund_id), lambda rows: len(rows) >= 5)
    asked = [n for n in inbox if n["subject"].endswith(": action needed")]
    assert len(asked) == 1 and ACTION_INSTRUCTIONS in asked[0]["body"]
    [paid] = await sandbox.refunds(order["order_id"])
    assert paid["status"] == "succeeded" and paid["amount"] == started.amount


async def test_a_refund_the_provider_cancels_moves_no_money_and_waits_for_an_operator(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    await faults.set_faults(
        {
            "payment.pending_rate": "1",
            "payment.settle_cancel_rate": "1",
            "payment.settle_after_ms": "1500",
        }
    )
    order = await sandbox.order(amount=4000)
    started = await refunds.request(make_request(order))
    waiting = await eventually(
        lambda: refunds.status(started.refund_id), lambda s: s.awaiting.value == "operator"
    )
    assert waiting.provider_failure is not None and "canceled" in waiting.provider_failure
    [canceled] = await sandbox.refunds(order["order_id"])
    assert canceled["status"] == "canceled"
    cancelled = await refunds.operator_cancel(started.refund_id, "op_1", "provider gave up")
    assert cancelled.state.value == "cancelled"
