"""A deploy's SIGTERM (issue 14): the worker lets a provider call in flight finish before it
exits, so the answer is not lost and the next worker has nothing to look up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from client.refund_client import RefundClient
from client.refund_ids import refund_id_for
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_refund_flow import make_request
from worker.devstack import DevStack
from workflows.refund.fast_path import FAST_PATH_RETRY

pytestmark = pytest.mark.stack


async def provider_calls(sandbox: Sandbox, refund_id: str) -> list[dict[str, Any]]:
    async with sandbox.http.get(
        f"{sandbox.base}/_sandbox/calls", params={"refund_id": refund_id}
    ) as response:
        calls: dict[str, list[dict[str, Any]]] = await response.json()
    return calls.get("payment", [])


async def asked_until_the_provider_is_called(
    refunds: RefundClient,
    sandbox: Sandbox,
    amount: int,
    kind: str | None = None,
    first_step: bool = True,
) -> tuple[dict[str, Any], str, asyncio.Task[Any]]:
    """A refund asked for (the request left running), once the provider has a call for it
    in flight (of `kind`, when given): its order, its id and the request. `first_step`
    False: started without an update (Prefer: respond-async), so an auto-approved refund's
    whole run is one workflow task."""
    order = await sandbox.order(amount=amount)
    request = make_request(order)
    refund_id = refund_id_for(request.order_id, request.refund_key)

    async def ask() -> Any:
        return (await refunds.request_again_or_new(request, first_step=first_step))[0]

    asking = asyncio.create_task(ask())
    await eventually(
        lambda: provider_calls(sandbox, refund_id),
        lambda calls: any(c["outcome"] == "in_flight" and kind in (None, c["kind"]) for c in calls),
        timeout=30,
    )
    return order, refund_id, asking


async def test_sigterm_lets_the_provider_call_in_flight_finish(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, stack: DevStack
) -> None:
    # Every in-process try fails, so the payment goes to the durable activity: the one a
    # shutdown would cancel. Its call is then answered after 3 s.
    tries = FAST_PATH_RETRY.maximum_attempts
    await faults.set_faults(
        {"payment.fail_first_calls": str(tries), "payment.response_delay_ms": "3000"}
    )
    order, refund_id, asking = await asked_until_the_provider_is_called(refunds, sandbox, 4000)
    try:
        await asyncio.to_thread(stack.stop_worker)  # SIGTERM, as a deploy sends
        calls = await provider_calls(sandbox, refund_id)
        [create] = [c for c in calls if c["kind"] == "create" and c["outcome"] != "injected_error"]
        # The worker waited for the provider's answer before it exited.
        assert create["outcome"] == "answered", calls
    finally:
        await asyncio.to_thread(stack.start_worker)
    assert (await asking).refund_id == refund_id
    done = await wait_for_state(refunds, refund_id, "completed")
    assert done.amount == 4000
    assert len(await sandbox.refunds(order["order_id"])) == 1
