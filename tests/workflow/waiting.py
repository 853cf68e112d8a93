"""Waiting for what a refund does on its own, with a deadline (time skipping is
asynchronous: wait for the resulting state rather than assuming it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from workflows.models import StatusQuery, StatusView
from workflows.refund.workflow import RefundWorkflow

Handle = WorkflowHandle[RefundWorkflow, StatusView]


async def status_of(handle: Handle) -> StatusView:
    for _ in range(50):
        try:
            return await handle.query(RefundWorkflow.status, StatusQuery())
        except RPCError as err:
            # Right after a continue-as-new the new run cannot answer until its first task.
            if "not scheduled yet" not in str(err):
                raise
            await asyncio.sleep(0.1)
    return await handle.query(RefundWorkflow.status, StatusQuery())


async def result_of(handle: Handle, timeout: float = 30) -> StatusView:
    return await asyncio.wait_for(handle.result(), timeout)


async def until(
    handle: Handle, done: Callable[[StatusView], bool], timeout: float = 20
) -> StatusView:
    """Wait for a state the workflow reaches on its own (time skipping is asynchronous)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = await status_of(handle)
        if done(status):
            return status
        assert asyncio.get_running_loop().time() < deadline, status.model_dump(
            include={"state", "awaiting", "escalation_level"}
        )
        await asyncio.sleep(0.05)
