"""An amount-only refund's restocking fee is taken on the lines it takes value from, as the
order's ledger splits it over what each line still has (workflows/allocation.py). A trial:
with the TV already held by a line refund, a 30.00 USD refund by amount kept back 4.09 USD
as the TV's 15 % fee, while the ledger took the 30.00 from the cables."""

from __future__ import annotations

import pytest

from client.refund_client import RefundClient
from tests.conftest import Sandbox
from tests.integration.helpers import wait_for_state
from tests.integration.test_order_ledger import TV_AND_CABLES
from tests.integration.test_refund_flow import make_request

pytestmark = pytest.mark.stack


async def test_an_amount_after_the_tv_was_returned_bears_no_tv_fee(
    refunds_v2: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(lines=TV_AND_CABLES)
    tv = make_request(
        order, amount=None, lines=[{"sku": "TV-55", "quantity": 1}], reason_code="changed_mind"
    )
    held = await refunds_v2.request(tv)
    assert held.amount == 25500  # 300.00 less the TV's 15 % fee; waits for a reviewer

    later = make_request(order, amount=3000, reason_code="changed_mind")
    answer = await refunds_v2.eligibility(later)
    assert (answer.fee, answer.refund_amount, answer.fees) == (0, 3000, [])
    refund = await refunds_v2.request(later)
    assert refund.amount == 3000
    paid = await wait_for_state(refunds_v2, refund.refund_id, "completed")
    ledger = await refunds_v2.order_ledger(order["order_id"])
    assert ledger is not None
    cable = next(line for line in ledger.lines if line.sku == "CABLE")
    assert (cable.refunded_amount, cable.refunds) == (3000, [refund.refund_id]), ledger
    assert [r["amount"] for r in await sandbox.refunds(order["order_id"])] == [paid.amount]


async def test_an_amount_on_a_whole_order_still_bears_the_tv_fee(
    refunds_v2: RefundClient, sandbox: Sandbox
) -> None:
    """Asking for an amount instead of the TV does not avoid its fee: 30.00 of a 330.00
    order is 27.27 of the TV's value, 15 % of it kept back."""
    order = await sandbox.order(lines=TV_AND_CABLES)
    answer = await refunds_v2.eligibility(
        make_request(order, amount=3000, reason_code="changed_mind")
    )
    assert (answer.fee, answer.refund_amount) == (409, 2591)
    assert [(f.sku, f.amount) for f in answer.fees] == [("TV-55", 409)]
