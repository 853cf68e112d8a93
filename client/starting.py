"""Starting a refund's workflow, in the two ways a requester may be answered: once the
refund has decided its first step (update-with-start, one round trip), or as soon as
Temporal holds the refund ("received": the status the workflow opens with).

Both answer None where the refund under this id was already there (a retry, or a caller
racing this one): the caller then asks that refund as it stands."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from client.edge import summary_line
from client.errors import RefundflowError
from client.start_outcome import noting_start
from workflows import names
from workflows.models import RefundWorkflowInput, StatusProjection, StatusQuery, StatusView
from workflows.refund import admission, views
from workflows.refund.case import RefundCase
from workflows.refund.workflow import RefundWorkflow
from workflows.states import Awaiting, RefundState

T = TypeVar("T")
CALL_ENDS_WITHIN_S = 1.0
"""How long a cancelled caller waits for the call it cancels to end (it ends at once)."""
START_CALL_MEMO = "started_by_call"
"""A start's own random id, in the memo of the run it made: the one call answered "new"."""


def start_options(inp: RefundWorkflowInput, task_queue: str) -> dict[str, Any]:
    """What every start of a refund says: its id, queue, and what operators filter on."""
    return {
        "id": inp.refund_id,
        "task_queue": task_queue,
        # A finished refund is never started again under the same key.
        "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
        "search_attributes": TypedSearchAttributes(
            [
                SearchAttributePair(names.SA_REFUND_STATE, RefundState.PENDING_REVIEW.value),
                SearchAttributePair(names.SA_ORDER_ID, inp.order.order_id),
                SearchAttributePair(names.SA_ESCALATION_LEVEL, 0),
                SearchAttributePair(names.SA_AWAITING, Awaiting.NOTHING.value),
            ]
        ),
        "static_summary": summary_line(inp),
    }


async def start_for_first_step(
    temporal: Client, inp: RefundWorkflowInput, task_queue: str, patience: timedelta
) -> tuple[StatusView | None, bool | None]:
    """Start and answer with the first step, in one round trip (update-with-start), and
    whether this call's start made the refund (None: unknown). No status: closed already,
    a run that predates the update, too many callers asking this refund at once (the server
    caps updates in flight) or a worker slower than `patience`."""
    call = uuid.uuid4().hex
    with noting_start() as noted:
        try:
            status = await _update_with_start(temporal, inp, task_queue, patience, call)
        except _StartFailed as failed:
            # The call failed after its start may have made the refund (the wait for the
            # update's outcome of a refund that closed at once: the one call that made it was
            # answered 503). The start's own response, or the run's memo, then has the word;
            # a refusal (invalid, not allowed) is one whatever runs exist.
            made_by_this_call = noted.created or (
                await _started_by(temporal, inp.refund_id, call)
                if failed.may_have_started
                else None
            )
            if made_by_this_call is None:
                raise RefundflowError(f"Temporal did not start the refund: {failed}") from None
            return None, made_by_this_call
    if noted.created:
        return status, True
    # The server's "not started" is also what a start that made the refund hears when the
    # SDK retried it (seen with 20 concurrent copies: none heard "started"), so the run's
    # memo, written by the start that made it, has the last word.
    return status, await _started_by(temporal, inp.refund_id, call)


async def _started_by(temporal: Client, refund_id: str, call: str) -> bool | None:
    """Whether the run of `refund_id` was made by the start that wrote `call` (None: it
    could not be asked)."""
    try:
        described = await temporal.get_workflow_handle(refund_id).describe()
        return bool(await described.memo_value(START_CALL_MEMO, default="") == call)
    except RPCError:
        return None


