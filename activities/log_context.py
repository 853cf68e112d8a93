"""What every log line written inside an activity carries: the refund, and which run,
activity and attempt wrote it (so one grep for a refund id finds all of its lines)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from temporalio import activity


@contextmanager
def activity_log_context(refund_id: str) -> Iterator[None]:
    """Bind refund and activity identity to every log line written inside the activity."""
    info = activity.info()
    with structlog.contextvars.bound_contextvars(
        refund_id=refund_id,
        workflow_id=info.workflow_id,
        run_id=info.workflow_run_id,
        activity=info.activity_type,
        attempt=info.attempt,
    ):
        yield
