"""The naive refund's activities: each step of bench.naive's workflow, plainly."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from activities.http_adapters import HttpOrderSystem, HttpPaymentProvider
from bench.naive import NaiveInput, NaiveOrder
from workflows.models import IssueRefundInput


class NaiveActivities:
    def __init__(
        self, pool: asyncpg.Pool, orders: HttpOrderSystem, provider: HttpPaymentProvider
    ) -> None:
        self.pool, self.orders, self.provider = pool, orders, provider

    @activity.defn(name="naive_lookup_order")
    async def lookup_order(self, order_id: str) -> NaiveOrder:
        order = await self.orders.get_order(order_id)
        assert order is not None, f"no order {order_id}"
        return NaiveOrder(order.payment_reference, order.captured_amount, order.currency)

    @activity.defn(name="naive_reserve")
    async def reserve(self, inp: NaiveInput, captured: int) -> bool:
        """Hold the amount unless the order's holds would exceed its capture (one lock)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", inp.order_id)
            held = await conn.fetchval(
                "SELECT coalesce(sum(amount), 0) FROM bench_naive.reservations"
                " WHERE order_id = $1 AND refund_id <> $2",
                inp.order_id, inp.refund_id,
            )  # fmt: skip
            if held + inp.amount > captured:
                return False
            await conn.execute(
                "INSERT INTO bench_naive.reservations VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                inp.refund_id, inp.order_id, inp.amount,
            )  # fmt: skip
            return True

    @activity.defn(name="naive_refund")
    async def refund(self, inp: IssueRefundInput) -> str:
        return (await self.provider.refund(inp)).status

    @activity.defn(name="naive_audit")
    async def audit(self, refund_id: str, event: str) -> None:
        await self.pool.execute(
            "INSERT INTO bench_naive.audit (refund_id, event) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING",
            refund_id, event,
        )  # fmt: skip
