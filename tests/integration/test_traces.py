"""Traces (issue 14): one refund requested through the API is one connected trace, from the
caller's traceparent through the API request, the workflow start, the run and its activity
to the payment provider's HTTP call, across the API's and the worker's processes.

The session stack runs without traces (as users who configure none). This test starts a
worker and an API of its own against the same Temporal, Postgres and sandbox, on a task
queue of their own, with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a collector in this test,
and reads what arrives over the wire.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import Sandbox
from tests.integration.api_support import Api
from tests.integration.helpers import eventually
from tests.integration.otlp_receiver import ReceivedSpan, SpanReceiver
from tests.integration.test_graceful_shutdown import provider_calls
from worker.dev_api import api_env, api_url
from worker.devstack import DevStack
from worker.processes import free_port, spawn, stop_process, wait_http

pytestmark = pytest.mark.stack

REQUEST = "POST /v1/refunds"
PROVIDER_CREATE = "POST payment provider"


@pytest.fixture
async def receiver() -> AsyncIterator[SpanReceiver]:
    collector = SpanReceiver()
    await collector.start()
    yield collector
    await collector.stop()


@pytest.fixture(params=["off", "on"])
async def traced_api(
    stack: DevStack, http: aiohttp.ClientSession, receiver: SpanReceiver, request: Any
) -> AsyncIterator[Api]:
    """A worker and an API with traces on, exporting to `receiver`; the worker runs workflow
    code directly (the default) or, `on`, in Temporal's sandbox (worker/sandbox.py): the
    interceptor that continues the trace in the workflow runs under both."""
    sandbox_setting = request.param
    port = free_port()
    env = {
        **stack.env(),
        **api_env(stack.config.home, port),
        "REFUNDFLOW_TASK_QUEUE": f"traced-{uuid.uuid4().hex[:8]}",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms: spans reach the collector promptly
        "REFUNDFLOW_WORKFLOW_SANDBOX": sandbox_setting,
    }
    logs = stack.logs / f"traced-{uuid.uuid4().hex[:8]}"
    logs.mkdir()
    worker_log, api_log = logs / "worker.log", logs / "api.log"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(spawn([sys.executable, "-m", "worker"], log_path=worker_log, env=env))
        processes.append(
            spawn([sys.executable, "-m", "worker.cli", "api"], log_path=api_log, env=env)
        )
        await asyncio.to_thread(wait_http, f"{api_url(port)}/healthz", processes[1], "api", api_log)
        await eventually(
            lambda: asyncio.to_thread(worker_log.read_text),
            lambda text: "worker_started" in text,
        )
        started = next(x for x in worker_log.read_text().splitlines() if "worker_started" in x)
        runner = {"off": "direct", "on": "temporal-sandbox"}[sandbox_setting]
        assert json.loads(started)["workflow_runner"] == runner, started
        api = Api(http, stack)
        api.base = api_url(port)
        api.issuer = api_env(stack.config.home, port)["REFUNDFLOW_OIDC_ISSUER"]
        yield api
    finally:
        for process in reversed(processes):
            await asyncio.to_thread(stop_process, process)


def the(spans: list[ReceivedSpan], name: str, service: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name and s.service == service]
    assert len(found) == 1, (name, service, spans)
    return found[0]


def names(spans: list[ReceivedSpan]) -> set[str]:
    return {s.name for s in spans}


def ancestors(span: ReceivedSpan, spans: list[ReceivedSpan]) -> list[str]:
    """Names of the span's parents, nearest first, as far as the trace links them."""
    by_id = {s.span_id: s for s in spans}
    chain: list[str] = []
    parent = by_id.get(span.parent_id or "")
    while parent is not None:
        chain.append(parent.name)
        parent = by_id.get(parent.parent_id or "")
    return chain


async def test_one_refund_requested_through_the_api_is_one_connected_trace(
    traced_api: Api, receiver: SpanReceiver, sandbox: Sandbox
) -> None:
    who = f"cust_{uuid.uuid4().hex[:8]}"
    order = await sandbox.order(amount=9000, category="general", customer_id=who)
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    made = await traced_api.call(
        "POST",
        "/v1/refunds",
        as_=who,
        json={"order_id": order["order_id"], "amount": 3000, "reason_code": "damaged"},
        headers={
            "Idempotency-Key": f"k-{uuid.uuid4().hex[:16]}",
            "traceparent": f"00-{trace_id}-{caller_span}-01",
        },
    )
    assert made.status == 201, made.body
    refund_id = made.body["refund_id"]

    # Auto-approved: paid at once. Each process exports its spans as they end.
    async def received() -> list[ReceivedSpan]:
        return receiver.trace(trace_id)

    spans = await eventually(received, lambda spans: {REQUEST, PROVIDER_CREATE} <= names(spans))

    api, worker = "refundflow-api", "refundflow-worker"
    request = the(spans, REQUEST, api)
    assert request.parent_id == caller_span  # the caller's trace goes on
    start = the(spans, "StartUpdateWithStartWorkflow:RefundWorkflow", api)
    assert start.parent_id == request.span_id
    run = the(spans, "RunWorkflow:RefundWorkflow", worker)
    assert run.parent_id == start.span_id  # across the process boundary, through Temporal
    # The audit write and the payment, in one local activity (patches.RECORD_WITH_PAYMENT).
    issue = the(spans, "RunActivity:record_and_issue_provider_refund", worker)
    # Scheduled by the workflow (temporalio parents it on the start's context), up to the
    # request: nothing in between comes from another trace.
    chain = ancestors(issue, spans)
    assert chain[0] == "StartActivity:record_and_issue_provider_refund", chain
    assert chain[-2:] == [start.name, REQUEST], chain
    create = the(spans, PROVIDER_CREATE, worker)
    assert create.parent_id == issue.span_id

    # The provider was told which span called it: its logs can join this trace.
    [created] = [c for c in await provider_calls(sandbox, refund_id) if c["kind"] == "create"]
    assert created["traceparent"] == f"00-{trace_id}-{create.span_id}-01"
