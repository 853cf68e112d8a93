"""The API's Prometheus endpoint (issue 14 item 3): on a port of its own (never the public
one), the SDK's `temporal_*` client series and the API's: requests by route template and
status, latency, refunds requested by channel; scraped from the test stack's API."""

from __future__ import annotations

import uuid

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Sandbox
from tests.integration.api_support import Api
from tests.integration.test_worker_metrics import samples, scrape, value
from worker.devstack import DevStack

pytestmark = pytest.mark.stack


async def test_a_scrape_after_a_request_has_sdk_and_api_series(
    stack: DevStack, api: Api, sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    url = stack.describe()["api_metrics_url"]
    before = await scrape(http, url)
    # First: a file is counted once it is sent, a moment after the client has it (a scrape
    # right after it raced the count under the full suite's load).
    async with http.get(f"{api.base}/static/pages.css") as static:
        assert static.status == 200
    who = f"cust_{uuid.uuid4().hex[:10]}"
    order = await sandbox.order(amount=3000, category="general", customer_id=who)
    body = {"order_id": order["order_id"], "amount": 1000, "reason_code": "damaged"}
    key = f"metrics-{uuid.uuid4().hex[:8]}"
    made = await api.request_refund(who, body, key=key)
    again = await api.request_refund(who, body, key=key)
    assert (made.status, again.status) == (201, 200), made.body
    refund_id = made.body["refund_id"]
    tracked = await api.call("GET", f"/v1/refunds/{refund_id}/track", as_=who)
    assert tracked.status == 200
    # The public port has no /metrics: the series are for the internal scraper only.
    assert (await api.call("GET", "/metrics")).status == 404

    text = await scrape(http, url)
    families = {family.name for family in text_string_to_metric_families(text)}
    # The SDK's client series, through the Runtime the API's Temporal client was given.
    assert {"temporal_request", "temporal_request_latency"} <= families, sorted(families)

    def grew(name: str, **labels: str) -> float:
        return (value(text, name, **labels) or 0) - (value(before, name, **labels) or 0)

    requests = "refundflow_api_requests_total"
    # Counted under the route's template, never the refund's id, with the status answered.
    assert grew(requests, method="POST", route="/v1/refunds", status="201") == 1
    assert grew(requests, method="POST", route="/v1/refunds", status="200") == 1
    track = "/v1/refunds/{refund_id}/track"
    assert grew(requests, method="GET", route=track, status="200") == 1
    assert grew(requests, method="GET", route="unmatched", status="404") >= 1
    # The pages' static files under their mount, not as unmatched (a trial).
    assert grew(requests, method="GET", route="/static/{path}", status="200") == 1
    assert not any(refund_id in sample.labels.get("route", "") for sample in samples(text))
    latency = "refundflow_api_request_duration_seconds_count"
    assert grew(latency, method="POST", route="/v1/refunds") == 2
    # One refund started (the repeated key made none), under the channel it was asked on.
    started = "refundflow_api_refunds_requested_total"
    assert grew(started, channel="api") == 1  # the API's default channel
    # Each step of those requests, customers' too (their answers carry no Server-Timing).
    steps = "refundflow_api_step_duration_seconds_count"
    assert grew(steps, step="auth") == 3  # two requests and the tracking read
    assert grew(steps, step="ledger") == 2 and grew(steps, step="start") == 1
