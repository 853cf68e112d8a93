"""Seeding Postgres for the reconciliation phase: set-based, as many rows as asked."""

from __future__ import annotations

import uuid
from typing import Any


async def seed_reconciliation(pool: Any, rows: int) -> None:
    """`rows` completed refunds with matching payments and provider refunds, set-based."""
    tag = uuid.uuid4().hex[:8]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO sandbox.payments (payment_reference, order_id, currency, captured_amount,"
            " refunded_amount) SELECT 'pay_seed_' || $1 || i, 'ord_seed_' || $1 || i, 'USD',"
            " 5000, 2500 FROM generate_series(1, $2) AS i",
            tag, rows,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO sandbox.refunds (provider_refund_id, idempotency_key, request_hash,"
            " payment_reference, order_id, amount, currency, status, metadata)"
            " SELECT 're_seed_' || $1 || i, 'rf_seed_' || $1 || i || ':refund', 'seed',"
            " 'pay_seed_' || $1 || i, 'ord_seed_' || $1 || i, 2500, 'USD', 'succeeded',"
            " jsonb_build_object('refund_id', 'rf_seed_' || $1 || i)"
            " FROM generate_series(1, $2) AS i",
            tag, rows,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO refundflow.refund_status (refund_id, refund_key, order_id, state, amount,"
            " currency, awaiting, escalation_level, policy_version, reason_code, channel,"
            " requested_at, updated_at, last_seq)"
            " SELECT 'rf_seed_' || $1 || i, 'seed', 'ord_seed_' || $1 || i, 'completed', 2500,"
            " 'USD', 'nothing', 0, 'seed', 'damaged', 'api', now() - interval '1 day',"
            " now() - interval '1 day', 4 FROM generate_series(1, $2) AS i",
            tag, rows,
        )  # fmt: skip
        await conn.execute("ANALYZE refundflow.refund_status")
        await conn.execute("ANALYZE sandbox.refunds")
