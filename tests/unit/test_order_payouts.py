"""What an order has paid out, as the paid-elsewhere check counts it (activities/order_payouts.py):
each other refund by the larger of its hold and what the provider paid for it, provider
money that names no refund of ours whole, nothing that moved no money."""

from __future__ import annotations

from typing import Any

from activities.http_adapters import provider_row
from activities.order_payouts import count_payouts
from workflows.ledger import Hold
from workflows.models import OrderPayouts, OrderPayoutsInput
from workflows.refund.within_capture import over_capture

ASKING = OrderPayoutsInput(refund_id="rf_this", order_id="ord_1", currency="USD")


def row(
    amount: int, status: str = "succeeded", refund_id: str | None = None, **kw: Any
) -> dict[str, Any]:
    metadata = {"refund_id": refund_id} if refund_id else {}
    return {"amount": amount, "status": status, "currency": "USD", "metadata": metadata, **kw}


def others_out(
    holds: list[Hold],
    rows: list[dict[str, Any]],
    inp: OrderPayoutsInput,
    paid_elsewhere: tuple[str, ...] = (),
) -> tuple[int, int]:
    payouts = count_payouts(holds, rows, inp, paid_elsewhere)
    return payouts.others_out, payouts.provider_out


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


def test_a_refund_paid_elsewhere_that_the_provider_paid_too_counts_both() -> None:
    # A review: 100.00 captured; rf_y 40.00 paid elsewhere, and the provider paid rf_y
    # 40.00 too (late, or at the dashboard with its id): 80.00 out before this refund.
    holds = [Hold(refund_id="rf_y", state="consumed", amount=4000)]
    rows = [row(4000, refund_id="rf_y")]
    assert others_out(holds, rows, ASKING, paid_elsewhere=("rf_y",)) == (8000, 4000)
    assert others_out(holds, rows, ASKING) == (4000, 4000)  # paid by the provider alone


def test_the_refusal_gives_the_sums_and_room_is_not_refused() -> None:
    payouts = OrderPayouts(captured_amount=8000, others_out=5500, provider_out=5500, around=1000)
    said = over_capture(payouts, 3500, 9999, "ord_1", "USD")
    assert said is not None
    assert said.startswith(
        "cannot mark paid elsewhere: order ord_1 captured 80.00 USD; 55.00 USD of it is paid or"
        " held for other refunds, 10.00 USD of that paid or payable by the provider for no"
        " refund of refundflow's (made at its dashboard?); 25.00 USD is left, less than this"
        " refund's 35.00 USD."
    ), said
    assert "`refundflow list --order ord_1`" in said
    assert said.endswith("`refundflow reconcile` records it (`anomalies --order ord_1`)")
    assert over_capture(payouts, 2500, 9999, "ord_1", "USD") is None  # exactly the capture
    # No capture in the ledger (held before it kept one): the order the refund checked.
    unknown = payouts.model_copy(update={"captured_amount": None})
    assert over_capture(unknown, 2500, 7000, "ord_1", "USD") is not None
    no_dashboard = payouts.model_copy(update={"around": 0})
    assert "dashboard" not in (over_capture(no_dashboard, 3500, 0, "ord_1", "USD") or "")


def test_a_provider_writing_its_currency_in_lower_case_still_counts() -> None:
    # Stripe writes "usd": its dashboard money was left out of the order's payouts (a review).
    listed = provider_row(row(1000, currency="usd"))  # as the adapter hands it on
    assert others_out([], [listed], ASKING) == (1000, 1000)
