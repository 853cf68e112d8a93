"""The Web UI's one line per refund says what the refund pays, after fees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from client.edge import summary_line
from client.policy_source import load_policy
from client.settings import PROJECT_ROOT
from workflows.models import (
    OrderLine,
    OrderSnapshot,
    RefundLineRequest,
    RefundRequest,
    RefundWorkflowInput,
)
from workflows.validation import resolve_request

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
ORDER = OrderSnapshot(
    order_id="ord_1",
    currency="USD",
    lines=[OrderLine(sku="TV", quantity=1, unit_price=30000, category="electronics")],
    captured_amount=30000,
    payment_reference="pay_1",
    delivered_at=NOW - timedelta(days=2),
)


def line_for(reason: str) -> str:
    request = RefundRequest(
        refund_key="k",
        order_id="ord_1",
        lines=[RefundLineRequest(sku="TV", quantity=1)],
        reason_code=reason,
        channel="web",
        requested_by="c1",
    )
    return summary_line(
        RefundWorkflowInput(
            refund_id="rf_1",
            request=request,
            order=ORDER,
            resolved=resolve_request(request, ORDER),
            policy=load_policy(PROJECT_ROOT / "policies", "standard-v3"),
            asked_at=NOW,
        )
    )


def test_the_summary_shows_the_amount_after_fees_and_what_was_asked() -> None:
    assert line_for("changed_mind") == (
        "Refund 255.00 USD (requested 300.00 USD) on order ord_1 (changed_mind, via web)"
    )
    assert line_for("damaged") == "Refund 300.00 USD on order ord_1 (damaged, via web)"
