"""Every notification to the customer carries their signed link to the tracking page
(issue 13): added by the outbox dispatcher at delivery, so the pages' secret stays out of
workflow history and the stored outbox, and only the customer's channel gets it."""

from __future__ import annotations

import json

import aiohttp
import asyncpg
import pytest

from client.refund_client import RefundClient
from tests.conftest import Sandbox
from tests.integration.api_support import Api
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_refund_flow import make_request

pytestmark = pytest.mark.stack


async def test_each_notification_to_the_customer_links_to_their_tracking_page(
    refunds: RefundClient, sandbox: Sandbox, api: Api, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(amount=4000)
    started = await refunds.request(make_request(order, locale="zh-CN"))
    done = await wait_for_state(refunds, started.refund_id, "completed")
    told = await eventually(
        lambda: sandbox.inbox(started.refund_id),
        lambda rows: len(rows) == len([e for e in done.timeline if e.from_state != e.state]),
    )
    links = {row["tracking_url"] for row in told}
    prefix = f"{api.base}/track/{started.refund_id}?"
    assert all(link and link.startswith(prefix) for link in links), links
    assert all(link.endswith("&lang=zh-CN") for link in links), links
    # In the notice's language whatever the browser's (a trial: a Chinese notice's link
    # opened in English in an English browser).
    async with aiohttp.ClientSession(headers={"Accept-Language": "en-GB,en"}) as browser:
        async with browser.get(next(iter(links))) as page:
            assert page.status == 200
            assert "已退款" in await page.text()  # the customer's language: paid
        forged = next(iter(links)).replace("&s=", "&s=x")
        async with browser.get(forged) as page:
            assert page.status in (403, 404)
    # Not in what is stored (history, outbox): only in what the customer was sent.
    stored = await db.fetch(
        "SELECT payload::text AS payload FROM refundflow.outbox WHERE refund_id = $1",
        started.refund_id,
    )
    assert stored and all(
        json.loads(r["payload"])["notification"].get("tracking_url") is None for r in stored
    )
