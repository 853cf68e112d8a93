"""Auto-approval budgets in Postgres (migration 0006): the money already auto-approved on an
order and for a customer, the customer's lock, and the customer's recent refunds for
reviewers. The rule is workflows/budgets.py (pure); activities/reserving.py applies it
inside the reservation's transaction.

Why a second lock: the order's row lock (activities/reserving.py) serialises
the refunds of one order, so the per-order sum is safe under it; but one customer's
requests on two orders hold two different row locks and would each see the other's money
missing. A transaction-scoped advisory lock on the customer serialises those. It is always
taken after the order's lock and never the other way round, so two reservations cannot
wait for each other.
"""

from __future__ import annotations

import asyncpg

from workflows.budgets import BudgetUse
from workflows.read_models import CustomerHistory, CustomerSpend

CUSTOMER_LOCK = 0x5246_4355  # "RFCU": the two-key advisory lock space of customers
"""First key of a customer's advisory lock (the second is a hash of the customer): two-key
advisory locks never collide with the one-key locks of the dispatcher and migrations. Two
customers whose hashes collide only wait for each other; neither is ever miscounted."""

# $1 order, $2 customer, $3 currency, $4 window (days), $5 the refund not counted;
# activities/reserving._READ embeds this query with the same placeholders.
USE = """
    SELECT coalesce(sum(r.amount) FILTER (WHERE r.order_id = $1), 0) AS on_order,
           coalesce(sum(r.amount) FILTER (
               WHERE r.requested_by = $2 AND o.currency = $3
                 AND r.created_at > now() - make_interval(days => $4)), 0) AS by_customer
    FROM refundflow.reservations r JOIN refundflow.order_ledger o USING (order_id)
    WHERE r.auto_approved AND r.state <> 'released' AND r.refund_id <> $5
      AND (r.order_id = $1 OR r.requested_by = $2)
"""

_HISTORY = """
    SELECT trim(o.currency) AS currency, count(*) AS refunds,
           coalesce(sum(r.amount), 0) AS amount,
           coalesce(sum(r.amount) FILTER (WHERE r.auto_approved), 0) AS auto_approved
    FROM refundflow.reservations r JOIN refundflow.order_ledger o USING (order_id)
    WHERE r.requested_by = $1 AND r.state <> 'released' AND r.refund_id <> $2
      AND r.created_at > now() - make_interval(days => $3)
    GROUP BY o.currency ORDER BY o.currency
"""


async def budget_use(
    db: asyncpg.Connection | asyncpg.Pool,
    order_id: str,
    customer: str | None,
    currency: str,
    window_days: int,
    but: str,
) -> BudgetUse:
    """Auto-approved money held or paid on the order, and for `customer` (already as
    `customer_key` gives it) within the window in `currency`; refund `but` not counted."""
    row = await db.fetchrow(USE, order_id, customer, currency, window_days, but)
    return BudgetUse(order=row["on_order"], customer=row["by_customer"])


async def customer_history(
    pool: asyncpg.Pool, refund_id: str, window_days: int
) -> CustomerHistory | None:
    """The other refunds of `refund_id`'s requester over the last `window_days`, per
    currency (None: the store does not know who asked, e.g. a refund declined before it
    reserved anything and not yet audited)."""
    customer = await pool.fetchval(
        "SELECT coalesce("
        " (SELECT requested_by FROM refundflow.reservations WHERE refund_id = $1),"
        " (SELECT lower(actor) FROM refundflow.audit"
        "  WHERE refund_id = $1 AND event = 'requested' ORDER BY seq LIMIT 1))",
        refund_id,
    )
    if customer is None:
        return None
    rows = await pool.fetch(_HISTORY, customer, refund_id, window_days)
    return CustomerHistory(
        customer=customer,
        window_days=window_days,
        totals=[CustomerSpend.model_validate(dict(r)) for r in rows],
    )
