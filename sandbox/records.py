"""The sandbox provider's and warehouse's records as their APIs show them (Stripe's shape)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from sandbox.faults import PaymentFaults, roll

# What the sandbox provider asks of a customer whose refund needs action.
ACTION_INSTRUCTIONS = "confirm your bank details at https://pay.example.test/refund-details"


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def settles_to(pending: bool, faults: PaymentFaults) -> str:
    if pending and roll(faults.settle_failure_rate):
        return "failed"
    if pending and roll(faults.settle_cancel_rate):
        return "canceled"
    return "succeeded"


async def give_back(conn: asyncpg.Connection, refund: asyncpg.Record) -> None:
    """A refund that moved no money after all (failed, canceled, reversed): its amount is
    refundable on the payment again."""
    await conn.execute(
        "UPDATE sandbox.payments SET refunded_amount = refunded_amount - $2"
        " WHERE payment_reference = $1",
        refund["payment_reference"],
        refund["amount"],
    )


def refund_row(row: asyncpg.Record) -> dict[str, Any]:
    # Stripe's shape: what the customer must do rides in `next_action`.
    action = {"type": "customer_details", "instructions": ACTION_INSTRUCTIONS}
    return {
        **({"next_action": action} if row["status"] == "requires_action" else {}),
        "id": row["provider_refund_id"],
        "idempotency_key": row["idempotency_key"],
        "payment_reference": row["payment_reference"],
        "order_id": row["order_id"],
        "amount": row["amount"],
        "currency": row["currency"],
        "status": row["status"],
        "failure_code": row["failure_code"],
        "metadata": json.loads(row["metadata"]),
        "created_at": iso(row["created_at"]),
    }


def movement_row(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["movement_id"],
        "idempotency_key": row["idempotency_key"],
        "sku": row["sku"],
        "quantity": row["quantity"],
        "reference": row["reference"],
        "created_at": iso(row["created_at"]),
    }
