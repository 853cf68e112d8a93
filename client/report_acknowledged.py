"""Which duplicate refunds of a report someone said are dealt with outside refundflow
(`refundflow acknowledge`), so that its banner need not say "investigate now" of them
(client/report.py counts them all the same: the money moved twice)."""

from __future__ import annotations

from typing import Any

import asyncpg

from activities.reconciliation_sql import acknowledgement_of, open_now

_DUPLICATE_KINDS = (
    "duplicate_provider_refunds",
    "units_refunded_twice",
    "provider_money_above_ledger",
    "paid_above_capture",
    "paid_elsewhere_and_by_provider",
)
"""Reconciliation's findings of money paid twice, the duplicates' own."""
_STANDING = (
    "f.kind = ANY($2::text[]) AND (f.order_id = o.id OR f.refund_id IN"
    " (SELECT refund_id FROM refundflow.refund_status WHERE order_id = o.id))"
    f" AND {open_now('f')}"
)
_ACKNOWLEDGED = (
    "EXISTS (SELECT 1 FROM refundflow.finding_acknowledgements k"
    f" WHERE {acknowledgement_of('f', 'k')})"
)
_ACKNOWLEDGED_ORDERS = f"""
    SELECT o.id FROM unnest($1::text[]) AS o(id)
    WHERE EXISTS (SELECT 1 FROM refundflow.findings f
                  WHERE {_STANDING} AND {_ACKNOWLEDGED})
      AND NOT EXISTS (SELECT 1 FROM refundflow.findings f
                      WHERE {_STANDING} AND NOT {_ACKNOWLEDGED})
    ORDER BY o.id
"""
"""Of the orders behind the duplicates, those whose standing findings of money paid twice
(the order's and its refunds') someone acknowledged, every one: dealt with outside
refundflow (`refundflow acknowledge`). An order with no finding yet (no run since) is not
among them."""


async def acknowledged_orders(conn: asyncpg.Connection, metrics: Any) -> list[str]:
    """`acknowledged_orders`. Only what reconciliation found can be acknowledged: a
    duplicate refundflow's own records show (confirmed twice, consumed above the capture,
    a unit refunded twice) stays to investigate (a review: an old acknowledgement on the
    order hid a new over-refund)."""
    found_only = set(metrics["duplicate_orders"]) - set(metrics["ledger_duplicate_orders"])
    rows = await conn.fetch(_ACKNOWLEDGED_ORDERS, sorted(found_only), _DUPLICATE_KINDS)
    return [row["id"] for row in rows]
