"""Auto-approval budgets in Postgres (migration 0006): the money already auto-approved on an
order and for a customer, the customer's lock, and the customer's recent refunds for
reviewers. The rule is workflows/budgets.py (pure); `PostgresRefundStore.reserve` applies it
here, inside the reservation's transaction.

Why a second lock: the order's row lock (activities/order_ledger.lock_order) serialises
the refunds of one order, so the per-order sum is safe under it; but one customer's
requests on two orders hold two different row locks and would each see the other's money
missing. A transaction-scoped advisory lock on the customer serialises those. It is always
taken after the order's lock and never the other way round, so two reservations cannot
wait for each other.
"""

from __future__ import annotations

import asyncpg

from workflows.budgets import BudgetUse, budget_refusal, customer_key
from workflows.models import ReserveInput
from workflows.read_models import CustomerHistory, CustomerSpend

CUSTOMER_LOCK = 0x5246_4355  # "RFCU": the two-key advisory lock space of customers
"""First key of a customer's advisory lock (the second is a hash of the customer): two-key
advisory locks never collide with the one-key locks of the dispatcher and migrations. Two
customers whose hashes collide only wait for each other; neither is ever miscounted."""

_USE = """
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
    row = await db.fetchrow(_USE, order_id, customer, currency, window_days, but)
    return BudgetUse(order=row["on_order"], customer=row["by_customer"])


async def auto_approve_refusal(conn: asyncpg.Connection, request: ReserveInput) -> str | None:
    """Why the budgets withhold the auto-approval `request` asks for (None: they allow it,
    or it asks for none, or its policy has no budgets). Runs in the reservation's
    transaction, after the order's row lock: the customer's lock is taken here and held to
    the commit, so the sums it reads stay true until this reservation is recorded."""
    budget = request.budget
    if not request.auto_approve or budget is None:
        return None
    customer = customer_key(request.requested_by) if request.requested_by else None
    if customer is not None and budget.per_customer is not None:
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", CUSTOMER_LOCK, customer
        )
    used = await budget_use(
        conn, request.order_id, customer, request.currency, budget.window_days, request.refund_id
    )
    return budget_refusal(
        request.amount,
        budget,
        used,
        order_id=request.order_id,
        customer=customer,
        currency=request.currency,
    )


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
