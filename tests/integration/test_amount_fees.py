"""An amount-only refund's restocking fee is taken on the lines it takes value from, as the
order's ledger splits it over what each line still has (workflows/allocation.py). A trial:
with the TV already held by a line refund, a 30.00 USD refund by amount kept back 4.09 USD
as the TV's 15 % fee, while the ledger took the 30.00 from the cables."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from activities.pg_store import PostgresRefundStore
from client.edge import hold_at_the_edge, resolve
from client.refund_client import RefundClient
from tests.conftest import Sandbox
from tests.integration.helpers import wait_for_state
from tests.integration.test_order_ledger import TV_AND_CABLES
from tests.integration.test_refund_flow import make_request
from workflows.models import ValueShare

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


async def test_a_retry_after_the_tv_was_freed_keeps_the_split_its_first_call_held(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    """A review: the first call held 30.00 on the cables (the TV held by another refund)
    and its start failed; the TV's refund was withdrawn; the retry split the 30.00 again
    (27.27 on the TV, a 4.09 fee) while the store kept the first hold. The retry now takes
    the split the store holds: no fee, 30.00 paid, as held."""
    order = await sandbox.order(lines=TV_AND_CABLES)
    tv = await refunds_v2.request(
        make_request(order, amount=None, lines=[{"sku": "TV-55", "quantity": 1}],
                     reason_code="changed_mind")
    )  # fmt: skip
    later = make_request(order, amount=3000, reason_code="changed_mind")
    snapshot = await refunds_v2.order(order["order_id"])
    store = PostgresRefundStore(db)
    holds = (await store.state_and_holds(order["order_id"], "rf_" + "0" * 24)).holds
    held_before, split = await hold_at_the_edge(  # held; its start "failed"
        store, refunds_v2.policy, later, snapshot,
        resolve(later, snapshot), datetime.now(UTC), holds,
    )  # fmt: skip
    assert not held_before and split.allocation == [ValueShare(sku="CABLE", amount=3000)]
    await refunds_v2.cancel(tv.refund_id, actor=tv.requested_by or "x", reason="kept the TV")
    await wait_for_state(refunds_v2, tv.refund_id, "cancelled")

    retried = await refunds_v2.request(later)
    assert retried.amount == 3000, retried
    paid = await wait_for_state(refunds_v2, retried.refund_id, "completed")
    assert [r["amount"] for r in await sandbox.refunds(order["order_id"])] == [paid.amount]


async def test_an_amount_after_the_capture_grew_is_judged_on_the_order_as_first_recorded(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    """The ledger judges every refund of an order on its first recorded snapshot. Shipping
    captured after the first refund gave later snapshots 10.00 that no line covers: the edge
    split each amount onto it, the ledger (which does not know it) refused the split, and
    every request by amount was told "ask again", again and again. Now the edge judges the
    request on the order as the ledger knows it: the refund is held and paid."""
    order = await sandbox.order(amount=5000, category="general")
    first = await refunds_v2.request(make_request(order, amount=1000))
    await wait_for_state(refunds_v2, first.refund_id, "completed")
    await db.execute(  # the order system captures shipping afterwards
        "UPDATE sandbox.orders SET captured_amount = 6000 WHERE order_id = $1",
        order["order_id"],
    )
    assert (await refunds_v2.order(order["order_id"])).captured_amount == 6000

    later = make_request(order, amount=1500)
    answer = await refunds_v2.eligibility(later)
    assert (answer.eligible, answer.max_refundable) == (True, 4000), answer
    refund = await refunds_v2.request(later)
    assert refund.amount == 1500
    paid = await wait_for_state(refunds_v2, refund.refund_id, "completed")
    paid_out = sorted(r["amount"] for r in await sandbox.refunds(order["order_id"]))
    assert paid_out == sorted([1000, paid.amount])  # each paid once
    too_much = make_request(order, amount=3000)  # 25.00 is left of the 50.00 first recorded
    assert not (await refunds_v2.eligibility(too_much)).eligible


async def test_a_capture_voided_in_part_after_the_first_refund_bounds_what_is_left(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    """The other way: the order system now says less was captured than the ledger first
    recorded (part of the payment voided). The smaller capture bounds the request, as it did
    before the ledger's capture was used: never more than the provider can refund."""
    order = await sandbox.order(amount=5000, category="general")
    first = await refunds_v2.request(make_request(order, amount=1000))
    await wait_for_state(refunds_v2, first.refund_id, "completed")
    await db.execute(
        "UPDATE sandbox.orders SET captured_amount = 3000 WHERE order_id = $1",
        order["order_id"],
    )
    answer = await refunds_v2.eligibility(make_request(order, amount=2500))
    assert (answer.eligible, answer.max_refundable) == (False, 2000), answer
