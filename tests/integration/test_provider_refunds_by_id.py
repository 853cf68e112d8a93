"""Provider refunds that carry a refund's id but are not its payment (another amount, another
order's payment): on the real stack, neither the payment, a settlement signal nor
reconciliation takes one for the refund's own (split from test_payment_guard.py)."""

from __future__ import annotations

import json
from functools import partial

import asyncpg

from client.refund_client import RefundClient
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_refund_flow import make_request
from workflows import names
from workflows.activity_contracts import ProviderSettlement
from workflows.models import ReconcileInput
from workflows.states import Awaiting, RefundState


async def test_a_provider_refund_of_another_amount_under_this_refunds_id_is_not_its_payment(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    """A trial: a refund of 100.00 the provider refused; someone at the provider's dashboard
    refunded 1.00 and linked it to the refund by hand; `operator retry` took it as the
    payment: completed, "Your refund of 100.00 USD has been issued", 1.00 paid. Neither the
    retry nor reconciliation takes it now, and no second refund is sent beside it; once
    the provider has reversed it, a retry pays the refund in full."""
    order = await sandbox.order(amount=10000)
    await faults.set_faults({"payment.refuse": "expired_card"})
    refused = await refunds.request(make_request(order, amount=4000))
    await eventually(
        partial(refunds.status, refused.refund_id), lambda v: v.awaiting is Awaiting.OPERATOR
    )
    await faults.clear_faults()
    linked = await sandbox.provider_refund(order, refused.refund_id, 100)
    retried = await refunds.operator_retry(refused.refund_id, "omar")
    assert retried.awaiting is Awaiting.OPERATOR and retried.state is RefundState.REFUNDING
    assert (
        f"provider refund {linked['id']} carries this refund's id but is 1.00 USD, not 40.00 USD"
    ) in (retried.provider_failure or ""), retried.provider_failure
    report = await refunds.reconcile(ReconcileInput(grace_seconds=0))
    found = await (await refunds.store()).findings(run_id=report.run_id, limit=10_000)
    mine = [f for f in found if f.refund_id == refused.refund_id]
    assert [(f.kind, f.action) for f in mine] == [("provider_refunded_not_completed", "escalated")]
    assert "none of its provider refunds is of its amount" in mine[0].details["not_healed"]
    assert (await refunds.status(refused.refund_id)).state is RefundState.REFUNDING
    assert [r["amount"] for r in await sandbox.refunds(order["order_id"])] == [100]
    # The way out: the provider reverses the linked refund, then a retry pays in full.
    await faults.reverse(linked["id"])

    async def linked_status() -> str:
        return str((await sandbox.refunds(order["order_id"]))[0]["status"])

    await eventually(linked_status, lambda status: status == "failed")
    await refunds.operator_retry(refused.refund_id, "omar")
    done = await wait_for_state(refunds, refused.refund_id, "completed")
    assert done.amount == 4000 and done.provider_refund_id != linked["id"]
    paid = [r for r in await sandbox.refunds(order["order_id"]) if r["status"] == "succeeded"]
    assert [r["amount"] for r in paid] == [4000]


async def test_a_provider_refund_on_another_payment_under_this_refunds_id_is_not_its_payment(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    """A review: someone at the provider's dashboard refunded another customer's payment of
    the same amount and typed this refund's id into it; the refund took it as its payment:
    completed, its customer told so, their payment never refunded. Now it pays its own."""
    ours, other = await sandbox.order(amount=20000), await sandbox.order(amount=20000)
    refund = await refunds.request(make_request(ours))
    await eventually(
        partial(refunds.status, refund.refund_id), lambda v: v.awaiting is Awaiting.REVIEWER
    )
    typed_in = await sandbox.provider_refund(other, refund.refund_id, 20000)
    await refunds.approve(refund.refund_id, "li", role="lead")
    done = await wait_for_state(refunds, refund.refund_id, "completed")
    assert done.provider_refund_id != typed_in["id"]
    assert [(r["id"], r["amount"]) for r in await sandbox.refunds(ours["order_id"])] == [
        (done.provider_refund_id, 20000)
    ]


async def test_a_settlement_signal_naming_a_refund_on_another_payment_is_ignored(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    """A review: the look-up before paying kept to the refund's payment, but a settlement
    signal (a webhook, or reconciliation's, which groups the provider's refunds by the id in
    their metadata) naming the dashboard refund on another payment still completed the
    refund with it. Confirmed with the provider on the refund's own payment, it is not."""
    ours, other = await sandbox.order(amount=20000), await sandbox.order(amount=20000)
    refund = await refunds.request(make_request(ours))
    await faults.set_faults({"payment.refuse": "expired_card"})
    try:
        await refunds.approve(refund.refund_id, "li", role="lead")
        await eventually(
            partial(refunds.status, refund.refund_id), lambda v: v.awaiting is Awaiting.OPERATOR
        )
    finally:
        await faults.clear_faults()
    typed_in = await sandbox.provider_refund(other, refund.refund_id, 20000)
    settled = ProviderSettlement(provider_refund_id=typed_in["id"], status="succeeded")
    await refunds.temporal.get_workflow_handle(refund.refund_id).signal(
        names.SIGNAL_PROVIDER_SETTLED, settled
    )
    ignored = await eventually(
        partial(refunds.status, refund.refund_id),
        lambda v: any(e.event == "settlement_unconfirmed" for e in v.timeline),
    )
    assert ignored.state is RefundState.REFUNDING and ignored.awaiting is Awaiting.OPERATOR
    assert ignored.provider_refund_id != typed_in["id"]


async def test_reconciliation_does_not_close_an_ended_refund_with_a_refund_of_another_payment(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, db: asyncpg.Pool
) -> None:
    """A review: a refund Temporal ended while it waited for an operator, and a dashboard
    refund of its amount on another payment with its id typed in: reconciliation closed it
    as paid by that refund, its customer never paid. It is escalated, saying why."""
    ours, other = await sandbox.order(amount=3000), await sandbox.order(amount=3000)
    await faults.set_faults({"payment.refuse": "expired_card"})
    try:
        made = await refunds.request(make_request(ours, amount=3000))
        await eventually(
            partial(refunds.status, made.refund_id), lambda v: v.awaiting is Awaiting.OPERATOR
        )
    finally:
        await faults.clear_faults()
    await refunds.temporal.get_workflow_handle(made.refund_id).terminate("stuck")
    await sandbox.provider_refund(other, made.refund_id, 3000)
    await refunds.reconcile(ReconcileInput(grace_seconds=0))
    details = json.loads(await db.fetchval(
        "SELECT details FROM refundflow.findings WHERE refund_id = $1"
        " AND kind = 'workflow_closed_abnormally' ORDER BY finding_id DESC LIMIT 1",
        made.refund_id,
    ))  # fmt: skip
    assert "is not on the order's payment" in details.get("not_healed", ""), details
    assert (await refunds.status(made.refund_id)).state is RefundState.REFUNDING
