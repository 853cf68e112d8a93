"""The naive refund: what a team would write from the samples, doing a refund's real work.

The same work as refundflow's auto-approved refund: the order looked up in the order system,
the amount reserved against the capture and the outcome audited in Postgres, the provider
called over HTTP with an idempotency key; each step a plain activity, the status a query the
caller polls until the refund is past its first step. Only for `refundflow bench`.

The activities are in bench.naive_activities: a workflow module imports nothing that the
workflow sandbox would import again (asyncpg imported twice crashes the worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models import IssueRefundInput

NAIVE_TASK_QUEUE = "bench-naive"
SCHEMA = """
CREATE SCHEMA IF NOT EXISTS bench_naive;
CREATE TABLE IF NOT EXISTS bench_naive.reservations (
    refund_id text PRIMARY KEY, order_id text NOT NULL, amount bigint NOT NULL);
CREATE INDEX IF NOT EXISTS reservations_order ON bench_naive.reservations (order_id);
CREATE TABLE IF NOT EXISTS bench_naive.audit (
    refund_id text NOT NULL, event text NOT NULL, at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (refund_id, event));
"""
STEP = timedelta(seconds=30)


@dataclass
class NaiveInput:
    refund_id: str
    order_id: str
    amount: int


@dataclass
class NaiveOrder:
    payment_reference: str
    captured_amount: int
    currency: str


@workflow.defn(name="NaiveRefundWorkflow")
class NaiveRefundWorkflow:
    def __init__(self) -> None:
        self.state = "pending"

    @workflow.query
    def status(self) -> str:
        return self.state

    @workflow.run
    async def run(self, inp: NaiveInput) -> str:
        order = await workflow.execute_activity(
            "naive_lookup_order", inp.order_id, result_type=NaiveOrder,
            start_to_close_timeout=STEP,
        )  # fmt: skip
        reserved = await workflow.execute_activity(
            "naive_reserve", args=[inp, order.captured_amount], result_type=bool,
            start_to_close_timeout=STEP,
        )  # fmt: skip
        self.state = "approved" if reserved else "declined"
        if not reserved:
            return self.state
        issue = IssueRefundInput(
            refund_id=inp.refund_id, order_id=inp.order_id,
            payment_reference=order.payment_reference, amount=inp.amount,
            currency=order.currency, idempotency_key=f"{inp.refund_id}:refund",
        )  # fmt: skip
        await workflow.execute_activity("naive_refund", issue, start_to_close_timeout=STEP)
        await workflow.execute_activity(
            "naive_audit", args=[inp.refund_id, "completed"], start_to_close_timeout=STEP
        )
        self.state = "completed"
        return self.state
