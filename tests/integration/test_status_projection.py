"""Status reads come from the projection written with the audit, and it is exact wherever a
refund waits: the stored view equals what the workflow answers live (issue 15, item 3)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from temporalio.testing import TimeSkipper

from client.refund_client import RefundClient
from client.settings import Settings
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox, make_client
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_cli import cli_json
from tests.integration.test_refund_flow import make_request
from worker.devstack import DevStack
from workflows.states import Awaiting

pytestmark = pytest.mark.stack


async def same_as_live(refunds: RefundClient, refund_id: str) -> None:
    store = await refunds.store()
    stored = await store.status_view(refund_id)
    assert stored is not None, "the projection keeps the whole status"
    live = await refunds.status(refund_id, live=True)
    assert stored.model_dump() == live.model_dump()
    assert (await refunds.status(refund_id)).model_dump() == live.model_dump()


async def test_the_stored_status_is_the_live_one_at_every_wait(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    # Waiting for a reviewer (above the support limit), then paid on a lead's approval.
    order = await sandbox.order(amount=30000)
    waiting = await refunds.request(make_request(order))
    assert waiting.awaiting is Awaiting.REVIEWER
    await same_as_live(refunds, waiting.refund_id)
    await refunds.approve(waiting.refund_id, "li", role="lead")
    await wait_for_state(refunds, waiting.refund_id, "completed")
    await same_as_live(refunds, waiting.refund_id)

    # Auto-approved and paid at once.
    small = await refunds.request(make_request(await sandbox.order(amount=4000)))
    await wait_for_state(refunds, small.refund_id, "completed")
    await same_as_live(refunds, small.refund_id)

    # The provider refuses: waiting for an operator, with the provider's reason.
    await faults.set_faults({"payment.refuse": "account_closed"})
    refused = await refunds.request(make_request(await sandbox.order(amount=4000)))
    await eventually(
        lambda: refunds.status(refused.refund_id, live=True),
        lambda view: view.awaiting is Awaiting.OPERATOR,
    )
    await faults.clear_faults()
    await same_as_live(refunds, refused.refund_id)

    # Withdrawn by the customer while waiting for review.
    order = await sandbox.order(amount=30000)
    withdrawn = await refunds.request(make_request(order))
    await refunds.cancel(withdrawn.refund_id, withdrawn.requested_by or "", "changed my mind")
    await same_as_live(refunds, withdrawn.refund_id)


def test_status_live_asks_the_workflow_and_says_the_same(stack: DevStack) -> None:
    # The CLI (through the API) reads the recorded status; --live asks the workflow: the
    # same answer while the refund waits for review.
    order = cli_json(stack, "sandbox", "order", "--amount", "30000", "--currency", "USD")
    ask = ["request", "--order", order["order_id"], "--amount", "30000", "--reason", "damaged"]
    ask += ["--channel", "web"]
    refund_id = cli_json(stack, *ask)["refund_id"]
    recorded = cli_json(stack, "status", refund_id)
    live = cli_json(stack, "status", refund_id, "--live")
    assert recorded["awaiting"] == "reviewer" and recorded == live


async def test_a_burst_of_first_reads_opens_one_pool(
    skipper: TimeSkipper, settings: Settings, http: aiohttp.ClientSession
) -> None:
    # A service's first 20 reads at once share the pool the first one opens: one pool per
    # caller left all but the last open, their connections never closed.
    fresh = make_client(skipper, settings, http, settings.policy)
    try:
        stores = await asyncio.gather(*(fresh.store() for _ in range(20)))
        assert len({id(store.pool) for store in stores}) == 1
        assert await stores[0].status_view("no-such-refund") is None
    finally:
        await fresh.close()
