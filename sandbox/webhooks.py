"""The sandbox provider's webhook sender, signed like Stripe's:

Sandbox-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from activities.signing import sign
from sandbox.faults import Faults
from sandbox.store import SandboxStore

SIGNATURE_HEADER = "Sandbox-Signature"
__all__ = ["SIGNATURE_HEADER", "settle_and_deliver_forever", "sign"]
log = logging.getLogger("sandbox.webhooks")


async def settle_and_deliver_forever(
    store: SandboxStore, faults: list[Faults], url: str | None, secret: str
) -> None:
    """Background loop: settle due pending refunds, deliver queued webhooks with retries.

    `faults` is a one-element list holding the current fault settings (replaced on change).
    """
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while True:
            try:
                payment = faults[0].payment
                await store.settle_due_refunds(bool(url) and payment.webhooks, payment)
                if url:
                    for event_id, body, attempts in await store.due_webhooks():
                        delivered = False
                        for _ in range(1 + payment.duplicate_webhooks):
                            delivered = await _post(session, url, secret, body) or delivered
                        await store.mark_webhook(event_id, delivered, attempts + 1)
            except Exception:  # keep the sandbox alive; a real provider keeps sending
                log.exception("webhook loop failed; retrying")
            await asyncio.sleep(0.1)


async def _post(session: aiohttp.ClientSession, url: str, secret: str, body: str) -> bool:
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)}
    try:
        async with session.post(url, data=body, headers=headers) as response:
            return 200 <= response.status < 300
    except (aiohttp.ClientError, TimeoutError):
        return False
