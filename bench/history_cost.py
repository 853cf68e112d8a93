"""What one workflow run costs, read from its real history.

Billable actions by Temporal Cloud's rules: the start 1 (search attributes set at start are
free); each activity attempt 1; all local activities of one workflow task together 1; each
timer, signal, update and search-attribute upsert 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

E = EventType


@dataclass
class HistoryCost:
    actions: int
    events: int
    payload_bytes: int
    breakdown: dict[str, int] = field(default_factory=dict)


def history_cost(history: WorkflowHistory) -> HistoryCost:
    breakdown: dict[str, int] = {}

    def add(kind: str, n: int = 1) -> None:
        breakdown[kind] = breakdown.get(kind, 0) + n

    local_activity_task: int | None = None
    for event in history.events:
        kind = event.event_type
        if kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            add("start")
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            add("activity attempts", event.activity_task_started_event_attributes.attempt)
        elif kind == E.EVENT_TYPE_MARKER_RECORDED:
            attrs = event.marker_recorded_event_attributes
            if attrs.marker_name == "core_local_activity":
                task = attrs.workflow_task_completed_event_id
                if task != local_activity_task:
                    add("local activity tasks")
                    local_activity_task = task
        elif kind == E.EVENT_TYPE_TIMER_STARTED:
            add("timers")
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            add("signals")
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            add("updates")
        elif kind == E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            if set(fields.indexed_fields) == {"TemporalChangeVersion"}:
                # Written by workflow.patched(); goes away when the patch is deprecated.
                add("patch version upserts")
            else:
                add("search attribute upserts")
    return HistoryCost(
        actions=sum(breakdown.values()),
        events=len(history.events),
        payload_bytes=sum(_payload_bytes(e) for e in history.events),
        breakdown=breakdown,
    )


def _payload_bytes(message: Message) -> int:
    if isinstance(message, Payload):
        return len(message.data)
    total = 0
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        items: Any = value
        if descriptor.message_type.GetOptions().map_entry:
            items = value.values()
        elif not isinstance(value, Sequence) and not hasattr(value, "__len__"):
            items = [value]
        for item in items:
            if isinstance(item, Message):
                total += _payload_bytes(item)
    return total
