"""A payment made outside the provider is recorded only while the order's payouts stay within
its capture (patches.PAID_ELSEWHERE_WITHIN_CAPTURE).

`operator paid-elsewhere` already proves the provider holds no live refund for this refund.
Money paid on the order another way (at the provider's dashboard, or for another refund
above its hold) is not this refund's, and before this check only reconciliation's last run
knew of it: a trial recorded 35.00 paid elsewhere on an 80.00 order the provider had paid
55.00 of, 90.00 out in all. The workflow asks the provider and the ledger now
(activities/order_payouts.py), so the record cannot depend on how fresh a finding is.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import names
    from workflows.models import OrderPayouts, OrderPayoutsInput
    from workflows.money import format_minor
    from workflows.refund.case import RefundCase
    from workflows.refund.journal import STORE_RETRY


async def prove_within_capture(case: RefundCase) -> None:
    """Refuse (ApplicationError: the update fails, nothing changes) when the order's other
    payouts and this refund's amount together exceed what was captured."""
    order = case.inp.order
    asked = OrderPayoutsInput(
        refund_id=case.inp.refund_id, order_id=order.order_id, currency=order.currency
    )
    payouts: OrderPayouts = await workflow.execute_activity(
        names.ACTIVITY_ORDER_PAYOUTS,
        asked,
        result_type=OrderPayouts,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=STORE_RETRY,
        summary="prove the order's payouts stay within its capture",
    )
    refusal = over_capture(payouts, case.p.amount, order.captured_amount, order.order_id,
                           order.currency)  # fmt: skip
    if refusal:
        raise ApplicationError(refusal)


def over_capture(
    payouts: OrderPayouts, amount: int, snapshot_capture: int, order_id: str, currency: str
) -> str | None:
    """Why paying `amount` elsewhere would take the order above its capture (None: it
    would not). The capture is the ledger's, else the order the refund checked."""
    captured = payouts.captured_amount
    if captured is None:
        captured = snapshot_capture
    out = payouts.others_out + amount
    if out <= captured:
        return None

    def money(minor: int) -> str:
        return format_minor(minor, currency)

    around = (
        f", {money(payouts.around)} of that paid or payable by the provider for no refund of"
        " refundflow's (made at its dashboard?)"
        if payouts.around
        else ""
    )
    left = max(captured - payouts.others_out, 0)
    return (
        f"cannot mark paid elsewhere: order {order_id} captured {money(captured)};"
        f" {money(payouts.others_out)} of it is paid or held for other refunds{around};"
        f" {money(left)} is left, less than this refund's {money(amount)}. If that money"
        " reached this refund's customer, cancel it (`operator cancel`). `refundflow list"
        f" --order {order_id}` shows the order's refunds"
        + (
            "; money paid at the provider around refundflow is in the provider's own"
            f" dashboard, and `refundflow reconcile` records it (`anomalies --order {order_id}`)"
            if payouts.around
            else ""
        )
    )
