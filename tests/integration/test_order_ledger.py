"""Invariant 9 on the real stack: money is guarded per order line, not per request. The
issue's scenarios through RefundClient (the edge) and the ledger as status and review see
it; the store under the order's lock is test_order_ledger_store.py, money paid around the
ledger (reconciliation, the report, the payment guard) test_order_ledger_elsewhere.py."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from client import render
from client.errors import InvalidRefundRequest
from client.refund_client import RefundClient
from client.refund_ids import default_refund_key
from tests.conftest import Sandbox, unique_key
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_refund_flow import make_request
from workflows.models import StatusView

pytestmark = pytest.mark.stack

TV_AND_CABLES = [
    {"sku": "TV-55", "quantity": 1, "unit_price": 30000, "category": "electronics"},
    {"sku": "CABLE", "quantity": 2, "unit_price": 1500, "category": "general"},
]
GIFT_AND_PEN = [
    {"sku": "GIFT", "quantity": 1, "unit_price": 20000, "category": "gift_card"},
    {"sku": "PEN", "quantity": 1, "unit_price": 100, "category": "general"},
]
CABLES = [{"sku": "CABLE", "quantity": 2}]


def cables(order: dict[str, Any], **fields: Any) -> Any:
    return make_request(order, amount=None, lines=CABLES, **fields)


async def paid(sandbox: Sandbox, order_id: str) -> int:
    return sum(r["amount"] for r in await sandbox.refunds(order_id) if r["status"] != "failed")


async def test_the_same_cables_from_three_channels_are_refunded_once(
    refunds_v2: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(lines=TV_AND_CABLES)
    first = await refunds_v2.request(cables(order, channel="web", reason_code="damaged"))
    await wait_for_state(refunds_v2, first.refund_id, "completed")
    held = (
        f"2 x CABLE of order {order['order_id']} are already held or refunded by"
        f" {first.refund_id}; 0 of 2 left"
    )
    again = [
        cables(order, channel="support", refund_key="ticket-1", reason_code="damaged"),
        cables(order, channel="app", reason_code="defective"),
    ]
    for request in again:
        answer = await refunds_v2.eligibility(request)
        assert answer.refused_at_request and answer.held_by == [first.refund_id]
        with pytest.raises(InvalidRefundRequest) as refused:
            await refunds_v2.request(request)
        assert str(refused.value) == held
    # More units than the order has: told that the others were refunded too (a trial read
    # only "order … has 2").
    five = make_request(order, amount=None, lines=[{"sku": "CABLE", "quantity": 5}])
    too_many = (
        f"cannot refund 5 x CABLE: order {order['order_id']} has 2; 2 of them are already"
        f" held or refunded by {first.refund_id}: 0 left"
    )
    with pytest.raises(InvalidRefundRequest) as refused:
        await refunds_v2.request(five)
    assert str(refused.value) == too_many
    assert (await refunds_v2.eligibility(five)).summary == f"Not eligible: {too_many}."
    assert await paid(sandbox, order["order_id"]) == 3000

    # The TV is still refundable, and the order's ledger shows who refunded the cables.
    tv = make_request(order, amount=None, lines=[{"sku": "TV-55", "quantity": 1}])
    assert (await refunds_v2.eligibility(tv)).eligible
    ledger = await refunds_v2.order_ledger(order["order_id"])
    assert ledger is not None and ledger.refunded == 3000
    cable = next(line for line in ledger.lines if line.sku == "CABLE")
    assert (cable.refunded_quantity, cable.refunded_amount, cable.refunds) == (
        2,
        3000,
        [first.refund_id],
    )
    shown = render.status(await refunds_v2.status(first.refund_id), ledger)
    assert "order ledger" in shown and f"by {first.refund_id}" in shown


async def test_three_channels_at_once_get_one_refund_and_two_refusals_naming_it(
    refunds_v2: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(lines=TV_AND_CABLES)
    asks = [
        cables(order, channel="web", reason_code="damaged"),
        cables(order, channel="support", refund_key=unique_key("ticket"), reason_code="damaged"),
        cables(order, channel="app", reason_code="defective"),
    ]
    answers = await asyncio.gather(*(refunds_v2.request(a) for a in asks), return_exceptions=True)
    started = [a for a in answers if isinstance(a, StatusView)]
    refused = [a for a in answers if isinstance(a, InvalidRefundRequest)]
    assert len(started) == 1 and len(refused) == 2, answers
    for error in refused:
        assert f"already held or refunded by {started[0].refund_id}" in str(error)
    await wait_for_state(refunds_v2, started[0].refund_id, "completed")
    assert await paid(sandbox, order["order_id"]) == 3000


async def test_the_same_amount_asked_again_under_another_key_waits_for_a_reviewer(
    refunds_v2: RefundClient, sandbox: Sandbox
) -> None:
    # The web form's Idempotency-Key, then support for the same customer with none (the
    # request's content is its key): two keys, one request. Amounts are not units, so only
    # this check stands between it and a second payment.
    customer = unique_key("cust")
    order = await sandbox.order(lines=TV_AND_CABLES, customer_id=customer)
    web = make_request(order, amount=500, requested_by=customer)
    first = await refunds_v2.request(web)
    await wait_for_state(refunds_v2, first.refund_id, "completed")
    content_key = default_refund_key(order["order_id"], 500, None, "damaged")
    support = make_request(
        order, amount=500, requested_by=customer, channel="support", refund_key=content_key
    )
    ahead = await refunds_v2.eligibility(support)
    said = (
        f"refund {first.refund_id} (paid) asked for the same 5.00 USD of order {order['order_id']}"
    )
    assert ahead.outcome == "needs_review", ahead
    assert (ahead.auto_approve_refused_because or "").startswith(said)
    second = await refunds_v2.request(support)
    assert second.refund_id != first.refund_id
    assert (second.state.value, second.awaiting.value) == ("pending_review", "reviewer")
    assert any(note.startswith(said[:1].upper() + said[1:]) for note in second.policy_notes)
    # A different reason is another request: the policy pays it by itself.
    other = await refunds_v2.request(make_request(order, amount=500, reason_code="defective"))
    await wait_for_state(refunds_v2, other.refund_id, "completed")
    assert await paid(sandbox, order["order_id"]) == 1000
    # Lines: one cable of two, asked twice under two keys. The ledger has a unit to spare,
    # so only this stands between the second and a payment.
    order = await sandbox.order(lines=TV_AND_CABLES)
    cable = [{"sku": "CABLE", "quantity": 1}]
    one = await refunds_v2.request(make_request(order, amount=None, lines=cable))
    await wait_for_state(refunds_v2, one.refund_id, "completed")
    again = await refunds_v2.request(make_request(order, amount=None, lines=cable))
    assert (again.state.value, again.awaiting.value) == ("pending_review", "reviewer")
    assert any(one.refund_id in note for note in again.policy_notes)
    assert await paid(sandbox, order["order_id"]) == 1500


async def test_a_gift_card_is_not_paid_for_changed_mind_by_amounts(
    refunds_v2: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(lines=GIFT_AND_PEN)
    order_id = order["order_id"]
    for amount in (5000, 4999, 4998, 4997, 106):
        request = make_request(order, amount=amount, reason_code="changed_mind")
        answer = await refunds_v2.eligibility(request)
        assert not answer.eligible and answer.refused_at_request
        with pytest.raises(InvalidRefundRequest) as refused:
            await refunds_v2.request(request)
        assert str(refused.value) == (
            f"only 1.00 USD of order {order_id} is still refundable for changed_mind:"
            " final-sale lines (GIFT) are refunded only when the seller is at fault"
        )
    pen = await refunds_v2.request(make_request(order, amount=100, reason_code="changed_mind"))
    await wait_for_state(refunds_v2, pen.refund_id, "completed")
    with pytest.raises(InvalidRefundRequest, match=f"held or refunded by {pen.refund_id}"):
        await refunds_v2.request(make_request(order, amount=1, reason_code="changed_mind"))
    assert await paid(sandbox, order_id) == 100


async def test_a_cancelled_refund_frees_its_units(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(lines=TV_AND_CABLES)
    tv = [{"sku": "TV-55", "quantity": 1}]
    waiting = await refunds_v2.request(
        make_request(order, amount=None, lines=tv, reason_code="changed_mind")
    )
    assert waiting.state.value == "pending_review"  # 255.00 is above the auto-approve limit
    with pytest.raises(InvalidRefundRequest, match=f"1 x TV-55 .* by {waiting.refund_id}"):
        await refunds_v2.request(make_request(order, amount=None, lines=tv))
    await refunds_v2.cancel(waiting.refund_id, "cust_42", "found it")
    await wait_for_state(refunds_v2, waiting.refund_id, "cancelled")
    await eventually(
        lambda: db.fetchval(
            "SELECT state FROM refundflow.reservations WHERE refund_id = $1", waiting.refund_id
        ),
        lambda state: state == "released",
    )
    later = await refunds_v2.request(make_request(order, amount=None, lines=tv))
    assert later.state.value == "pending_review"


async def test_eligibility_of_a_request_already_made_names_its_refund(
    refunds_v2: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(lines=TV_AND_CABLES)
    asked = cables(order, reason_code="damaged")
    first = await refunds_v2.request(asked)
    await wait_for_state(refunds_v2, first.refund_id, "completed")
    again = await refunds_v2.eligibility(asked)
    assert (again.already_made, again.already_made_state) == (first.refund_id, "completed")
    shown = render.eligibility(again)
    assert shown.startswith(f"already asked: refund {first.refund_id} is completed;"), shown
    # What follows is the answer for asking again under another key: the cables are paid
    # (it said "Eligible" of them, "as if it had not been asked", a trial).
    assert "Asked again under another key:\nNot eligible" in shown, shown
    assert not again.eligible and first.refund_id in "\n".join(again.held_by), again
    other = await refunds_v2.eligibility(cables(order, reason_code="defective"))
    assert other.already_made is None and not other.eligible


async def test_the_ledger_shows_the_money_held_and_paid_for_a_line_not_its_worth(
    refunds_v2: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(lines=TV_AND_CABLES)
    tv = [{"sku": "TV-55", "quantity": 1}]
    waiting = await refunds_v2.request(
        make_request(order, amount=None, lines=tv, reason_code="changed_mind")
    )
    ledger = await refunds_v2.order_ledger(order["order_id"])
    assert ledger is not None
    line = next(line for line in ledger.lines if line.sku == "TV-55")
    # 300.00 of worth, 255.00 held after the restocking fee: the line says what is held.
    assert (line.value, line.held_quantity, line.held_amount) == (30000, 1, 25500)
    assert ledger.held == 25500

    await refunds_v2.approve(waiting.refund_id, "li", amount=150, role="lead")
    await wait_for_state(refunds_v2, waiting.refund_id, "completed")
    ledger = await refunds_v2.order_ledger(order["order_id"])
    assert ledger is not None and (ledger.held, ledger.refunded) == (0, 150)
    line = next(line for line in ledger.lines if line.sku == "TV-55")
    # The unit is closed (invariant 9), but 1.50 was paid for it, not its 300.00.
    assert (line.refunded_quantity, line.refunded_amount) == (1, 150)
    shown = render.order_ledger(ledger)
    assert any("TV-55" in row and "refunded 1 x, 1.50 USD" in row for row in shown), shown
    # The customer is told it was less than they asked for, and that the rest is not coming.
    done = await refunds_v2.status(waiting.refund_id)
    assert done.message.startswith(
        "Your refund of 1.50 USD has been issued to your original payment method. That is"
        " less than the 300.00 USD you asked for: the rest is not refunded."
    ), done.message
    tracked = await refunds_v2.track(waiting.refund_id)  # `track --json` says it too
    assert (tracked["amount"], tracked["asked_amount"]) == (150, 30000)
