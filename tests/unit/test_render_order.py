"""`sandbox order` names whose the order is: the customer `--as` may ask for a refund on it
(a trial found the id only in `--json`)."""

from __future__ import annotations

from client import render

ORDER = {
    "order_id": "ord_1",
    "captured_amount": 10000,
    "currency": "USD",
    "payment_rail": "card",
    "payment_reference": "pay_1",
    "delivered_at": None,
    "customer_id": "cust_77",
    "lines": [{"sku": "TV", "quantity": 1, "unit_price": 10000, "category": "general"}],
}


def test_the_order_says_whose_it_is() -> None:
    assert "  customer cust_77" in render.order(ORDER).splitlines()
