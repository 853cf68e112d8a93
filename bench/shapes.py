"""The three refund shapes the bench races on one stack, in one run: refundflow through its
real entry point (the HTTP API), the naive refund (bench.naive) and the ceiling
(bench.ceiling). Each reports refunds/s, request-acknowledged and end-to-end latency, CPU
per refund per process, and one workflow id to count its history."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.worker import Worker

from bench.ceiling import CEILING_TASK_QUEUE, CeilingWorkflow, noop
from bench.cpu import CpuMeter
from bench.naive import NAIVE_TASK_QUEUE, NaiveInput, NaiveRefundWorkflow
from bench.stats import bounded, latency_summary
from client.timings import parse_server_timing

Order = dict[str, Any]
Shape = Callable[[Order], Awaitable[tuple[float, str]]]
"""One refund of a shape: (seconds until acknowledged, workflow id), once it has completed."""
POLL_EVERY = 0.05  # how often the naive caller asks its workflow's status
CORES = len(os.sched_getaffinity(0))


@dataclass
class Race:
    """What every shape shares: the stack's clients, the meter, progress output."""

    temporal: Client
    http: aiohttp.ClientSession
    meter: CpuMeter
    concurrency: int
    say: Callable[[str], None]
    samples: dict[str, str] = field(default_factory=dict)
    """One workflow id per shape, for its history cost."""

    async def leg(
        self,
        key: str,
        orders: list[Order],
        one: Shape,
        label: str | None = None,
    ) -> Leg:
        """Run `one` over every order at the race's concurrency; `one` returns (seconds
        until the request was acknowledged, workflow id) and returns when it has completed.
        `key`: the shape, whose sample workflow this keeps; `label`: progress output."""
        ack: list[float] = []
        total: list[float] = []

        async def timed(i: int) -> None:
            started = time.monotonic()
            acknowledged, workflow_id = await one(orders[i])
            total.append(time.monotonic() - started)
            ack.append(acknowledged)
            self.samples[key] = workflow_id

        self.meter.start()
        started = time.monotonic()
        await bounded(len(orders), self.concurrency, timed, self.say, label or key)
        wall = time.monotonic() - started
        return Leg(len(orders), wall, ack, total, self.meter.spent())

    async def run(self, key: str, orders: list[Order], one: Shape) -> dict[str, Any]:
        """One leg, summarized."""
        return summarize([await self.leg(key, orders, one)])


@dataclass
class Leg:
    """One stretch of one shape's refunds: how many, how long, each one's latencies, and the
    CPU ms each process spent meanwhile."""

    count: int
    wall: float
    ack: list[float]
    total: list[float]
    cpu_ms: dict[str, float]

    @property
    def per_second(self) -> float:
        return self.count / self.wall if self.wall else 0.0


def summarize(legs: list[Leg]) -> dict[str, Any]:
    """A shape's figures over all its legs: throughput over their time together, latency
    percentiles over all their refunds, CPU per refund over all of them."""
    count = sum(leg.count for leg in legs)
    wall = sum(leg.wall for leg in legs)
    cpu = {
        name: round(sum(leg.cpu_ms.get(name, 0.0) for leg in legs) / max(count, 1), 2)
        for name in legs[0].cpu_ms
    }
    cpu_total = round(sum(cpu.values()), 2)
    return {
        "per_second": round(count / wall, 2) if wall else 0.0,
        "seconds": round(wall, 2),
        **latency_summary([t for leg in legs for t in leg.total]),
        **{f"ack_{k}": v for k, v in latency_summary([a for leg in legs for a in leg.ack]).items()},
        "cpu_ms_per_refund": cpu,
        "cpu_ms_per_refund_total": cpu_total,
        # What this machine's cores could do at that CPU per refund, perfectly shared.
        "cpu_bound_per_second": round(CORES * 1000 / cpu_total, 1) if cpu_total else None,
    }


