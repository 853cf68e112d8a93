"""Support looks a refund up while its provider call is in flight. A query can end the
workflow task before a local activity's result is applied, and whatever the workflow asks
`workflow.patched()` right after that result must replay the same way."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from client.pydantic_conversion import refundflow_data_converter
from tests.workflow.conftest import Env, tv_order
from tests.workflow.waiting import result_of, status_of, until
from workflows.models import OperatorCancelInput
from workflows.refund.workflow import RefundWorkflow
from workflows.states import Awaiting


async def keep_asking(handle: object, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await status_of(handle)  # type: ignore[arg-type]
        await asyncio.sleep(0.02)


async def test_a_refund_looked_up_during_its_provider_calls_replays(
    env: Env, tmp_path: Path
) -> None:
    env.systems.provider_answers = ["refuse"]
    env.systems.provider_delay_s = 0.5
    handle = await env.start(tv_order(price=4200))
    stop = asyncio.Event()
    asking = asyncio.create_task(keep_asking(handle, stop))
    try:
        await until(handle, lambda s: s.awaiting is Awaiting.OPERATOR)
    finally:
        stop.set()
        await asking
    await handle.execute_update(
        RefundWorkflow.operator_cancel, OperatorCancelInput(operator="kim", reason="card gone")
    )
    await result_of(handle)
    history = await handle.fetch_history()
    replayer = Replayer(workflows=[RefundWorkflow], data_converter=refundflow_data_converter)
    replayed = await replayer.replay_workflow(
        WorkflowHistory.from_json(handle.id, history.to_json()), raise_on_replay_failure=False
    )
    assert replayed.replay_failure is None, replayed.replay_failure
