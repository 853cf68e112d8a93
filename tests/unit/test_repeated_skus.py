"""An order that lists a SKU on two lines: refused with words at the edge, declined by the
start's check, never held (the ledger keeps units by SKU)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from client.edge import fetch_order
from client.errors import InvalidRefundRequest
from workflows.models import OrderLine, OrderSnapshot
from workflows.verification import repeated_skus


def order(*skus: str) -> OrderSnapshot:
    return OrderSnapshot(
        order_id="ord_1",
        currency="USD",
        captured_amount=100 * len(skus),
        lines=[OrderLine(sku=s, quantity=1, unit_price=100, category="general") for s in skus],
        payment_reference="pay_1",
        delivered_at=datetime(2026, 11, 20, tzinfo=UTC),
    )


class Orders:
    def __init__(self, snapshot: OrderSnapshot) -> None:
        self.snapshot = snapshot

    async def get_order(self, order_id: str) -> OrderSnapshot:
        return self.snapshot


def test_repeated_skus_are_named_once_each() -> None:
    assert repeated_skus(order("TV", "CABLE", "TV", "CABLE", "PEN")) == ["CABLE", "TV"]
    assert repeated_skus(order("TV", "CABLE")) == []


async def test_the_edge_refuses_such_an_order_in_words() -> None:
    """A trial: eligible, then the request failed as it was held (503, "unexpected error")."""
    with pytest.raises(InvalidRefundRequest, match="order ord_1 lists TV on more than one line"):
        await fetch_order(Orders(order("TV", "TV")), "ord_1")
    assert (await fetch_order(Orders(order("TV")), "ord_1")).order_id == "ord_1"
