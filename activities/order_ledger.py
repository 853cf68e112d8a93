"""The order ledger in Postgres (migration 0005): what every refund of
an order holds per line, and how a reservation follows its refund. The rule itself is
workflows/ledger.py (pure); activities/reserving.py applies it under the order's row lock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic import TypeAdapter

from activities.reconciliation_sql import NEWEST_RUN
from workflows.ledger import NOT_A_LINE, Hold, allocate
from workflows.models import OrderLine, OrderSnapshot, StatusProjection
from workflows.money_around import MoneyAround
from workflows.read_models import LedgerLine, OrderLedger
from workflows.states import RefundEvent, TimelineEvent


def holds_json(order_id: str, but: str) -> str:
    """A subquery: every reservation on order `order_id` that is not released, but refund
    `but`'s own, oldest first (a refusal names the refunds in the order they took the
    units), with what it holds of each line, as one JSON array (`HOLDS` reads it). Its
    arguments are the placeholders of the statement it goes into ("$1"): it is read with
    other facts in one round trip (the edge, activities/reserving.py)."""
    return f"""
      (SELECT coalesce(json_agg(json_build_object('refund_id', r.refund_id, 'state', r.state,
                 'amount', r.amount, 'requested_amount', r.requested_amount, 'basis', r.basis,
                 'approved_less', r.approved_less,
                 'reason_code', r.reason_code, 'lines',
                 (SELECT coalesce(json_agg(json_build_object('sku', l.sku,
                          'quantity', l.quantity, 'amount', l.amount) ORDER BY l.sku), '[]')
                  FROM refundflow.reservation_lines l WHERE l.refund_id = r.refund_id))
               ORDER BY r.created_at, r.refund_id), '[]')::text
       FROM refundflow.reservations r
       WHERE r.order_id = {order_id} AND r.state <> 'released' AND r.refund_id <> {but})"""


HOLDS = TypeAdapter(list[Hold])


async def holds(db: asyncpg.Connection | asyncpg.Pool, order_id: str, but: str) -> list[Hold]:
    """Every other refund's hold on the order (holds_json)."""
    return HOLDS.validate_json(await db.fetchval(f"SELECT {holds_json('$1', '$2')}", order_id, but))


def lines_json(order_id: str) -> str:
    """A subquery: the order's lines as first recorded, as one JSON array (`LINES` reads
    it; `[]`: none recorded yet)."""
    return f"""
      (SELECT coalesce(json_agg(json_build_object('sku', sku, 'quantity', quantity,
                 'unit_price', unit_price, 'category', category) ORDER BY position), '[]')::text
       FROM refundflow.order_lines WHERE order_id = {order_id})"""


LINES = TypeAdapter(list[OrderLine])


@dataclass(frozen=True)
class LedgerRead:
    """What the edge reads of an order's ledger before it reserves, in one round trip."""

    state: str | None
    """The refund's last recorded state (None: it has none)."""
    holds: list[Hold]
    """Every other refund's hold on the order."""
    captured_amount: int | None
    """The order's capture as first recorded (None: no refund of it was held yet)."""

    def judged_order(self, order: OrderSnapshot) -> OrderSnapshot:
        """`order` with the capture its ledger judges requests by: the first recorded
        (activities/reserving.py), or the order system's if that is less now (a partial
        void: never more than the provider can refund). Judged on a capture grown since
        (shipping captured later), an amount was split onto money the ledger does not
        know, and refused "ask again" every time it was asked again.

        Only the capture: the lines stay the order system's, which the workflow verifies
        and takes its fees on (a request judged on other lines than the workflow's could
        be told one fee and pay another). Lines changed since the first refund still meet
        the ledger's refusal; that case is left to a person."""
        if self.captured_amount is None or self.captured_amount >= order.captured_amount:
            return order
        return order.model_copy(update={"captured_amount": self.captured_amount})


async def state_and_holds(
    db: asyncpg.Connection | asyncpg.Pool, order_id: str, refund_id: str
) -> LedgerRead:
    """The refund's last recorded state, every other refund's hold on its order and the
    order's capture as first recorded, in one read: what the edge asks before it reserves."""
    row = await db.fetchrow(
        "SELECT (SELECT state FROM refundflow.refund_status WHERE refund_id = $2) AS state,"
        f" {holds_json('$1', '$2')} AS holds,"
        " (SELECT captured_amount FROM refundflow.order_ledger WHERE order_id = $1)"
        " AS captured_amount",
        order_id,
        refund_id,
    )
    return LedgerRead(
        state=row["state"],
        holds=HOLDS.validate_json(row["holds"]),
        captured_amount=row["captured_amount"],
    )


# A reviewer's approval (or the first of two) is where a refund can be cut below its hold.
APPROVALS = frozenset({RefundEvent.APPROVE.value, TimelineEvent.FIRST_APPROVAL.value})


