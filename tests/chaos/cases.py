"""The chaos cases. Each one drives a few refunds through a fault; the harness then checks
the invariants over whatever the case touched."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sandbox.webhooks import SIGNATURE_HEADER, sign
from tests.chaos.harness import Chaos, settle


@dataclass(frozen=True)
class Case:
    run: Callable[[Chaos], Awaitable[None]]
    fast: bool
    """Part of the README's test command (each case once); the rest run in the full suite."""


async def _settle_all(chaos: Chaos) -> None:
    """Let every refund of the run reach its end while the fault is still in force."""
    for refund_id in sorted(chaos.refund_ids):
        await settle(chaos, refund_id)


async def _assert_fired(chaos: Chaos, system: str, kind: str, before: int) -> None:
    after = await chaos.faults.injected(system, kind)
    assert after > before, f"the {system} {kind} fault never fired: the case proved nothing"


async def _wait_committed(chaos: Chaos, order_ids: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not all([await chaos.committed(o) for o in order_ids]):
        assert time.monotonic() < deadline, "the provider never committed"
        await asyncio.sleep(0.05)


async def kill9_worker_after_provider_commit(chaos: Chaos) -> None:
    await chaos.faults.set_faults({"payment.response_delay_ms": "3000"})
    orders = [await chaos.order(amount=4000) for _ in range(3)]
    for order in orders:
        await chaos.request(order)
    await _wait_committed(chaos, [o["order_id"] for o in orders])
    await asyncio.to_thread(chaos.stack.kill_worker)  # the answers die with it
    await chaos.faults.clear_faults()
    await asyncio.to_thread(chaos.stack.start_worker)


async def provider_commits_then_response_lost(chaos: Chaos) -> None:
    before = await chaos.faults.injected("payment", "lost_responses")
    await chaos.faults.set_faults({"payment.lose_response_rate": "1"})
    for _ in range(3):
        await chaos.request(await chaos.order(amount=4000))
    await _settle_all(chaos)
    await _assert_fired(chaos, "payment", "lost_responses", before)


async def provider_key_forgotten_before_retry(chaos: Chaos) -> None:
    # Partial refunds, so the capture limit cannot hide a second refund.
    before = await chaos.faults.injected("payment", "lost_responses")
    await chaos.faults.set_faults(
        {"payment.lose_response_rate": "1", "payment.idempotency_retention_s": "0"}
    )
    for _ in range(3):
        await chaos.request(await chaos.order(amount=10000), amount=3000)
    await _settle_all(chaos)
    await _assert_fired(chaos, "payment", "lost_responses", before)


async def storm_of_5xx(chaos: Chaos) -> None:
    before = await chaos.faults.injected("payment", "errors")
    # Four calls in ten fail; a retry after a failure makes two calls (look up, then create).
    await chaos.faults.set_faults({"payment.error_rate": "0.4", "inventory.error_rate": "0.4"})
    lines = [{"sku": "CUP-1", "quantity": 2, "unit_price": 1000, "category": "kitchen"}]
    for _ in range(2):
        order = await chaos.order(lines=lines)
        status = await chaos.request(
            order, client=chaos.returns, amount=None, lines=[{"sku": "CUP-1", "quantity": 2}]
        )
        for _ in range(200):
            if (await chaos.refunds.status(status.refund_id)).awaiting.value == "customer":
                break
            await asyncio.sleep(0.05)
        await chaos.returns.item_received(status.refund_id)
    # At 40 % a few calls may all succeed by chance: add refunds until the storm has hit one.
    for _ in range(10):
        await chaos.request(await chaos.order(amount=3000))
        await _settle_all(chaos)
        if await chaos.faults.injected("payment", "errors") > before:
            break
    await _assert_fired(chaos, "payment", "errors", before)


async def latency_beyond_the_activity_timeout(chaos: Chaos) -> None:
    # The provider commits, then answers after the 15 s activity timeout: the retry must
    # find the refund rather than create another.
    before = await chaos.faults.injected("payment", "delayed_responses")
    await chaos.faults.set_faults({"payment.response_delay_ms": "16000"})
    orders = [await chaos.order(amount=4000) for _ in range(2)]
    for order in orders:
        await chaos.request(order)
    await _settle_all(chaos)
    await _assert_fired(chaos, "payment", "delayed_responses", before)


async def _restart_mid_refund(
    chaos: Chaos, restart: Callable[[float], None], settle_after_ms: int
) -> None:
    """Refunds left pending at the provider while a server goes down and comes back."""
    await chaos.faults.set_faults(
        {"payment.pending_rate": "1", "payment.settle_after_ms": str(settle_after_ms)}
    )
    for _ in range(3):
        await chaos.request(await chaos.order(amount=4000))
    await asyncio.to_thread(restart, 1.0)
    await _settle_all(chaos)


async def temporal_restarted_mid_refund(chaos: Chaos) -> None:
    await _restart_mid_refund(chaos, chaos.stack.restart_temporal, 1500)


async def postgres_restarted_mid_refund(chaos: Chaos) -> None:
    await _restart_mid_refund(chaos, chaos.stack.restart_postgres, 1000)


async def fifty_identical_requests_from_every_channel(chaos: Chaos) -> None:
    order = await chaos.order(amount=4500)
    channels = ["web", "app", "support", "api"]
    answers = await asyncio.gather(
        *(
            chaos.request(order, refund_key="same-request", channel=channels[i % 4])
            for i in range(50)
        )
    )
    assert len({a.refund_id for a in answers}) == 1, "identical requests became several refunds"


async def concurrent_refunds_beyond_the_capture(chaos: Chaos) -> None:
    order = await chaos.order(amount=10000)
    results = await asyncio.gather(
        *(chaos.request(order, amount=3000) for _ in range(5)), return_exceptions=True
    )
    for result in results:  # refused at request time is a clear answer too
        if isinstance(result, BaseException) and "still refundable" not in str(result):
            raise result
    await _settle_all(chaos)


async def webhooks_duplicated_early_and_forged(chaos: Chaos) -> None:
    await chaos.faults.set_faults(
        {
            "payment.pending_rate": "1",
            "payment.settle_after_ms": "0",
            "payment.duplicate_webhooks": "3",
            "payment.response_delay_ms": "1000",  # the webhook gets there first
        }
    )
    statuses = [await chaos.request(await chaos.order(amount=4000)) for _ in range(3)]
    forged = json.dumps(
        {
            "id": f"evt_forged_{statuses[0].refund_id}",
            "type": "refund.failed",
            "created": int(time.time()),
            "data": {
                "object": {"id": "re_forged", "metadata": {"refund_id": statuses[0].refund_id}}
            },
        }
    )
    async with chaos.http.post(
        chaos.stack.webhook_url,
        data=forged,
        headers={SIGNATURE_HEADER: sign("guessed-secret", forged)},
    ) as response:
        assert response.status == 400, "a forged webhook was accepted"
    for status in statuses:
        final = await settle(chaos, status.refund_id)
        assert final.state.value == "completed", f"forged or early webhook broke {final}"


CASES: dict[str, Case] = {
    "kill -9 worker after provider commit": Case(kill9_worker_after_provider_commit, fast=False),
    "provider commits, response lost": Case(provider_commits_then_response_lost, fast=True),
    "provider key forgotten before retry": Case(provider_key_forgotten_before_retry, fast=True),
    "5xx storm (payment + inventory)": Case(storm_of_5xx, fast=True),
    "latency beyond activity timeout": Case(latency_beyond_the_activity_timeout, fast=False),
    "Temporal restarted mid-refund": Case(temporal_restarted_mid_refund, fast=False),
    "Postgres restarted mid-refund": Case(postgres_restarted_mid_refund, fast=False),
    "50 identical requests, 4 channels": Case(
        fifty_identical_requests_from_every_channel, fast=True
    ),
    "concurrent refunds beyond capture": Case(concurrent_refunds_beyond_the_capture, fast=True),
    "webhooks: duplicate, early, forged": Case(webhooks_duplicated_early_and_forged, fast=True),
}
