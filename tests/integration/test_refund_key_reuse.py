"""A refund key sent again with another request, after the first one's start failed: the
first request's hold is never taken for the second (a review paid a kettle twice that way:
the second request ran on the toaster's hold, and nothing compared them)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from activities.pg_store import PostgresRefundStore
from client.errors import RefundConflict
from client.refund_client import RefundClient
from tests.conftest import Sandbox, unique_key
from tests.integration.helpers import wait_for_state
from tests.integration.test_order_ledger_store import reservation
from tests.integration.test_refund_flow import make_request

pytestmark = pytest.mark.stack

KETTLE_AND_TOASTER = [
    {"sku": "KETTLE", "quantity": 1, "unit_price": 5000, "category": "kitchen"},
    {"sku": "TOASTER", "quantity": 1, "unit_price": 5000, "category": "kitchen"},
]


def one(order: dict[str, Any], sku: str, **fields: Any) -> Any:
    return make_request(order, amount=None, lines=[{"sku": sku, "quantity": 1}], **fields)


async def test_a_key_whose_start_failed_is_not_taken_by_another_request(
    refunds: RefundClient, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = await sandbox.order(lines=KETTLE_AND_TOASTER)
    key = unique_key("form")

    async def temporal_unavailable(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("Temporal unavailable")

    monkeypatch.setattr("client.refund_client.start_for_first_step", temporal_unavailable)
    with pytest.raises(ConnectionError):  # held at the edge, then the start failed
        await refunds.request(one(order, "TOASTER", refund_key=key))
    monkeypatch.undo()

    with pytest.raises(RefundConflict, match="already used for a different request"):
        await refunds.request(one(order, "KETTLE", refund_key=key))
    assert await sandbox.refunds(order["order_id"]) == []  # nothing paid, nothing started

    # The first request asked again under its key goes on from its hold; the kettle is
    # asked under a key of its own. Each line is paid once, for what was asked.
    toaster = await refunds.request(one(order, "TOASTER", refund_key=key))
    kettle = await refunds.request(one(order, "KETTLE"))
    for refund in (toaster, kettle):
        assert (await wait_for_state(refunds, refund.refund_id, "completed")).amount == 5000
    ledger = await (await refunds.store()).order_ledger(order["order_id"])
    assert ledger is not None
    assert {line.sku: line.refunded_quantity for line in ledger.lines} == {
        "KETTLE": 1,
        "TOASTER": 1,
    }
    paid = [r["amount"] for r in await sandbox.refunds(order["order_id"])]
    assert paid == [5000, 5000]


@pytest.mark.parametrize(
    "another",
    [
        {"reason_code": "defective"},
        {"amount": 1500, "lines": [], "requested_amount": 1500},
        {"amount": 30000, "lines": "TV-55"},
    ],
    ids=["reason", "amount-only", "other-line"],
)
async def test_a_workflow_reserving_another_request_on_a_hold_is_declined(
    db: asyncpg.Pool, another: dict[str, Any]
) -> None:
    """The workflow's own reservation (`reserve`, read without the locks) finds the hold
    made for another request under its id: declined, and the hold stays the first one's."""
    store = PostgresRefundStore(db)
    held = reservation(unique_key("ord"))
    assert (await store.reserve(held)).reserved
    if another.get("lines") == "TV-55":
        another = {**another, "lines": [held.order_lines[0]]}
    declined = await store.reserve(held.model_copy(update=another))
    assert not declined.reserved
    assert declined.refused_because is not None
    assert "made for a different request" in declined.refused_because
    assert declined.remaining == 30000  # the order less the first request's hold
    assert (await store.reserve(held)).reserved  # the first request's own answer stands
    row = await db.fetchrow(
        "SELECT amount, state FROM refundflow.reservations WHERE refund_id = $1", held.refund_id
    )
    assert (row["amount"], row["state"]) == (3000, "held")


async def test_a_key_of_a_recorded_refund_is_not_answered_for_another_line_of_its_price(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    """A trial: the toaster asked under the kettle's key (the same price and reason) was
    answered with the kettle's refund, "Your refund of 40.00 USD has been issued"; so was
    the same value asked by amount. Both are another request (409); the kettle asked again
    is its refund."""
    order = await sandbox.order(lines=KETTLE_AND_TOASTER)
    key = unique_key("form")
    kettle = await refunds.request(one(order, "KETTLE", refund_key=key))
    await wait_for_state(refunds, kettle.refund_id, "completed")
    for other in (
        one(order, "TOASTER", refund_key=key),
        make_request(order, amount=5000, refund_key=key),
    ):
        with pytest.raises(RefundConflict, match="already used for a different request"):
            await refunds.request(other)
    again = await refunds.request(one(order, "KETTLE", refund_key=key))
    assert again.refund_id == kettle.refund_id
    assert [r["amount"] for r in await sandbox.refunds(order["order_id"])] == [5000]
