"""Where an order's money is guarded (its reservations in the ledger) and where it moved (the
sandbox provider's refunds), read for the property tests' checks (split from
test_order_money_stateful.py)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from tests.conftest import Sandbox


@dataclass
class Held:  # one reservation of the ledger: its state, money, and (units, value) per line
    state: str
    amount: int
    auto_approved: bool
    withheld: str | None  # why a budget withheld the auto-approval the policy would give
    lines: dict[str, tuple[int, int]]


LEDGER = """SELECT r.refund_id, r.state, r.amount, r.auto_approved, r.auto_approve_refused,
    l.sku, l.quantity, l.amount FROM refundflow.reservations r
    LEFT JOIN refundflow.reservation_lines l USING (refund_id) WHERE r.order_id = $1"""


async def ledger(db: asyncpg.Pool, order_id: str) -> dict[str, Held]:
    held: dict[str, Held] = {}
    for r in await db.fetch(LEDGER, order_id):
        hold = held.setdefault(r[0], Held(r[1], r[2], r[3], r[4], {}))
        if r[5] is not None:
            hold.lines[r[5]] = (r[6], r[7])
    return held


async def provider_money(sandbox: Sandbox, order_id: str) -> dict[str, list[int]]:
    """Refund id -> the amounts of its provider refunds that have not failed."""
    paid: dict[str, list[int]] = {}
    for r in await sandbox.refunds(order_id):
        if r["status"] != "failed":
            paid.setdefault(r["metadata"].get("refund_id", "?"), []).append(r["amount"])
    return paid
