"""`python -m bench.baseline_worker`: a worker process for the baseline, like the real one."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from temporalio.worker import Worker

from bench.baseline import BASELINE_TASK_QUEUE, BaselineWorkflow, noop
from client.connections import connect_temporal
from client.settings import Settings


async def main() -> None:
    client = await connect_temporal(Settings.from_env())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(
        client, task_queue=BASELINE_TASK_QUEUE, workflows=[BaselineWorkflow], activities=[noop]
    ):
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)
