"""The order ledger in Postgres (migration 0005): the order's row lock, what every refund of
an order holds per line, and how a reservation follows its refund. The rule itself is
workflows/ledger.py (pure); `PostgresRefundStore.reserve` applies it under the lock.
"""

from __future__ import annotations

import json
import math
from typing import Any

import asyncpg

from workflows.budgets import customer_key
from workflows.ledger import NOT_A_LINE, Hold, LineHold, allocate
from workflows.models import OrderLine, ReserveInput, StatusProjection
from workflows.read_models import LedgerLine, OrderLedger

_HOLDS = """
    SELECT r.refund_id, r.state, r.amount,
           coalesce(json_agg(json_build_object('sku', l.sku, 'quantity', l.quantity,
                                               'amount', l.amount) ORDER BY l.sku)
                    FILTER (WHERE l.sku IS NOT NULL), '[]')::text AS lines
    FROM refundflow.reservations r
    LEFT JOIN refundflow.reservation_lines l USING (refund_id)
    WHERE r.order_id = $1 AND r.state <> 'released' AND r.refund_id <> $2
    GROUP BY r.refund_id
    ORDER BY r.created_at, r.refund_id
"""


async def lock_order(
    conn: asyncpg.Connection, request: ReserveInput
) -> tuple[int, list[OrderLine]]:
    """Take the order's row lock (concurrent reservations for one order run one at a time)
    and return its captured amount and lines as first recorded: the first snapshot stands."""
    await conn.execute(
        "INSERT INTO refundflow.order_ledger (order_id, currency, captured_amount)"
        " VALUES ($1, $2, $3) ON CONFLICT (order_id) DO NOTHING",
        request.order_id,
        request.currency,
        request.captured_amount,
    )
    captured: int = await conn.fetchval(
        "SELECT captured_amount FROM refundflow.order_ledger WHERE order_id = $1 FOR UPDATE",
        request.order_id,
    )
    rows = await conn.fetch(
        "SELECT sku, quantity, unit_price, category FROM refundflow.order_lines"
        " WHERE order_id = $1 ORDER BY position",
        request.order_id,
    )
    if rows or not request.order_lines:
        return captured, [OrderLine.model_validate(dict(r)) for r in rows]
    # Under the lock: the first reservation that brings the lines writes all of them.
    await conn.executemany(
        "INSERT INTO refundflow.order_lines (order_id, position, sku, quantity, unit_price,"
        " category) VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (request.order_id, n, line.sku, line.quantity, line.unit_price, line.category)
            for n, line in enumerate(request.order_lines)
        ],
    )
    return captured, list(request.order_lines)


async def holds(db: asyncpg.Connection | asyncpg.Pool, order_id: str, but: str) -> list[Hold]:
    """Every reservation on the order that is not released, but refund `but`'s own, oldest
    first (a refusal names the refunds in the order they took the units)."""
    rows = await db.fetch(_HOLDS, order_id, but)
    return [
        Hold(
            refund_id=r["refund_id"],
            state=r["state"],
            amount=r["amount"],
            lines=[LineHold.model_validate(x) for x in json.loads(r["lines"])],
        )
        for r in rows
    ]


async def record_hold(
    conn: asyncpg.Connection,
    request: ReserveInput,
    lines: list[LineHold],
    auto_approve_refused: str | None = None,
) -> None:
    """Write the reservation and what it holds of each line; who asked, and whether it is
    auto-approved (the policy would, and no budget withheld it: `auto_approve_refused`), so
    later requests count it against the budgets (activities/budgets.py)."""
    basis = None if request.reason_code is None else ("lines" if request.lines else "amount")
    await conn.execute(
        "INSERT INTO refundflow.reservations (refund_id, order_id, amount, basis, reason_code,"
        " requested_by, auto_approved, auto_approve_refused)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        request.refund_id,
        request.order_id,
        request.amount,
        basis,
        request.reason_code,
        customer_key(request.requested_by) if request.requested_by else None,
        request.auto_approve and auto_approve_refused is None,
        auto_approve_refused,
    )
    await conn.executemany(
        "INSERT INTO refundflow.reservation_lines (refund_id, order_id, sku, quantity, amount)"
        " VALUES ($1, $2, $3, $4, $5)",
        [(request.refund_id, request.order_id, x.sku, x.quantity, x.amount) for x in lines],
    )


