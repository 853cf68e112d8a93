"""What refundflow's own Postgres says of a refund about to be paid: the money it holds on
its order and where its record stands. Read in one statement by the payment guard
(order_payouts.PaymentGuard) before any new provider refund."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from workflows.models import IssueRefundInput
from workflows.money import format_minor
from workflows.states import Awaiting, RefundState

__all__ = ["OwnRecord", "read_own_record"]

_READ = """
    SELECT r.amount AS held, r.state AS hold_state, s.state, s.awaiting, s.last_seq
    FROM (SELECT $1::text AS refund_id) k
    LEFT JOIN refundflow.reservations r ON r.refund_id = k.refund_id
    LEFT JOIN refundflow.refund_status s ON s.refund_id = k.refund_id
"""

_WAITING_FOR = {
    Awaiting.REVIEWER.value: "waiting for a reviewer",
    Awaiting.CUSTOMER.value: "waiting for the customer",
    Awaiting.WAREHOUSE.value: "waiting for the warehouse",
    Awaiting.OPERATOR.value: "waiting for an operator",
}


@dataclass(frozen=True)
class OwnRecord:
    held: int | None
    """What its hold on the order holds (None: held before reservations were kept)."""
    hold_state: str | None
    state: str | None
    """The status projection's, written with the audit (None: no row)."""
    awaiting: str | None
    last_seq: int | None

    def past_the_run(self, pay: IssueRefundInput) -> bool:
        """Whether the record holds entries past the ones the run wrote before asking to pay
        (`recorded_through`; a run or a refund from before the check compares nothing)."""
        if pay.recorded_through is None or self.last_seq is None or self.state is None:
            return False
        return self.last_seq > pay.recorded_through

    def moved_on(self, pay: IssueRefundInput) -> str | None:
        """Why `pay` must not be sent (None: it may): the record holds entries past the ones
        the run wrote before asking (`recorded_through`) and they took the refund away from
        the provider. A trial: a refund whose payment the provider refused, waiting for an
        operator, reset in Temporal to its first task; the new run paid it, nobody having
        decided. Refused, the run waits for an operator after the record's entries, as the
        record does; a record that closed the refund ends the run (the audit's conflict). A
        run's own later entries (the SLA timer's escalations while the call is retried) keep
        it with the provider."""
        with_provider = (
            self.state == RefundState.REFUNDING.value
            and self.awaiting == Awaiting.PAYMENT_PROVIDER.value
        )
        if not self.past_the_run(pay) or with_provider:
            return None
        waiting = _WAITING_FOR.get(self.awaiting or "")
        return (
            f"not sent to the provider: refund {pay.refund_id} is {self.state} on its record"
            f" (entry {self.last_seq}" + (f", {waiting}" if waiting else "") + "), past this"
            f" run's last entry ({pay.recorded_through}): most likely the run was reset in"
            " Temporal to before the record. An operator decides"
        )

    def beyond_its_hold(self, pay: IssueRefundInput) -> str | None:
        """Why `pay` is more than its refund holds on the order (None: it is not, or the
        refund was held before reservations were kept). Every other refund of the order was
        decided against that hold; a payment above it would take what they hold. A review:
        a reviewer approved 40.00 of 100.00 (the hold cut to 40.00, another refund then held
        the 60.00), the refund was reset in Temporal to before that and approved again for
        100.00 by the same reviewer, which the record took as the same approval."""
        if self.held is None or (self.hold_state != "released" and pay.amount <= self.held):
            return None
        held = (
            "holds nothing"
            if self.hold_state == "released"
            else "holds " + format_minor(self.held, pay.currency)
        )
        return (
            f"not sent to the provider: refund {pay.refund_id} {held} of order {pay.order_id},"
            f" not the {format_minor(pay.amount, pay.currency)} it would pay, so the rest may be"
            " held or paid for other refunds of the order. Its record and this run disagree"
            " (a Reset in Temporal to before a reviewer's decision?): an operator decides"
        )


async def read_own_record(pool: asyncpg.Pool, refund_id: str) -> OwnRecord:
    row = await pool.fetchrow(_READ, refund_id)
    assert row is not None, "the query always returns its one row"
    return OwnRecord(**dict(row))
