"""`refundflow webhooks`: receives the payment provider's webhooks and tells the workflow.

A webhook is accepted only with a valid signature (HMAC-SHA256 over "<timestamp>.<raw
body>", Stripe's scheme) and a timestamp within 300 s; it is deduplicated by the provider's
event id, then delivered to the refund's workflow as the `provider_settled` signal. If the
signal cannot be sent, the provider gets a 503 and sends again.
"""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any, Literal

import aiohttp
import asyncpg
import structlog
from aiohttp import web
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.http_adapters import HttpPaymentProvider, HttpService
from activities.pg_store import create_pool
from activities.ports import ExternalSystemUnavailable, PaymentProvider
from activities.reversals import reopen_if_reversed
from activities.signing import InvalidSignature, verify
from client.connections import connect_temporal
from client.settings import ConfigurationError, Settings
from worker.logging_setup import configure_logging
from workflows.models import ProviderSettlement
from workflows.refund.workflow import RefundWorkflow

SIGNATURE_HEADER = "Sandbox-Signature"
log = structlog.get_logger("refundflow.webhooks")
# The provider's events that end a refund, and what they say (others are ignored).
SETTLEMENTS: dict[str, Literal["succeeded", "failed", "canceled"]] = {
    "refund.succeeded": "succeeded",
    "refund.failed": "failed",
    "refund.canceled": "canceled",
}


class WebhookReceiver:
    def __init__(
        self,
        secret: str,
        temporal: Client,
        pool: asyncpg.Pool,
        provider: PaymentProvider,
        task_queue: str,
    ) -> None:
        self._secret = secret
        self._temporal = temporal
        self._pool = pool
        self._provider = provider
        self._task_queue = task_queue

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(self._secret, request.headers.get(SIGNATURE_HEADER), body)
            event = json.loads(body)
            event_id, kind = str(event["id"]), str(event["type"])
            refund = event["data"]["object"]
        except InvalidSignature as err:
            log.warning("webhook_rejected", reason=str(err))
            return web.json_response({"error": str(err)}, status=400)
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "malformed event"}, status=400)
        refund_id = (refund.get("metadata") or {}).get("refund_id")
        with structlog.contextvars.bound_contextvars(event_id=event_id, refund_id=refund_id):
            return await self._deliver(event_id, kind, refund_id, refund)

    async def _deliver(
        self, event_id: str, kind: str, refund_id: str | None, refund: dict[str, Any]
    ) -> web.Response:
        await self._pool.execute(
            "INSERT INTO refundflow.webhook_events (event_id, type, refund_id)"
            " VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING",
            event_id,
            kind,
            refund_id,
        )
        already = await self._pool.fetchval(
            "SELECT signalled_at IS NOT NULL FROM refundflow.webhook_events WHERE event_id = $1",
            event_id,
        )
        if already:
            log.info("webhook_duplicate")
            return web.json_response({"status": "duplicate"})
        final = SETTLEMENTS.get(kind)
        if final is None or not refund_id:
            log.info("webhook_ignored", type=kind)
            return web.json_response({"status": "ignored"})
        settlement = ProviderSettlement(
            provider_refund_id=refund["id"],
            status=final,
            failure_code=refund.get("failure_code"),
            source="webhook",
        )
        try:
            await self._temporal.get_workflow_handle(refund_id).signal(
                RefundWorkflow.provider_settled, settlement
            )
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                log.warning("webhook_signal_failed", error=err.message)
                return web.json_response({"error": "try again"}, status=503)
            if not await self._reopen_if_reversed(refund_id, settlement):
                return web.json_response({"error": "try again"}, status=503)
        await self._pool.execute(
            "UPDATE refundflow.webhook_events SET signalled_at = now() WHERE event_id = $1",
            event_id,
        )
        log.info("webhook_delivered", type=kind, provider_refund_id=refund["id"])
        return web.json_response({"status": "delivered"})

    async def _reopen_if_reversed(self, refund_id: str, settlement: ProviderSettlement) -> bool:
        """The refund's workflow has closed: a failure now may be the provider taking back
        a refund it paid (confirmed with it before the refund reopens). False: try again."""
        if settlement.status == "succeeded":
            log.info("webhook_for_closed_refund")  # reconciliation compares the ledgers
            return True
        try:
            outcome = await reopen_if_reversed(
                self._temporal,
                self._provider,
                self._task_queue,
                refund_id,
                "webhook",
                settlement.provider_refund_id,
            )
        except (RPCError, WorkflowQueryFailedError, ExternalSystemUnavailable) as err:
            log.warning("webhook_reopen_failed", error=str(err))
            return False
        log.info("webhook_for_closed_refund", reversal=outcome.value)
        return True


async def serve(settings: Settings, host: str, port: int) -> None:
    configure_logging(settings.log_format, settings.log_level)
    if not settings.webhook_secret:
        raise ConfigurationError("REFUNDFLOW_WEBHOOK_SECRET is not set")
    pool = await create_pool(settings.require_database_url())
    session = aiohttp.ClientSession()
    provider = HttpPaymentProvider(
        HttpService(session, settings.payment_provider_url, "payment provider")
    )
    temporal = await connect_temporal(settings)
    receiver = WebhookReceiver(
        settings.webhook_secret, temporal, pool, provider, settings.task_queue
    )
    app = web.Application()
    app.router.add_post("/webhooks/payments", receiver.handle)
    app.router.add_get("/health", lambda _: asyncio.sleep(0, web.json_response({"ok": True})))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("webhook_receiver_started", host=host, port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await session.close()
    await pool.close()