async def follow_refund(
    conn: asyncpg.Connection, p: StatusProjection, events: Iterable[str] = ()
) -> None:
    """The reservation follows the refund: released when it is cancelled (its units are
    free again), fixed at the paid amount when it completes. A completed refund the provider
    reversed keeps its consumed reservation while an operator decides; cancelled then, it
    is released too (the cancel proved with the provider that no money is out).

    A hold is cut to its refund's amount from the approval (`events`: the batch's) that
    approved less, not only once paid: a trial had the rest auto-approved and paid while the
    cut refund's payment was pending (second_asks.cut_by_a_reviewer reads `approved_less`),
    and another saw 150.00 held for a refund approved for 50.00 while it waited for an
    operator."""
    if p.state.value in ("pending_review", "approved", "refunding"):
        if APPROVALS.intersection(events):  # only where a reviewer acted
            await _cut_at_approval(conn, p)
    elif p.state.value == "cancelled":
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
        # By amount or by lines (a trial: a TV approved for 12.00 of 255.00, then a cable of
        # the same order was paid by the policy alone): second_asks.cut_by_a_reviewer.
        approved_less = held["basis"] is not None and 0 < p.amount < held["amount"]
        await conn.execute(
            "UPDATE refundflow.reservations SET state = 'consumed', amount = $2,"
            " approved_less = approved_less OR $3, updated_at = now() WHERE refund_id = $1",
            p.refund_id,
            p.amount,
            approved_less,
        )
        if approved_less and held["basis"] == "amount":  # lines close their units whole
            await _shrink_amount_hold(conn, p.refund_id, held["amount"], p.amount)


async def _cut_at_approval(conn: asyncpg.Connection, p: StatusProjection) -> None:
    """A reviewer approved less than the refund holds: from now on it holds what it will
    pay, and the rest is free on the order (by amount; lines keep their units), as at
    completion. Refunds the policy approved hold no more than they pay: nothing to cut."""
    held = await conn.fetchrow(
        "SELECT amount, basis FROM refundflow.reservations"
        " WHERE refund_id = $1 AND state = 'held' FOR UPDATE",
        p.refund_id,
    )
    if held is None or not 0 < p.amount < held["amount"]:
        return
    await conn.execute(
        "UPDATE refundflow.reservations SET amount = $2, approved_less = approved_less OR $3,"
        " updated_at = now() WHERE refund_id = $1",
        p.refund_id,
        p.amount,
        held["basis"] is not None,  # as at completion: holds from before bases were kept
    )
    if held["basis"] == "amount":
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


_TAKEN_BACK = "r.state = 'consumed' AND s.state IS NOT NULL AND s.state <> 'completed'"
"""A consumed hold whose refund is open again: paid, then taken back by the provider (a
reversal reopens the refund), so not refunded any more (a trial read "refunded 40.00")."""


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
        "SELECT l.sku, r.state, r.refund_id, l.quantity, l.amount, r.amount AS money,"
        f" {_TAKEN_BACK} AS taken_back"
        " FROM refundflow.reservation_lines l JOIN refundflow.reservations r USING (refund_id)"
        " LEFT JOIN refundflow.refund_status s ON s.refund_id = r.refund_id"
        " WHERE r.order_id = $1 AND r.state <> 'released' ORDER BY r.created_at, r.refund_id",
        order_id,
    )
    money = await pool.fetch(
        f"SELECT r.refund_id, r.state, r.amount, {_TAKEN_BACK} AS taken_back"
        " FROM refundflow.reservations r LEFT JOIN refundflow.refund_status s USING (refund_id)"
        " WHERE r.order_id = $1 AND r.state <> 'released' ORDER BY r.created_at, r.refund_id",
        order_id,
    )
    paid = [r for r in money if r["state"] == "consumed"]
    return OrderLedger(
        order_id=order_id,
        currency=order["currency"].strip(),
        captured_amount=order["captured_amount"],
        # Taken back counts as held, as its lines do: its refund is open again (a trial read
        # "held 0.00" above a line "held 80.00", in the console and the review API).
        held=sum(r["amount"] for r in money if r["state"] == "held" or r["taken_back"]),
        refunded=sum(r["amount"] for r in paid if not r["taken_back"]),
        taken_back=sum(r["amount"] for r in paid if r["taken_back"]),
        refunds=[r["refund_id"] for r in money],
        lines=_ledger_lines(order["captured_amount"], lines, taken),
    )


