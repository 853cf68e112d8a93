"""The sandbox provider's every status on the real stack (issue 11): a refund that needs the
customer first (requires_action) tells them what to do and is paid once it settles; one the
provider cancels moves no money and waits for an operator."""

from __future__ import annotations

import pytest

from client.errors import RefundActionRefused
from client.refund_client import RefundClient
from sandbox.admin_client import SandboxAdmin
from sandbox.records import ACTION_INSTRUCTIONS
from tests.conftest import Sandbox
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_refund_flow import make_request
from workflows.models import ReconcileInput

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
    # The customer's timeline says when they were asked, not only "on its way" (a trial).
    labels = [step["label"] for step in (await refunds.track(started.refund_id))["timeline"]]
    assert labels[-3:] == ["on its way", "action needed", "paid"], labels
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


async def test_paid_elsewhere_completes_with_proof_and_reconciles_clean(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    await faults.set_faults({"payment.refuse": "account_closed"})
    order = await sandbox.order(amount=4000)
    started = await refunds.request(make_request(order))
    await eventually(
        lambda: refunds.status(started.refund_id), lambda s: s.awaiting.value == "operator"
    )
    done = await refunds.operator_paid_elsewhere(started.refund_id, "op_1", "SEPA TX-77")
    # Answered as the refund stands once it took the operator's word, not as it stood while
    # it waited (an operator reading "awaiting operator" would act again).
    assert (done.state.value, done.timeline[-1].actor) == ("completed", "operator")
    # Nor is the customer told the money went to their card (the projection's message).
    assert "another way" in done.message and "issued to your original" not in done.message
    assert any(e.event == "paid_elsewhere" and "TX-77" in e.reason for e in done.timeline)
    assert await sandbox.refunds(order["order_id"]) == []  # the provider paid nothing
    # Reconciliation does not call it "completed without a provider refund": the proof is there.
    report = await refunds.reconcile(ReconcileInput(grace_seconds=0))
    findings = await (await refunds.store()).findings(run_id=report.run_id)
    assert all(f.refund_id != started.refund_id for f in findings), findings


async def test_an_operator_cancels_a_refund_waiting_for_the_customer_at_the_provider(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    await faults.set_faults(
        {
            "payment.pending_rate": "1",
            "payment.requires_action_rate": "1",
            "payment.settle_after_ms": "600000",
        }
    )
    order = await sandbox.order(amount=4000)
    started = await refunds.request(make_request(order))
    await eventually(
        lambda: refunds.status(started.refund_id),
        lambda s: any(e.event == "provider_requires_action" for e in s.timeline),
    )
    cancelled = await refunds.operator_cancel(started.refund_id, "op_1", "no bank account")
    assert cancelled.state.value == "cancelled"
    [refund] = await sandbox.refunds(order["order_id"])
    assert refund["status"] == "canceled"
    ledger = await eventually(
        lambda: refunds.order_ledger(order["order_id"]),
        lambda led: led is not None and led.held == 0 and led.refunded == 0,
    )
    assert ledger is not None


async def test_a_refund_the_provider_will_not_cancel_is_refused_with_its_reason(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    await faults.set_faults({"payment.pending_rate": "1", "payment.settle_after_ms": "600000"})
    order = await sandbox.order(amount=4000)
    started = await refunds.request(make_request(order))
    before = await eventually(
        lambda: refunds.status(started.refund_id),
        lambda s: any(e.event == "provider_pending" for e in s.timeline),
    )
    with pytest.raises(RefundActionRefused, match="only a refund that requires action"):
        await refunds.operator_cancel(started.refund_id, "op_1", "asked by customer")
    after = await refunds.status(started.refund_id)
    assert (after.state.value, after.awaiting.value) == ("refunding", "payment_provider")
    assert len(after.timeline) == len(before.timeline)
    [refund] = await sandbox.refunds(order["order_id"])
    assert refund["status"] == "pending"
