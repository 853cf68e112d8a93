"""What the Web UI's Reset does to a refund's workflow, for tests of what follows one."""

from __future__ import annotations

import uuid

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, ResetReapplyType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client

WEB_UI = "Reset from the Web UI"


async def reset_at_first_task(
    temporal: Client,
    workflow_id: str,
    *,
    reapply: bool = True,
    reason: str = "Reset from the Web UI",
) -> str:
    """Reset to the first workflow task, as the Web UI's Reset does; the new run's id.
    `reapply=False`: without the signals and updates after that point (the Web UI's
    "reapply" unticked)."""
    handle = temporal.get_workflow_handle(workflow_id)
    first_task = next(
        e.event_id
        for e in (await handle.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    )
    answer = await temporal.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=temporal.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            reason=reason,
            workflow_task_finish_event_id=first_task,
            request_id=str(uuid.uuid4()),
            reset_reapply_type=(
                ResetReapplyType.RESET_REAPPLY_TYPE_UNSPECIFIED
                if reapply
                else ResetReapplyType.RESET_REAPPLY_TYPE_NONE
            ),
        )
    )
    return answer.run_id
