"""The sandbox provider cancelling a refund it has not paid, as Stripe does
(`POST /v1/refunds/{id}/cancel`): only a refund that requires the customer's action can be
canceled; any other is refused (400, `refund_not_cancelable`) and stays as it is. A cancel
gives the amount back to the payment and queues a signed `refund.canceled` webhook."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox import records, reversals
from sandbox.store import SandboxError


def add_routes(app: web.Application, pool_of: Any, send_webhooks: Any) -> None:
    """`pool_of(app)`: the sandbox's connection pool; `send_webhooks(app)`: whether
    webhooks go out now (the faults say)."""

    async def cancel(request: web.Request) -> web.Response:
        provider_refund_id = request.match_info["refund_id"]
        async with pool_of(request.app).acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT * FROM sandbox.refunds WHERE provider_refund_id = $1 FOR UPDATE",
                provider_refund_id,
            )
            if row is None:
                raise SandboxError(404, "refund_not_found", f"no refund {provider_refund_id}")
            if row["status"] != "requires_action":
                raise SandboxError(
                    400,
                    "refund_not_cancelable",
                    f"refund is {row['status']}: only a refund that requires action can be"
                    " canceled",
                )
            canceled = await conn.fetchrow(
                "UPDATE sandbox.refunds SET status = 'canceled', settle_at = NULL"
                " WHERE provider_refund_id = $1 RETURNING *",
                provider_refund_id,
            )
            await records.give_back(conn, row)
            refund = records.refund_row(canceled)
            if send_webhooks(request.app):
                await reversals.queue_webhook(conn, "refund.canceled", refund)
        return web.json_response(refund)

    app.router.add_post("/payments/v1/refunds/{refund_id}/cancel", cancel)
