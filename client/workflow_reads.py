"""Reading a refund's workflow: its status through a continue-as-new, and how Temporal ended
it when that was not the refund's own end."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError

from client.errors import RefundflowError
from workflows.models import StatusQuery, StatusView
from workflows.refund.workflow import RefundWorkflow

RUN_HANDOVER_TRIES = 25  # x 0.2 s
# How Temporal may end a refund's workflow without the refund ending (cancellation is a
# refund event, see the workflow): the Web UI's Terminate, a run timeout, a bug.
ABNORMAL = ("TERMINATED", "TIMED_OUT", "FAILED")


async def query_status(
    handle: WorkflowHandle[Any, Any], query: StatusQuery, rpc_timeout: timedelta
) -> StatusView:
    """The refund's status. A long-lived refund continues as new now and then; for a moment
    its new run cannot answer ("workflow task is not scheduled yet"): ask again shortly."""
    for _ in range(RUN_HANDOVER_TRIES):
        try:
            status: StatusView = await handle.query(
                RefundWorkflow.status, query, rpc_timeout=rpc_timeout
            )
            return status
        except WorkflowQueryFailedError as err:
            raise RefundflowError(f"refund {handle.id} could not answer: {err}") from None
        except RPCError as err:
            if "not scheduled yet" not in err.message:
                raise
            await asyncio.sleep(0.2)
    raise RefundflowError(f"refund {handle.id} is between two runs; try again in a moment")


async def abnormal_end(handle: WorkflowHandle[Any, Any]) -> str | None:
    """ "terminated 2026-11-26 14:20 UTC" (or timed out, failed) if Temporal ended the
    refund's workflow that way; None while it runs or when it ended as a refund does."""
    described = await handle.describe()
    status = described.status
    if status is None or status.name not in ABNORMAL:
        return None
    when = described.close_time
    ended = status.name.lower().replace("_", " ")
    return ended + (f" {when:%Y-%m-%d %H:%M} UTC" if when else "")
