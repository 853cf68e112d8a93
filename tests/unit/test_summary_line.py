"""The Web UI's one line per refund says what the refund pays, after fees."""

from __future__ import annotations

from client.edge import summary_line
from client.policy_source import load_policy
from tests.unit.tv_order import ORDER, POLICIES, START
from workflows.models import (
    RefundLineRequest,
    RefundRequest,
    RefundWorkflowInput,
)
from workflows.validation import resolve_request


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
            policy=load_policy(POLICIES, "standard-v3"),
            asked_at=START,
        )
    )


def test_the_summary_shows_the_amount_after_fees_and_what_was_asked() -> None:
    assert line_for("changed_mind") == (
        "Refund 255.00 USD (requested 300.00 USD) on order ord_1 (changed_mind, via web)"
    )
    assert line_for("damaged") == "Refund 300.00 USD on order ord_1 (damaged, via web)"
