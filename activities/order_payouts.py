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
from collections.abc import Iterable
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


def others_out(
    holds: Iterable[Hold], provider_rows: Iterable[dict[str, Any]], inp: OrderPayoutsInput
) -> tuple[int, int]:
    """(money paid or able to pay for the order's other refunds, of it the provider's).

    Per other refund, the larger of its hold and what the provider paid or may pay for it
    (a hold not yet paid will be; a provider refund above its hold paid that much); provider
    money that names no refund of ours (a dashboard refund) counts whole. The asking
    refund's own provider refunds are left out: the workflow has just proved none can pay.
    Failed and canceled refunds moved no money (a reversal shows as failed)."""
    by_provider: dict[str, int] = defaultdict(int)
    around = provider_out = 0  # around: provider money naming no refund (a dashboard's)
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
    total = around + sum(
        max(held.get(refund_id, 0), by_provider.get(refund_id, 0))
        for refund_id in held.keys() | by_provider.keys()
    )
    return total, provider_out


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
            total, provider_out = others_out(ledger.holds, rows, inp)
            log.info("order_payouts", others_out=total, provider_out=provider_out)
            return OrderPayouts(
                captured_amount=ledger.captured_amount,
                others_out=total,
                provider_out=provider_out,
            )