async def follow_refund(conn: asyncpg.Connection, p: StatusProjection) -> None:
    """The reservation follows the refund: released when it is cancelled (its units are
    free again), fixed at the paid amount when it completes. A completed refund the provider
    reversed keeps its consumed reservation while an operator decides; cancelled then, it
    is released too (the cancel proved with the provider that no money is out)."""
    if p.state.value == "cancelled":
        await conn.execute(
            "UPDATE refundflow.reservations SET state = 'released', updated_at = now()"
            " WHERE refund_id = $1 AND state IN ('held', 'consumed')",
            p.refund_id,
        )
    elif p.state.value == "completed":
        held = await conn.fetchrow(
            "SELECT amount, basis FROM refundflow.reservations"
            " WHERE refund_id = $1 AND state = 'held' FOR UPDATE",
            p.refund_id,
        )
        if held is None:
            return
        await conn.execute(
            "UPDATE refundflow.reservations SET state = 'consumed', amount = $2,"
            " updated_at = now() WHERE refund_id = $1",
            p.refund_id,
            p.amount,
        )
        if held["basis"] == "amount" and 0 < p.amount < held["amount"]:
            await _shrink_amount_hold(conn, p.refund_id, held["amount"], p.amount)


async def _shrink_amount_hold(
    conn: asyncpg.Connection, refund_id: str, reserved: int, paid: int
) -> None:
    """A reviewer approved less than an amount-only refund reserved: its share of each line
    shrinks in proportion (rounded up, so the lines never count less than was paid for)
    and the rest is free for later refunds, as the order total's is."""
    rows = await conn.fetch(
        "SELECT sku, amount FROM refundflow.reservation_lines WHERE refund_id = $1 ORDER BY sku",
        refund_id,
    )
    value = sum(r["amount"] for r in rows)
    kept = min(math.ceil(value * paid / reserved), value)
    shares = allocate(kept, [(r["sku"], r["amount"]) for r in rows])
    await conn.executemany(
        "UPDATE refundflow.reservation_lines SET amount = $3 WHERE refund_id = $1 AND sku = $2",
        [(refund_id, sku, share) for sku, share in shares],
    )


async def order_ledger(pool: asyncpg.Pool, order_id: str) -> OrderLedger | None:
    """What every refund of the order holds and has refunded, per line (None: no refund
    of the order has reserved anything yet)."""
    order = await pool.fetchrow(
        "SELECT currency, captured_amount FROM refundflow.order_ledger WHERE order_id = $1",
        order_id,
    )
    if order is None:
        return None
    lines = await pool.fetch(
        "SELECT sku, quantity, unit_price, category FROM refundflow.order_lines"
        " WHERE order_id = $1 ORDER BY position",
        order_id,
    )
    taken = await pool.fetch(
        "SELECT l.sku, r.state, r.refund_id, l.quantity, l.amount"
        " FROM refundflow.reservation_lines l JOIN refundflow.reservations r USING (refund_id)"
        " WHERE r.order_id = $1 AND r.state <> 'released' ORDER BY r.created_at, r.refund_id",
        order_id,
    )
    money = await pool.fetch(
        "SELECT refund_id, state, amount FROM refundflow.reservations"
        " WHERE order_id = $1 AND state <> 'released' ORDER BY created_at, refund_id",
        order_id,
    )
    return OrderLedger(
        order_id=order_id,
        currency=order["currency"].strip(),
        captured_amount=order["captured_amount"],
        held=sum(r["amount"] for r in money if r["state"] == "held"),
        refunded=sum(r["amount"] for r in money if r["state"] == "consumed"),
        refunds=[r["refund_id"] for r in money],
        lines=_ledger_lines(order["captured_amount"], lines, taken),
    )


def _ledger_lines(captured: int, lines: list[Any], taken: list[Any]) -> list[LedgerLine]:
    """One row per order line, and one for the part of the capture no line accounts for
    when a refund holds some of it."""
    worth = {r["sku"]: (r["quantity"], r["quantity"] * r["unit_price"]) for r in lines}
    not_a_line = captured - sum(value for _, value in worth.values())
    if any(t["sku"] == NOT_A_LINE for t in taken):
        worth[NOT_A_LINE] = (0, max(not_a_line, 0))
    out = []
    for sku, (quantity, value) in worth.items():
        mine = [t for t in taken if t["sku"] == sku]
        held = [t for t in mine if t["state"] == "held"]
        done = [t for t in mine if t["state"] == "consumed"]
        out.append(
            LedgerLine(
                sku=sku,
                quantity=quantity,
                value=value,
                held_quantity=sum(t["quantity"] for t in held),
                held_amount=sum(t["amount"] for t in held),
                refunded_quantity=sum(t["quantity"] for t in done),
                refunded_amount=sum(t["amount"] for t in done),
                refunds=list(dict.fromkeys(t["refund_id"] for t in mine)),
            )
        )
    return out