async def _update_with_start(
    temporal: Client, inp: RefundWorkflowInput, task_queue: str, patience: timedelta, call: str
) -> StatusView | None:
    start = WithStartWorkflowOperation(
        RefundWorkflow.run,
        inp,
        **start_options(inp, task_queue),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        memo={START_CALL_MEMO: call},
    )
    _read_start_outcome_when_set(start)
    try:
        # By name: the SDK's types do not accept an async update method here.
        status: StatusView = await answer_within(
            temporal.execute_update_with_start_workflow(
                names.UPDATE_FIRST_STEP,
                StatusQuery(include_timeline=True),
                start_workflow_operation=start,
                result_type=StatusView,
            ),
            patience.total_seconds(),
        )
        return status
    except (
        WorkflowAlreadyStartedError,
        WorkflowUpdateFailedError,
        # Slow: the update's wait was cancelled (answer_within's timeout, as the SDK says it).
        WorkflowUpdateRPCTimeoutOrCancelledError,
        TimeoutError,
    ):
        pass
    except RPCError as err:
        if err.status not in (RPCStatusCode.ALREADY_EXISTS, RPCStatusCode.RESOURCE_EXHAUSTED):
            raise _StartFailed(err.message, err.status in _MAY_HAVE_STARTED) from None
    return None


_MAY_HAVE_STARTED = frozenset(
    {
        RPCStatusCode.NOT_FOUND,  # the update's outcome asked of a run that closed at once
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.ABORTED,
    }
)


class _StartFailed(Exception):
    """Temporal answered an update-with-start with an error other than "there already" or
    "too many"; `may_have_started`: one that can come after the start made the run."""

    def __init__(self, message: str, may_have_started: bool) -> None:
        super().__init__(message)
        self.may_have_started = may_have_started


async def answer_within(call: Awaitable[T], seconds: float) -> T:
    """`call`'s answer, or TimeoutError once `seconds` have passed and the call is cancelled.
    The SDK ends a cancelled update call with its own error (not CancelledError), and
    `asyncio.wait_for`, cancelled from outside, left that error unread: a SIGTERM to
    `refundflow bench` printed "Task exception was never retrieved" with two tracebacks for
    every refund then being requested. Here the call's end is always read."""
    task = asyncio.ensure_future(call)
    task.add_done_callback(_read_its_end)
    try:
        await asyncio.wait({task}, timeout=seconds)
    finally:
        timed_out = not task.done()
        if timed_out:  # the time is up, or the caller was cancelled: so is the call, ended
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({task}, timeout=CALL_ENDS_WITHIN_S)
    if timed_out and (not task.done() or task.cancelled() or task.exception() is not None):
        raise TimeoutError
    return task.result()


def _read_its_end(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # read: asyncio reports an error nobody read when the task is freed


def _read_start_outcome_when_set(start: WithStartWorkflowOperation[Any, Any]) -> None:
    """The SDK sets the start's own outcome too, an error when the refund existed already or
    the call was cancelled (CancelledError, after the caller has gone): read whenever it is
    set, or asyncio reports "Future exception was never retrieved". The future is the SDK's
    own attribute (temporalio 1.35): `test_answer_within` fails if it is renamed."""
    outcome = getattr(start, "_workflow_handle", None)
    if isinstance(outcome, asyncio.Future):
        outcome.add_done_callback(_read_its_end)


async def start_received(temporal: Client, inp: RefundWorkflowInput, task_queue: str) -> bool:
    """Start, and answer as soon as Temporal holds the refund (True); False: a refund
    under this id exists (its status is the answer, not an opening made up for it)."""
    try:
        await temporal.start_workflow(
            RefundWorkflow.run,
            inp,
            **start_options(inp, task_queue),
            # Never an answer made up for someone else's run: that one is asked instead.
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    except WorkflowAlreadyStartedError:
        return False
    except RPCError as err:
        raise RefundflowError(f"Temporal did not start the refund: {err.message}") from None
    return True


def opening(inp: RefundWorkflowInput) -> tuple[StatusProjection, StatusView]:
    """The status a refund's workflow opens with (requested; its first step follows), as
    of the request: built by the workflow's own code from the same input."""
    opened_at = inp.asked_at or datetime.now(UTC)
    case = RefundCase(inp, lambda: opened_at)
    admission.record_request(case)
    return views.projection(case), views.status(case)