def _money_shares(taken: list[Any]) -> dict[tuple[str, str], int]:
    """Each refund's money (what it holds or paid) shared over the lines it reserved, in
    proportion to their reserved worth: (refund id, sku) -> minor units. A line refund
    approved for less (1.50 of a 300.00 unit) has its unit counted as refunded, but the line
    shows the 1.50 paid, and the lines add up to the order's held and refunded figures."""
    by_refund: dict[str, list[Any]] = {}
    for row in taken:
        by_refund.setdefault(row["refund_id"], []).append(row)
    shares: dict[tuple[str, str], int] = {}
    for refund_id, rows in by_refund.items():
        worth = [(r["sku"], r["amount"]) for r in rows]
        money = min(rows[0]["money"], sum(amount for _, amount in worth))
        for sku, share in allocate(money, worth):
            shares[(refund_id, sku)] = share
    return shares


def _ledger_lines(captured: int, lines: list[Any], taken: list[Any]) -> list[LedgerLine]:
    """One row per order line, and one for the part of the capture no line accounts for
    when a refund holds some of it."""
    money = _money_shares(taken)
    worth = {r["sku"]: (r["quantity"], r["quantity"] * r["unit_price"]) for r in lines}
    not_a_line = captured - sum(value for _, value in worth.values())
    if any(t["sku"] == NOT_A_LINE for t in taken):
        worth[NOT_A_LINE] = (0, max(not_a_line, 0))
    out = []
    for sku, (quantity, value) in worth.items():
        mine = [t for t in taken if t["sku"] == sku]
        # Taken back by the provider: its refund is open again, so its lines are held.
        held = [t for t in mine if t["state"] == "held" or t["taken_back"]]
        done = [t for t in mine if t["state"] == "consumed" and not t["taken_back"]]
        out.append(
            LedgerLine(
                sku=sku,
                quantity=quantity,
                value=value,
                held_quantity=sum(t["quantity"] for t in held),
                held_amount=sum(money[(t["refund_id"], sku)] for t in held),
                refunded_quantity=sum(t["quantity"] for t in done),
                refunded_amount=sum(money[(t["refund_id"], sku)] for t in done),
                refunds=list(dict.fromkeys(t["refund_id"] for t in mine)),
            )
        )
    return out


async def paid_elsewhere_on(pool: asyncpg.Pool, order_id: str, but: str) -> int:
    """Money the order's other refunds recorded as paid outside the provider (an operator's
    `paid_elsewhere`): payouts the provider's ledger does not show."""
    return sum((await paid_elsewhere_by_refund(pool, order_id, but)).values())


async def paid_elsewhere_by_refund(pool: asyncpg.Pool, order_id: str, but: str) -> dict[str, int]:
    """The order's other refunds recorded as paid outside the provider, and their amounts:
    in any state, as soon as the record is written (a refund whose returned item is still
    being restocked is `refunding` for as long as the warehouse is down: a review)."""
    rows = await pool.fetch(
        "SELECT s.refund_id, s.amount FROM refundflow.refund_status s"
        " WHERE s.order_id = $1 AND s.refund_id <> $2"
        " AND EXISTS (SELECT 1 FROM refundflow.audit a"
        "             WHERE a.refund_id = s.refund_id AND a.event = 'paid_elsewhere')",
        order_id,
        but,
    )
    return {row["refund_id"]: int(row["amount"]) for row in rows}


def money_around_json(order_id: str) -> str:
    """A subquery: the open findings of money refunded on order `order_id` around
    refundflow (workflows/money_around.py), from reconciliation's newest finished run, as
    one JSON array (`AROUND` reads it). `order_id`: a placeholder ("$1"), as holds_json."""
    return f"""
      (SELECT coalesce(json_agg(json_build_object('kind', f.kind, 'found_at', f.created_at,
                 'currency', coalesce(f.details->>'currency', o.currency),
                 'beyond', CASE f.kind
                     WHEN 'paid_above_capture'
                     THEN (f.details->>'out')::bigint - (f.details->>'captured')::bigint
                     ELSE (f.details->>'provider_paid')::bigint
                          - coalesce(f.details->>'accounted_for', f.details->>'ledger')::bigint
                     END)), '[]')::text
       FROM refundflow.findings f
       -- Findings from before a056248 name no currency or accounted_for: read as they were
       -- written (the ledger then stood for what was accounted for), not refused.
       LEFT JOIN refundflow.order_ledger o ON o.order_id = f.order_id
       WHERE f.order_id = {order_id}
         AND f.kind IN ('paid_above_capture', 'provider_money_above_ledger')
         AND f.run_id = ({NEWEST_RUN}))"""


AROUND = TypeAdapter(list[MoneyAround])


async def money_around(db: asyncpg.Connection | asyncpg.Pool, order_id: str) -> list[MoneyAround]:
    """The order's open findings of money refunded around refundflow (money_around_json)."""
    return AROUND.validate_json(await db.fetchval(f"SELECT {money_around_json('$1')}", order_id))
