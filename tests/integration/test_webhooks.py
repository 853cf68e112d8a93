"""The webhook receiver: only signed, fresh, first-seen events reach a refund."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import asyncpg
import pytest

from client.refund_client import RefundClient
from sandbox.admin_client import SandboxAdmin
from sandbox.webhooks import SIGNATURE_HEADER, sign
from tests.conftest import Sandbox
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_refund_flow import make_request
from worker.devstack import DevStack
from workflows.models import StatusView

pytestmark = pytest.mark.stack


def event(provider_refund_id: str, refund_id: str, kind: str = "refund.succeeded") -> str:
    return json.dumps(
        {
            "id": f"evt_test_{provider_refund_id}_{kind}",
            "type": kind,
            "created": int(time.time()),
            "data": {"object": {"id": provider_refund_id, "metadata": {"refund_id": refund_id}}},
        }
    )


async def post(
    http: aiohttp.ClientSession, stack: DevStack, body: str, signature: str
) -> tuple[int, dict[str, Any]]:
    async with http.post(
        stack.webhook_url,
        data=body,
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
    ) as response:
        return response.status, await response.json()


async def pending_refund(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> tuple[StatusView, str]:
    """A refund the provider holds as pending for an hour, with no webhook of its own."""
    await faults.set_faults(
        {
            "payment.pending_rate": "1",
            "payment.settle_after_ms": "3600000",
            "payment.webhooks": "false",
        }
    )
    order = await sandbox.order(amount=4000)
    status = await refunds.request(make_request(order))
    await eventually(
        lambda: refunds.status(status.refund_id),
        lambda s: any(e.event == "provider_pending" for e in s.timeline),
    )
    ledger = await sandbox.refunds(order["order_id"])
    return status, ledger[0]["id"]


async def provider_settles(db: asyncpg.Pool, provider_id: str) -> None:
    """The provider settles the refund (as it has by the time it sends a real webhook)."""
    await db.execute(
        "UPDATE sandbox.refunds SET status = 'succeeded' WHERE provider_refund_id = $1",
        provider_id,
    )


async def test_signed_event_settles_the_refund_and_a_repeat_is_a_duplicate(
    refunds: RefundClient,
    sandbox: Sandbox,
    faults: SandboxAdmin,
    stack: DevStack,
    http: aiohttp.ClientSession,
    db: asyncpg.Pool,
) -> None:
    status, provider_id = await pending_refund(refunds, sandbox, faults)
    await provider_settles(db, provider_id)
    body = event(provider_id, status.refund_id)
    assert await post(http, stack, body, sign(stack.webhook_secret, body)) == (
        200,
        {"status": "delivered"},
    )
    done = await wait_for_state(refunds, status.refund_id, "completed")
    assert "settled via webhook" in done.timeline[-1].reason
    again = await post(http, stack, body, sign(stack.webhook_secret, body))
    assert again == (200, {"status": "duplicate"})


async def test_a_signed_event_the_provider_does_not_bear_out_changes_no_money(
    refunds: RefundClient,
    sandbox: Sandbox,
    faults: SandboxAdmin,
    stack: DevStack,
    http: aiohttp.ClientSession,
) -> None:
    """Whoever holds the secret (or Temporal access) cannot complete a refund by saying so:
    the workflow asks the provider, which still holds the refund as pending."""
    status, provider_id = await pending_refund(refunds, sandbox, faults)
    body = event(provider_id, status.refund_id)
    assert (await post(http, stack, body, sign(stack.webhook_secret, body)))[0] == 200
    ignored = await eventually(
        lambda: refunds.status(status.refund_id),
        lambda s: s.timeline[-1].event == "settlement_unconfirmed",
    )
    assert (ignored.state.value, ignored.awaiting.value) == ("refunding", "payment_provider")
    assert "the provider says pending" in ignored.timeline[-1].reason


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (lambda secret, body: sign("not-the-secret", body), "signature does not match"),
        (lambda secret, body: sign(secret, body, int(time.time()) - 301), "tolerance"),
        (lambda secret, body: sign(secret, body + " "), "signature does not match"),
        (lambda secret, body: "", "missing signature"),
        (lambda secret, body: "t=abc", "malformed"),
    ],
)
async def test_forged_or_stale_events_are_rejected_and_change_nothing(
    refunds: RefundClient,
    sandbox: Sandbox,
    faults: SandboxAdmin,
    stack: DevStack,
    http: aiohttp.ClientSession,
    db: asyncpg.Pool,
    forge: Any,
    reason: str,
) -> None:
    status, provider_id = await pending_refund(refunds, sandbox, faults)
    body = event(provider_id, status.refund_id)
    code, answer = await post(http, stack, body, forge(stack.webhook_secret, body))
    assert code == 400 and reason in answer["error"]
    await asyncio.sleep(0.5)
    after = await refunds.status(status.refund_id)
    assert (after.state.value, after.awaiting.value) == ("refunding", "payment_provider")
    seen = "SELECT count(*) FROM refundflow.webhook_events WHERE refund_id = $1"
    assert await db.fetchval(seen, status.refund_id) == 0


async def test_webhook_that_arrives_before_the_provider_call_returns(
    refunds: RefundClient,
    sandbox: Sandbox,
    faults: SandboxAdmin,
    stack: DevStack,
    http: aiohttp.ClientSession,
    db: asyncpg.Pool,
) -> None:
    # The provider commits a pending refund, then takes 3 s to answer; its webhook (sent by
    # us here, signed) gets there first.
    await faults.set_faults(
        {
            "payment.pending_rate": "1",
            "payment.settle_after_ms": "3600000",
            "payment.webhooks": "false",
            "payment.response_delay_ms": "3000",
        }
    )
    order = await sandbox.order(amount=4000)
    status = await refunds.request(make_request(order))
    query = "SELECT provider_refund_id FROM sandbox.refunds WHERE order_id = $1"
    provider_id = await eventually(lambda: db.fetchval(query, order["order_id"]), bool)
    await provider_settles(db, provider_id)
    body = event(provider_id, status.refund_id)
    assert (await post(http, stack, body, sign(stack.webhook_secret, body)))[0] == 200
    done = await wait_for_state(refunds, status.refund_id, "completed", timeout=60)
    assert done.provider_refund_id == provider_id
    # The call answered `pending` after the webhook had already settled it.
    events = [e.event for e in done.timeline]
    assert events.index("provider_pending") < events.index("provider_confirmed")
    assert "settled via webhook" in done.timeline[-1].reason
    assert len(await sandbox.refunds(order["order_id"])) == 1
