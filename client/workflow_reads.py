"""Reading a refund's workflow: its status through a continue-as-new, and how Temporal ended
it when that was not the refund's own end."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, Protocol

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from client.errors import RefundflowError
from client.refund_ids import REFUND_ID_PATTERN
from workflows import names
from workflows.models import StatusQuery, StatusView
from workflows.refund.workflow import RefundWorkflow
from workflows.states import TERMINAL_STATES, Awaiting, RefundState

RUN_HANDOVER_TRIES = 25  # x 0.2 s
BEHIND_READS_S = 3.0
"""How long a refusal waits for the reads that say whether its run is behind its record."""
# How much longer than its patience the first look at a new refund may wait for a query
# answer under load (the worker answers one refund's queries one at a time).
FIRST_ANSWER_GRACE = 30.0
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


class Records(Protocol):
    async def status_view(self, refund_id: str) -> StatusView | None: ...


async def live_status(
    handle: WorkflowHandle[Any, Any],
    query: StatusQuery,
    rpc_timeout: timedelta,
    records: Records | None,
) -> StatusView:
    """The refund's status as its workflow holds it, unless the workflow has closed and its
    record says the refund has ended since: a workflow Temporal ended answers with the
    state it had then, though reconciliation closed the refund after (a trial: live said
    refunding of a completed refund). A running workflow is the live view even when its
    record has moved on (a run reset to before the payment holds pending_review: that is
    what `live` shows of it). `records`: the store (None: no store to ask)."""
    asked = await query_status(handle, query, rpc_timeout)
    if asked.state in TERMINAL_STATES or records is None:
        return asked
    kept = await records.status_view(handle.id)
    if kept is None or kept.state not in TERMINAL_STATES:
        return asked
    described = await handle.describe(rpc_timeout=rpc_timeout)
    if described.status is WorkflowExecutionStatus.RUNNING:
        return asked
    return kept if query.include_timeline else kept.model_copy(update={"timeline": []})


async def abnormal_end(
    handle: WorkflowHandle[Any, Any], rpc_timeout: timedelta | None = None
) -> str | None:
    """ "terminated 2026-11-26 14:20 UTC" (or timed out, failed) if Temporal ended the
    refund's workflow that way; None while it runs or when it ended as a refund does."""
    described = await handle.describe(rpc_timeout=rpc_timeout)
    status = described.status
    if status is None or status.name not in ABNORMAL:
        return None
    when = described.close_time
    ended = status.name.lower().replace("_", " ")
    return ended + (f" {when:%Y-%m-%d %H:%M:%S} UTC" if when else "")


async def ended_among(
    temporal: Client, refund_ids: Iterable[str], rpc_timeout: timedelta | None = None
) -> dict[str, str]:
    """Which of `refund_ids` (a page of a list) Temporal ended without the refund ending,
    each in abnormal_end's words: one visibility query, then a look at each one found (few;
    a reset terminates its old run and goes on, so only a refund's latest run counts)."""
    ids = sorted({i for i in refund_ids if re.fullmatch(REFUND_ID_PATTERN, i)})
    if not ids:
        return {}
    quoted = ", ".join(f"'{i}'" for i in ids)  # the pattern admits no quote
    query = f"WorkflowId IN ({quoted}) AND {names.ABNORMAL_CLOSES}"
    ended: dict[str, str] = {}
    async for run in temporal.list_workflows(query, rpc_timeout=rpc_timeout):
        if run.id not in ended and (
            words := await abnormal_end(temporal.get_workflow_handle(run.id), rpc_timeout)
        ):
            ended[run.id] = words
    return ended


async def first_step(
    handle: WorkflowHandle[Any, Any],
    query: StatusQuery,
    rpc_timeout: timedelta,
    patience: float = 5.0,
) -> StatusView:
    """The status once the workflow has checked the order and decided who acts next (a
    moment after start), so the caller's answer says what happens now.

    Many callers may ask about one new refund at once (the same request from every channel),
    and a workflow answers queries one at a time: pause longer between asks, and give a slow
    answer more time (FIRST_ANSWER_GRACE) before saying none came."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    pause = 0.05
    while True:
        try:
            status = await query_status(handle, query, rpc_timeout)
        except RPCError as err:
            slow = err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
            if not slow or loop.time() > deadline + FIRST_ANSWER_GRACE:
                raise
            continue
        settling = status.state is RefundState.PENDING_REVIEW and (
            status.awaiting is Awaiting.NOTHING
        )
        if not settling or loop.time() > deadline:
            return status
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.5)


async def behind_its_record(handle: WorkflowHandle[Any, Any], records: Records) -> str:
    """Why a refusal may not be the refund's word: its workflow's current run holds an
    earlier point than its record (a Reset in Temporal to before it; the updates Temporal
    reapplies are refused when they come before the state they need, a trial's warehouse
    `received`). Said to the person refused (operator retry answered "waiting for the
    customer" of a refund whose record waits for an operator); "" when the run is not behind
    or either cannot be read."""
    try:
        # Bounded: a stalled database must not hold up the refusal it only explains (a review).
        async with asyncio.timeout(BEHIND_READS_S):
            recorded = await records.status_view(handle.id)
            live = await query_status(handle, StatusQuery(), timedelta(seconds=BEHIND_READS_S))
    except Exception:  # only words ride on it: the refusal stands either way
        return ""
    if recorded is None or not recorded.timeline or not live.timeline:
        return ""
    record_at, run_at = recorded.timeline[-1].seq, live.timeline[-1].seq
    if run_at >= record_at:
        return ""
    return (
        f". Its record is further on: {recorded.state.value}, {recorded.action_by} (entry"
        f" {record_at}); its workflow's run holds {live.state.value} (entry {run_at}), most"
        " likely reset in Temporal to before the record. Take again what the record holds"
        " since (a warehouse's `received`, a reviewer's approval), or reset the run that"
        " wrote the record to its last task (README, Reset)"
    )
