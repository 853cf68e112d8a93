"""Evidence a chaos case reads to prove its fault fired and did what the case is about: the
sandbox's call log (sandbox.faults.Call, one dict per call about a refund) and the
workflow's history."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.api.enums.v1 import EventType

from tests.chaos.harness import Chaos, Counters
from workflows import names

Call = dict[str, Any]


def fired(before: Counters, after: Counters, system: str, kind: str) -> int:
    """How often a fault fired between two readings of the sandbox's counters."""
    return after.get(system, {}).get(kind, 0) - before.get(system, {}).get(kind, 0)


def creates(calls: list[Call]) -> list[Call]:
    """The calls that asked the provider to pay (and got past any injected 503)."""
    return [c for c in calls if c["kind"] == "create" and c["outcome"] != "injected_error"]


def in_flight(call: Call) -> bool:
    """The provider did the work and holds the answer back (`response_delay_ms`)."""
    return call["outcome"] == "in_flight" and call["status"] is not None


def found_after(calls: list[Call], call: Call) -> bool:
    """A lookup after `call` found the refund it made: the retry found it, never re-sent."""
    later = calls[calls.index(call) + 1 :]
    return any(c["kind"] == "lookup" and c["found"] == 1 for c in later)


def paid_once(refund_id: str, calls: list[Call], answer: str | None = None) -> None:
    """The provider was asked to pay once (its answer `answer`, if given: "lost"), and a
    later lookup found that refund: the retry found it rather than sending again."""
    sent = creates(calls)
    assert len(sent) == 1, f"{refund_id}: {len(sent)} provider calls to pay: {calls}"
    if answer is not None:
        assert sent[0]["outcome"] == answer, f"{refund_id}: the answer was not {answer}: {calls}"
    assert found_after(calls, sent[0]), f"{refund_id}: no retry found the refund: {calls}"


async def wait_for(what: str, check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        await asyncio.sleep(0.05)


async def all_in_flight(chaos: Chaos, refund_ids: set[str]) -> bool:
    """Every refund has a provider call that the provider committed and has not answered."""
    for refund_id in refund_ids:
        if not any(in_flight(c) for c in await chaos.calls(refund_id)):
            return False
    return True


async def durable_attempts(chaos: Chaos, refund_id: str) -> list[int]:
    """The attempt that ended each durable (regular, not local) provider-refund activity
    the workflow scheduled: [] if the payment never left the in-process fast path."""
    events = await chaos.history(refund_id)
    scheduled = {
        e.event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name
        == names.ACTIVITY_ISSUE_PROVIDER_REFUND
    }
    return [
        e.activity_task_started_event_attributes.attempt
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id in scheduled
    ]


async def signals(chaos: Chaos, refund_id: str, name: str) -> int:
    """How many times the workflow received the signal `name`."""
    return sum(
        1
        for e in await chaos.history(refund_id)
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and e.workflow_execution_signaled_event_attributes.signal_name == name
    )
