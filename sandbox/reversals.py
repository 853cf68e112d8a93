"""The sandbox provider taking back refunds it paid: what reopens a completed refund.

A real provider reports a paid refund as failed days later when the customer's bank returns
the money (Stripe: the refund turns `failed`, `charge.refund.updated`; Adyen:
REFUND_FAILED / REFUNDED_REVERSED). Here that happens by fault (`payment.reverse_rate`,
after `payment.reverse_after_ms`) or on demand (`POST /_sandbox/refunds/{id}/reverse`).
A reversal gives the amount back to the payment and queues a signed `refund.failed` webhook.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web

from sandbox import records
from sandbox.faults import PaymentFaults, roll

REVERSAL_CODE = "expired_or_canceled_card"
"""The failure code of a reversed refund (one of Stripe's refund failure reasons)."""


async def maybe_schedule(
    conn: asyncpg.Connection, row: asyncpg.Record, faults: PaymentFaults
) -> None:
    """A refund that has just succeeded: by fault, have it reversed later."""
    if row["status"] == "succeeded" and roll(faults.reverse_rate):
        await conn.execute(
            "UPDATE sandbox.refunds SET reverse_at = now() + make_interval(secs => $2)"
            " WHERE provider_refund_id = $1",
            row["provider_refund_id"],
            faults.reverse_after_ms / 1000,
        )


async def reverse_due(conn: asyncpg.Connection, send_webhooks: bool) -> int:
    """Reverse the succeeded refunds whose time has come (in the caller's transaction)."""
    rows = await conn.fetch(
        "UPDATE sandbox.refunds SET status = 'failed', failure_code = $1, reverse_at = NULL"
        " WHERE provider_refund_id IN (SELECT provider_refund_id FROM sandbox.refunds"
        "   WHERE status = 'succeeded' AND reverse_at <= now()"
        "   ORDER BY reverse_at LIMIT 100 FOR UPDATE SKIP LOCKED)"
        " RETURNING *",
        REVERSAL_CODE,
    )
    for row in rows:
        await records.give_back(conn, row)
        if send_webhooks:
            await queue_webhook(conn, "refund.failed", records.refund_row(row))
    return len(rows)


async def queue_webhook(conn: asyncpg.Connection, kind: str, refund: dict[str, Any]) -> None:
    event_id = f"evt_{secrets.token_hex(8)}"
    event = {
        "id": event_id,
        "type": kind,
        "created": int(datetime.now(UTC).timestamp()),
        "data": {"object": refund},
    }
    await conn.execute(
        "INSERT INTO sandbox.webhook_events (event_id, type, payload) VALUES ($1, $2, $3)",
        event_id,
        kind,
        json.dumps(event),
    )


def add_routes(app: web.Application, pool_of: Any) -> None:
    """`POST /_sandbox/refunds/{refund_id}/reverse`: reverse a succeeded refund now (demos,
    tests). `pool_of(app)` gives the sandbox's connection pool."""

    async def reverse_now(request: web.Request) -> web.Response:
        provider_refund_id = request.match_info["refund_id"]
        scheduled = await pool_of(request.app).fetchval(
            "UPDATE sandbox.refunds SET reverse_at = now() WHERE provider_refund_id = $1"
            " AND status = 'succeeded' RETURNING provider_refund_id",
            provider_refund_id,
        )
        if scheduled is None:
            message = f"no succeeded refund {provider_refund_id} to reverse"
            error = {"code": "not_reversible", "message": message}
            return web.json_response({"error": error}, status=409)
        return web.json_response({"reversing": provider_refund_id}, status=202)

    app.router.add_post("/_sandbox/refunds/{refund_id}/reverse", reverse_now)
