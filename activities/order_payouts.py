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
from activities.http_adapters import HttpPaymentProvider, this_refunds_payment
from activities.log_context import activity_log_context
from activities.own_record import OwnRecord, read_own_record
from activities.ports import ExternalSystemRefused
from workflows import names
from workflows.activity_contracts import NO_MONEY
from workflows.ledger import Hold
from workflows.models import (
    IssueRefundInput,
    OrderPayouts,
    OrderPayoutsInput,
    ProviderRefundResult,
)
from workflows.money import format_minor

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
            elsewhere = await order_ledger.paid_elsewhere_by_refund(
                self._pool, inp.order_id, inp.refund_id
            )
            payouts = await payouts_now(self._pool, self._payment, inp, elsewhere)
            log.info("order_payouts", others_out=payouts.others_out, around=payouts.around)
            return payouts


async def payouts_now(
    pool: asyncpg.Pool,
    payment: HttpPaymentProvider,
    inp: OrderPayoutsInput,
    elsewhere: Collection[str],
) -> OrderPayouts:
    """The order's payouts for refunds other than `inp`'s, as the provider lists its
    refunds of the order now and the ledger holds (`count_payouts`)."""
    rows = [row async for page in payment.ledger_pages(PAGE, order_id=inp.order_id) for row in page]
    ledger = await order_ledger.state_and_holds(pool, inp.order_id, inp.refund_id)
    return count_payouts(ledger.holds, rows, inp, elsewhere, ledger.captured_amount)


class PaymentGuard:
    """Before any provider payment: the provider caps its refunds at the capture, but knows
    nothing of money paid outside it. On an order with a refund recorded as paid elsewhere,
    the provider's refunds of the order (asked now), that money and this payment together
    must stay within the capture. A trial: 60.00 paid elsewhere, 40.00 at the dashboard,
    then a 40.00 request paid by the provider: 140.00 of 100.00. The order's other refunds
    count as the paid-elsewhere check counts them (`count_payouts`). Other orders cost one
    indexed read."""

    def __init__(self, pool: asyncpg.Pool, payment: HttpPaymentProvider) -> None:
        self._pool = pool
        self._payment = payment

    async def refusal(self, pay: IssueRefundInput) -> str | None:
        """Why this payment would take its order above the capture (None: it would not)."""
        elsewhere = await order_ledger.paid_elsewhere_by_refund(
            self._pool, pay.order_id, pay.refund_id
        )
        if not elsewhere:
            return None
        asking = OrderPayoutsInput(
            refund_id=pay.refund_id, order_id=pay.order_id, currency=pay.currency
        )
        # Other refunds' holds count as the paid-elsewhere check counts them: two refunds
        # paying at once each find the other's hold (a review: 120.00 of 100.00 otherwise).
        payouts = await payouts_now(self._pool, self._payment, asking, elsewhere)
        captured = payouts.captured_amount
        out = payouts.others_out + pay.amount
        if captured is None or out <= captured:
            return None

        def money(minor: int) -> str:
            return format_minor(minor, pay.currency)

        return (
            f"not sent to the provider: order {pay.order_id} captured {money(captured)};"
            f" {money(payouts.others_out)} of it is paid or held for other refunds, of that"
            f" {money(sum(elsewhere.values()))} paid elsewhere ({', '.join(sorted(elsewhere))})"
            f" and {money(payouts.provider_out)} paid or payable by the provider, so this"
            f" refund's {money(pay.amount)} would make {money(out)}. The provider cannot know"
            " of money paid outside it; an operator decides (cancel this refund if its"
            " customer has had the money)"
        )

    async def own_record(self, pay: IssueRefundInput) -> OwnRecord:
        """The refund's hold and where its record stands, in one read."""
        return await read_own_record(self._pool, pay.refund_id)


class GuardedPaymentProvider:
    """The payment provider as the refund activities use it: a new provider refund is asked
    for only once the guard finds room for it; the lookup a retry makes comes first, so an
    attempt whose answer was lost is found, not refused."""

    def __init__(self, provider: HttpPaymentProvider, guard: PaymentGuard) -> None:
        self._provider = provider
        self._guard = guard

    async def refund(
        self, request: IssueRefundInput, *, look_up_first: bool = False
    ) -> ProviderRefundResult:
        own = await self._guard.own_record(request)
        # A record past the run (a Reset's earlier run, or this run's SLA escalations while
        # the call is retried) may hold a payment this run does not know of, under another
        # attempt's key (a review): looked for too.
        if look_up_first or own.past_the_run(request):
            found = await self._provider.find_refunds(request.refund_id, request.payment_reference)
            existing = this_refunds_payment(found, request)
            if existing is not None:
                return existing
        moved_on = own.moved_on(request)
        if moved_on:
            raise ExternalSystemRefused(moved_on, names.NOT_SENT_RECORD_MOVED_ON)
        beyond_hold = own.beyond_its_hold(request)
        if beyond_hold:
            raise ExternalSystemRefused(beyond_hold, names.NOT_SENT_ABOVE_HOLD)
        refused = await self._guard.refusal(request)
        if refused:
            raise ExternalSystemRefused(refused, names.NOT_SENT_ABOVE_CAPTURE)
        return await self._provider.refund(request, look_up_first=False)

    async def get_refund(self, provider_refund_id: str) -> ProviderRefundResult:
        return await self._provider.get_refund(provider_refund_id)

    async def find_refunds(
        self, refund_id: str, payment_reference: str | None = None
    ) -> list[ProviderRefundResult]:
        return await self._provider.find_refunds(refund_id, payment_reference)

    async def cancel_refund(self, provider_refund_id: str) -> ProviderRefundResult:
        return await self._provider.cancel_refund(provider_refund_id)
