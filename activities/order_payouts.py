"""What an order has paid out, asked now of the provider and of refundflow's ledger: the
check before a payment made outside the provider is recorded (`operator paid-elsewhere`,
patches.PAID_ELSEWHERE_WITHIN_CAPTURE).

Reconciliation finds money paid around refundflow, but only as of its last run, and the
client's check of its finding only at the edge. A trial paid 90.00 of an 80.00 order: 10.00
at the provider's dashboard, then a refused refund's 35.00 recorded as paid elsewhere, which
nothing but a person compares with the capture. The workflow asks this first, so the
record is refused while the provider's ledger and the order's holds leave no room for it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from typing import Any

import asyncpg
import structlog
from temporalio import activity

from activities import order_ledger
from activities.http_adapters import HttpPaymentProvider
from activities.log_context import activity_log_context
from workflows import names
from workflows.activity_contracts import NO_MONEY
from workflows.ledger import Hold
from workflows.models import OrderPayouts, OrderPayoutsInput

log = structlog.get_logger("refundflow.activities")
PAGE = 1000


def count_payouts(
    holds: Iterable[Hold],
    provider_rows: Iterable[dict[str, Any]],
    inp: OrderPayoutsInput,
    paid_elsewhere: Collection[str] = (),
    captured_amount: int | None = None,
) -> OrderPayouts:
    """The order's money out for refunds other than the asking one.

    Per other refund, the larger of its hold and what the provider paid or may pay for it
    (a hold not yet paid will be; a provider refund above its hold paid that much), but
    both for one recorded as paid elsewhere (`paid_elsewhere`: the customer had its hold
    another way, and whatever the provider paid too: a review's 120.00 out of 100.00).
    Provider money that names no refund of ours (a dashboard refund) counts whole. The
    asking refund's own provider refunds are left out: the workflow has just proved none
    can pay. Failed and canceled refunds moved no money (a reversal shows as failed)."""
    by_provider: dict[str, int] = defaultdict(int)
    around = provider_out = 0
    for row in provider_rows:
        if row["status"] in NO_MONEY or row["currency"] != inp.currency:
            continue
        refund_id = (row.get("metadata") or {}).get("refund_id")
        if refund_id == inp.refund_id:
            continue
        if refund_id:
            by_provider[refund_id] += int(row["amount"])
        else:
            around += int(row["amount"])
        provider_out += int(row["amount"])
    held = {hold.refund_id: hold.amount for hold in holds if hold.refund_id != inp.refund_id}

    def out_for(refund_id: str) -> int:
        hold, paid = held.get(refund_id, 0), by_provider.get(refund_id, 0)
        return hold + paid if refund_id in paid_elsewhere else max(hold, paid)

    others = around + sum(out_for(refund_id) for refund_id in held.keys() | by_provider.keys())
    return OrderPayouts(
        captured_amount=captured_amount, others_out=others, provider_out=provider_out,
        around=around,
    )  # fmt: skip


class OrderPayoutActivities:
    def __init__(self, pool: asyncpg.Pool, payment: HttpPaymentProvider) -> None:
        self._pool = pool
        self._payment = payment

    @activity.defn(name=names.ACTIVITY_ORDER_PAYOUTS)
    async def order_payouts(self, inp: OrderPayoutsInput) -> OrderPayouts:
        with activity_log_context(inp.refund_id):
            rows = [
                row
                async for page in self._payment.ledger_pages(PAGE, order_id=inp.order_id)
                for row in page
            ]
            ledger = await order_ledger.state_and_holds(self._pool, inp.order_id, inp.refund_id)
            elsewhere = await order_ledger.paid_elsewhere_by_refund(
                self._pool, inp.order_id, inp.refund_id
            )
            payouts = count_payouts(ledger.holds, rows, inp, elsewhere, ledger.captured_amount)
            log.info("order_payouts", others_out=payouts.others_out, around=payouts.around)
            return payouts
