"""`python -m bench.baseline_worker`: the naive refund's worker, a process of its own like
refundflow's worker. BENCH_DATABASE_URL: where its reservations and audit go."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import aiohttp
import asyncpg
from temporalio.worker import Worker

from activities.http_adapters import HttpOrderSystem, HttpPaymentProvider, HttpService
from bench.naive import NAIVE_TASK_QUEUE, SCHEMA, NaiveRefundWorkflow
from bench.naive_activities import NaiveActivities
from client.connections import connect_temporal
from client.settings import Settings


async def main() -> None:
    settings = Settings.from_env()
    client = await connect_temporal(settings)
    pool = await asyncpg.create_pool(os.environ["BENCH_DATABASE_URL"], min_size=1, max_size=10)
    await pool.execute(SCHEMA)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with aiohttp.ClientSession() as http:
        steps = NaiveActivities(
            pool,
            HttpOrderSystem(HttpService(http, settings.orders_url, "order system")),
            HttpPaymentProvider(
                HttpService(http, settings.payment_provider_url, "payment provider")
            ),
        )
        activities: list[Callable[..., Any]] = [
            steps.lookup_order, steps.reserve, steps.refund, steps.audit,
        ]  # fmt: skip
        async with Worker(
            client, task_queue=NAIVE_TASK_QUEUE, workflows=[NaiveRefundWorkflow],
            activities=activities,
        ):  # fmt: skip
            await stop.wait()
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)
