"""The naive baseline: a bare workflow with three plain no-op activities."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

BASELINE_TASK_QUEUE = "bench-baseline"


@activity.defn
async def noop(step: int) -> int:
    return step


@workflow.defn
class BaselineWorkflow:
    @workflow.run
    async def run(self, steps: int) -> int:
        for step in range(steps):
            await workflow.execute_activity(
                noop, step, start_to_close_timeout=timedelta(seconds=10)
            )
        return steps
