"""The ceiling: the least a workflow that does three steps can cost on this stack.

Three no-op local activities in one workflow task, started eagerly by a client that hosts the
worker (eager start hands the first task to the caller's own worker, no poll). Nothing real
happens, so no refund can be faster than this. Only for `refundflow bench`.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

CEILING_TASK_QUEUE = "bench-ceiling"


@activity.defn(name="ceiling_noop")
async def noop(step: int) -> int:
    return step


@workflow.defn(name="CeilingWorkflow")
class CeilingWorkflow:
    @workflow.run
    async def run(self, steps: int) -> int:
        for step in range(steps):
            await workflow.execute_local_activity(
                noop, step, start_to_close_timeout=timedelta(seconds=10)
            )
        return steps
