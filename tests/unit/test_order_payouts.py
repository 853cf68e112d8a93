"""What an order has paid out, as the paid-elsewhere check counts it (activities/order_payouts.py):
each other refund by the larger of its hold and what the provider paid for it, provider
money that names no refund of ours whole, nothing that moved no money."""

from __future__ import annotations

from typing import Any

from activities.order_payouts import others_out
from workflows.ledger import Hold
from workflows.models import OrderPayouts, OrderPayoutsInput
from workflows.refund.within_capture import over_capture

ASKING = OrderPayoutsInput(refund_id="rf_this", order_id="ord_1", currency="USD")


def row(
    amount: int, status: str = "succeeded", refund_id: str | None = None, **kw: Any
) -> dict[str, Any]:
    metadata = {"refund_id": refund_id} if refund_id else {}
    return {"amount": amount, "status": status, "currency": "USD", "metadata": metadata, **kw}


def test_the_trial_order_counts_the_paid_refund_and_the_dashboard_money() -> None:
    # 45.00 paid by refundflow, 10.00 at the dashboard; this refund's own refused try.
    holds = [Hold(refund_id="rf_first", state="consumed", amount=4500)]
    rows = [row(4500, refund_id="rf_first"), row(1000), row(3500, "failed", "rf_this")]
    assert others_out(holds, rows, ASKING) == (5500, 5500)


def test_a_hold_not_yet_paid_counts_and_a_refund_paid_above_its_hold_counts_what_it_paid() -> None:
    holds = [
        Hold(refund_id="rf_waiting", amount=2000),  # approved, not paid yet: it will be
        Hold(refund_id="rf_over", state="consumed", amount=1000),
    ]
    rows = [row(1500, refund_id="rf_over")]
    assert others_out(holds, rows, ASKING) == (2000 + 1500, 1500)


def test_money_that_moved_nothing_or_in_another_currency_is_not_counted() -> None:
    rows = [
        row(700, "failed"),  # also what a reversal leaves
        row(800, "canceled", "rf_other"),
        row(900, currency="EUR"),
        row(300, "pending", "rf_released"),  # its hold released, the provider may still pay
    ]
    assert others_out([], rows, ASKING) == (300, 300)


def test_the_asking_refunds_own_hold_and_provider_rows_are_left_out() -> None:
    holds = [Hold(refund_id="rf_this", amount=4000)]
    assert others_out(holds, [row(4000, "pending", "rf_this")], ASKING) == (0, 0)


def test_the_refusal_gives_the_sums_and_room_is_not_refused() -> None:
    payouts = OrderPayouts(captured_amount=8000, others_out=5500, provider_out=5500)
    said = over_capture(payouts, 3500, 9999, "ord_1", "USD")
    assert said is not None
    assert "order ord_1 has 55.00 USD paid or held for other refunds" in said
    assert "this refund's 35.00 USD makes 90.00 USD of the 80.00 USD captured" in said
    assert over_capture(payouts, 2500, 9999, "ord_1", "USD") is None  # exactly the capture
    # No capture in the ledger (held before it kept one): the order the refund checked.
    unknown = payouts.model_copy(update={"captured_amount": None})
    assert over_capture(unknown, 2500, 7000, "ord_1", "USD") is not None