class RefundflowThroughApi:
    """POST /v1/refunds as the checkout service; done when the workflow has completed.
    `respond_async`: the checkout asks to be answered once the refund is started (202, as
    it opens) rather than once it has decided its first step (201)."""

    def __init__(self, race: Race, api_url: str, token: str, respond_async: bool) -> None:
        self.race, self.url = race, f"{api_url}/v1/refunds"
        self.headers = {"Authorization": f"Bearer {token}"}
        if respond_async:
            self.headers["Prefer"] = "respond-async"
        self.answered = 202 if respond_async else 201
        self.steps: dict[str, list[float]] = {}
        """Each step's milliseconds, from the answers' Server-Timing headers."""

    def step_summary(self) -> dict[str, dict[str, float]]:
        """p50/p95/p99 ms of each step the answers named, in the order they were taken."""
        return {name: latency_summary([ms / 1000 for ms in v]) for name, v in self.steps.items()}

    async def one(self, order: Order) -> tuple[float, str]:
        started = time.monotonic()
        body = {
            "order_id": order["order_id"], "amount": order["captured_amount"],
            "reason_code": "damaged", "channel": "api",
            # A customer each: auto-approval budgets are per customer (policy v3).
            "requested_by": order.get("customer_id") or f"cust_bench_{uuid.uuid4().hex[:10]}",
        }  # fmt: skip
        headers = {**self.headers, "Idempotency-Key": f"bench-{uuid.uuid4().hex}"}
        async with self.race.http.post(self.url, json=body, headers=headers) as response:
            answer = await response.json()
            assert response.status == self.answered, answer
            timing = parse_server_timing(response.headers.get("Server-Timing", ""))
        for name, ms in timing.items():
            self.steps.setdefault(name, []).append(ms)
        acknowledged = time.monotonic() - started
        final = await self.race.temporal.get_workflow_handle(answer["refund_id"]).result()
        assert final["state"] == "completed", final
        return acknowledged, answer["refund_id"]


async def naive_one(race: Race, order: Order) -> tuple[float, str]:
    """Start, poll the status query until the first step is decided, then wait for the end."""
    started = time.monotonic()
    refund_id = f"naive_{uuid.uuid4().hex}"
    handle = await race.temporal.start_workflow(
        NaiveRefundWorkflow.run, NaiveInput(refund_id, order["order_id"], order["captured_amount"]),
        id=refund_id, task_queue=NAIVE_TASK_QUEUE,
    )  # fmt: skip
    # Polling is the point: it is what the samples' callers do to learn the first step.
    while await _naive_status(handle) == "pending":  # noqa: ASYNC110
        await asyncio.sleep(POLL_EVERY)
    acknowledged = time.monotonic() - started
    assert await handle.result() == "completed"
    return acknowledged, refund_id


async def _naive_status(handle: WorkflowHandle[Any, Any]) -> str:
    """The status query; "pending" while the new workflow cannot answer yet (no first task
    yet, or a queue partition whose pollers the server has not seen yet)."""
    try:
        status: str = await handle.query(NaiveRefundWorkflow.status)
        return status
    except RPCError as err:
        if "not scheduled yet" in err.message or "no poller seen" in err.message:
            return "pending"
        raise


def ceiling_worker(race: Race) -> Worker:
    """The ceiling's worker, in this process as eager start needs: run the ceiling inside
    `async with ceiling_worker(race):`."""
    return Worker(
        race.temporal, task_queue=CEILING_TASK_QUEUE, workflows=[CeilingWorkflow],
        activities=[noop],
    )  # fmt: skip


def ceiling_one(race: Race, eager: bool = True) -> Shape:
    """One ceiling workflow, started eagerly (the worker is this process's); `eager`
    False: the same workflow started the usual way (what eager start is worth)."""

    async def one(_: Order) -> tuple[float, str]:
        started = time.monotonic()
        workflow_id = f"ceiling_{uuid.uuid4().hex}"
        handle = await race.temporal.start_workflow(
            CeilingWorkflow.run, 3, id=workflow_id, task_queue=CEILING_TASK_QUEUE,
            request_eager_start=eager,
        )  # fmt: skip
        await handle.result()
        return time.monotonic() - started, workflow_id

    return one
