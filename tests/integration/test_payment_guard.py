"""The payment guard (activities/order_payouts.py) on the real stack: no provider refund takes
an order above its capture once money was paid elsewhere, whatever state the refund paid
elsewhere is in. The main cases (refused, retried, cancelled, paid within the capture) are in
test_order_ledger.py."""

from __future__ import annotations

from functools import partial

import aiohttp

from client.refund_client import RefundClient
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox, unique_key
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_refund_flow import make_request
from workflows.models import RefundLineRequest
from workflows.states import Awaiting, RefundState


async def test_money_paid_elsewhere_counts_while_its_refund_still_restocks(
    refunds: RefundClient,
    returns_refunds: RefundClient,
    sandbox: Sandbox,
    faults: SandboxAdmin,
    http: aiohttp.ClientSession,
) -> None:
    """A review of the guard: it counted money paid elsewhere only on completed refunds. A
    returned item's refund paid elsewhere stays `refunding` while the warehouse is down
    (its restock retries until it answers), and meanwhile its 45.00 read as nothing paid: a
    40.00 refund went to the provider on top of 40.00 paid at its dashboard, 125.00 out of
    100.00."""
    order = await sandbox.order(
        lines=[{"sku": "LAMP", "unit_price": 4500}, {"sku": "DESK", "unit_price": 5500}]
    )
    lamp = [RefundLineRequest(sku="LAMP", quantity=1)]
    first = await returns_refunds.request(make_request(order, amount=None, lines=lamp))
    await eventually(
        partial(refunds.status, first.refund_id), lambda v: v.awaiting is Awaiting.CUSTOMER
    )
    await faults.set_faults({"payment.refuse": "expired_card"})
    await returns_refunds.item_received(first.refund_id, "warehouse-7")
    await eventually(
        partial(refunds.status, first.refund_id), lambda v: v.awaiting is Awaiting.OPERATOR
    )
    await faults.clear_faults()
    await faults.set_faults({"inventory.error_rate": "1.0"})  # the warehouse is down
    try:
        await refunds.operator_paid_elsewhere(first.refund_id, "omar", "SEPA TX-9")
        dashboard = {"payment_reference": order["payment_reference"], "amount": 4000,
                     "currency": "USD", "metadata": {}}  # fmt: skip
        headers = {"Idempotency-Key": unique_key("dashboard")}
        async with http.post(
            f"{sandbox.base}/payments/v1/refunds", json=dashboard, headers=headers
        ) as made:
            assert made.status in (200, 201), await made.text()
        later = await refunds.request(make_request(order, amount=4000))
        stopped = await eventually(
            partial(refunds.status, later.refund_id), lambda v: v.awaiting is Awaiting.OPERATOR
        )
        restocking = await refunds.status(first.refund_id)
        assert restocking.state is RefundState.REFUNDING, restocking  # still restocking
        assert (stopped.provider_failure or "").startswith(
            f"not sent to the provider: order {order['order_id']} captured 100.00 USD; 85.00"
            f" USD of it is paid or held for other refunds, of that 45.00 USD paid elsewhere"
            f" ({first.refund_id})"
        ), stopped.provider_failure
        provider = await sandbox.refunds(order["order_id"])
        assert [r["amount"] for r in provider if r["status"] != "failed"] == [4000]
    finally:
        await faults.clear_faults()
    # The warehouse back, the refund paid elsewhere finishes restocking and completes.
    done = await wait_for_state(refunds, first.refund_id, "completed")
    assert done.facts is not None and done.facts.paid_elsewhere, done
