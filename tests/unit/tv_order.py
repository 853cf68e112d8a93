"""One order the unit tests share: a 300.00 TV (electronics, so a 15 % restocking fee for
reasons that are not the seller's fault), delivered two days before START."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from workflows.models import OrderLine, OrderSnapshot

POLICIES = Path(__file__).resolve().parents[2] / "policies"
START = datetime(2026, 11, 26, 12, tzinfo=UTC)
ORDER = OrderSnapshot(
    order_id="ord_1",
    currency="USD",
    lines=[OrderLine(sku="TV", quantity=1, unit_price=30000, category="electronics")],
    captured_amount=30000,
    payment_reference="pay_1",
    delivered_at=START - timedelta(days=2),
)
