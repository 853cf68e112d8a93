"""An order that lists a SKU on two lines: refused with words at the edge (once whose order
it is has been checked), declined by the start's check, never held (the ledger keeps units
by SKU)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.verification import RequestVerifier
from client.edge import fetch_order, refundable_here
from client.errors import InvalidRefundRequest
from workflows.models import OrderLine, OrderSnapshot, ReserveInput
from workflows.verification import AdmitInput, VerifyRequestInput, repeated_skus


def order(*skus: str) -> OrderSnapshot:
    return OrderSnapshot(
        order_id="ord_1",
        currency="USD",
        captured_amount=100 * len(skus),
        lines=[OrderLine(sku=s, quantity=1, unit_price=100, category="general") for s in skus],
        payment_reference="pay_1",
        delivered_at=datetime(2026, 11, 20, tzinfo=UTC),
        customer_id="cust_1",
    )


class Orders:
    def __init__(self, snapshot: OrderSnapshot) -> None:
        self.snapshot = snapshot

    async def get_order(self, order_id: str) -> OrderSnapshot:
        return self.snapshot


class NoHolds:
    async def reserve(self, request: Any) -> Any:
        raise AssertionError("held an order whose SKUs the ledger cannot tell apart")


def test_repeated_skus_are_named_once_each() -> None:
    assert repeated_skus(order("TV", "CABLE", "TV", "CABLE", "PEN")) == ["CABLE", "TV"]
    assert repeated_skus(order("TV", "CABLE")) == []


async def test_the_edge_refuses_such_an_order_in_words_after_whose_it_is() -> None:
    """A trial: eligible, then the request failed as it was held (503, "unexpected error").
    The look-up itself refuses nothing: a stranger's look-up must read "unknown order" (the
    API's authorization says so after it), not what the order holds (a review)."""
    twice = order("TV", "TV")
    assert (await fetch_order(Orders(twice), "ord_1")) == twice
    with pytest.raises(InvalidRefundRequest, match="order ord_1 lists TV on more than one line"):
        refundable_here(twice)
    refundable_here(order("TV"))


async def test_the_start_check_declines_such_an_order_and_holds_nothing() -> None:
    """A refund started straight in Temporal with such an order is declined as unverified,
    not held to fail at every retry."""
    twice = order("TV", "TV")
    verifier = RequestVerifier(Orders(twice), frozenset({"h"}), NoHolds())
    admitted = await ActivityEnvironment().run(
        verifier.admit_refund,
        AdmitInput(
            verify=VerifyRequestInput(refund_id="rf_1", policy_hash="h", order=twice),
            reserve=ReserveInput(
                refund_id="rf_1", order_id="ord_1", amount=200, currency="USD",
                captured_amount=200, requested_by="cust_1",
            ),
        ),
    )  # fmt: skip
    assert admitted.problems == ["order ord_1: SKU on more than one line"]
    assert admitted.reservation is None
