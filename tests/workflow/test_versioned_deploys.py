"""Safe deploys on the dev server: two worker versions of one deployment (in-process, on a
task queue of this test's own). A refund started on v1 is pinned there and is still served by
v1 after v2 becomes current; a refund started after that goes to v2."""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack

from temporalio.api.enums.v1 import VersioningBehavior as VersioningBehaviorProto
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle
from temporalio.testing import TimeSkipper
from temporalio.worker import Worker

from tests.workflow.conftest import Env, tv_order
from tests.workflow.fakes import FakeSystems
from tests.workflow.waiting import result_of, until
from worker.versioning import deployment_from_env, make_current
from workflows.models import ApproveInput, StatusView
from workflows.refund.workflow import RefundWorkflow
from workflows.states import Awaiting, RefundState


def build_ids_that_completed_tasks(events: list[HistoryEvent]) -> set[str]:
    """The worker versions that completed the refund's workflow tasks, from its history."""
    return {
        event.workflow_task_completed_event_attributes.deployment_version.build_id
        for event in events
        if event.HasField("workflow_task_completed_event_attributes")
    }


async def pinned_build_id(handle: WorkflowHandle[RefundWorkflow, StatusView]) -> str:
    described = await handle.describe()
    info = described.raw_description.workflow_execution_info.versioning_info
    assert info.behavior == VersioningBehaviorProto.VERSIONING_BEHAVIOR_PINNED
    return info.deployment_version.build_id


async def test_an_open_refund_stays_on_its_version_and_new_ones_go_to_the_current(
    skipper: TimeSkipper,
) -> None:
    systems = FakeSystems()
    env = Env(skipper, systems, task_queue=f"deploy-{uuid.uuid4().hex[:8]}")
    name = f"refundflow-test-{uuid.uuid4().hex[:8]}"
    v1, v2 = (
        deployment_from_env({"REFUNDFLOW_DEPLOYMENT_NAME": name, "REFUNDFLOW_BUILD_ID": build})
        for build in ("v1", "v2")
    )
    assert v1 is not None and v2 is not None
    async with AsyncExitStack() as workers:
        for deployment in (v1, v2):
            await workers.enter_async_context(
                Worker(
                    skipper.client,
                    task_queue=env.task_queue,
                    workflows=[RefundWorkflow],
                    activities=systems.activities(),
                    deployment_config=deployment.worker_config(),
                )
            )
        await make_current(skipper.client, v1.version)
        on_v1 = await env.start(tv_order(), reason="changed_mind")  # waits for a lead
        await until(on_v1, lambda s: s.awaiting is Awaiting.REVIEWER)

        await make_current(skipper.client, v2.version)  # the deploy
        on_v2 = await env.start(tv_order(), reason="changed_mind")
        await until(on_v2, lambda s: s.awaiting is Awaiting.REVIEWER)
        for handle in (on_v1, on_v2):  # each goes on to pay on its own version
            await handle.execute_update(
                RefundWorkflow.approve, ApproveInput(reviewer="li", role="lead")
            )
            assert (await result_of(handle)).state is RefundState.COMPLETED

    assert await pinned_build_id(on_v1) == "v1"
    assert await pinned_build_id(on_v2) == "v2"
    history_v1 = (await on_v1.fetch_history()).events
    assert build_ids_that_completed_tasks(list(history_v1)) == {"v1"}
    history_v2 = (await on_v2.fetch_history()).events
    assert build_ids_that_completed_tasks(list(history_v2)) == {"v2"}
