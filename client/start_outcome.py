"""Whether an update-with-start created the refund's run: what tells the one new answer
(201) from the others when a request is answered with its first step.

The start's response says it (`started`), but the SDK hands that response only to its own
callback, which turns it into a handle without the flag. A client interceptor wraps that
callback (`_on_start`, a field of the interceptor's input: the one place it passes) and
notes the flag for the call that asked (`noting_start`). Where the SDK stops offering the
callback, nothing is noted and callers fall back to what they knew before; a test
(tests/integration/test_api_new_answers.py) fails first.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowUpdateWithStartInput,
    WorkflowUpdateHandle,
)


@dataclasses.dataclass
class StartNoted:
    """What the start of one call said: None until its response arrives."""

    created: bool | None = None


_noted: ContextVar[StartNoted | None] = ContextVar("refundflow_start_noted", default=None)


@contextlib.contextmanager
def noting_start() -> Iterator[StartNoted]:
    """Within this block, an update-with-start on a client `with_start_noted` built notes
    whether its start created the run (the first response counts: the SDK's own retries
    of the same request come after it)."""
    noted = StartNoted()
    token = _noted.set(noted)
    try:
        yield noted
    finally:
        _noted.reset(token)


def with_start_noted(temporal: Client) -> Client:
    """`temporal` with the noting interceptor (innermost), on the same connection."""
    config = temporal.config()
    if any(isinstance(i, _NoteStarts) for i in config["interceptors"]):
        return temporal
    config["interceptors"] = [*config["interceptors"], _NoteStarts()]
    return Client(**config)


class _NoteStarts(Interceptor):
    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _NoteStartsOutbound(next)


class _NoteStartsOutbound(OutboundInterceptor):
    async def start_update_with_start_workflow(
        self, input: StartWorkflowUpdateWithStartInput
    ) -> WorkflowUpdateHandle[Any]:
        noted = _noted.get()
        on_start = getattr(input, "_on_start", None)
        if noted is not None and on_start is not None:
            input = dataclasses.replace(input, _on_start=_noting(noted, on_start))
        return await super().start_update_with_start_workflow(input)


def _noting(noted: StartNoted, on_start: Any) -> Any:
    def note_then_pass_on(response: Any) -> None:
        if noted.created is None:
            noted.created = bool(response.started)
        on_start(response)

    return note_then_pass_on
