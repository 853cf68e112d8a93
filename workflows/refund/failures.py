"""Reading an activity's failure: a local activity's arrives as its own ApplicationError (or
a timeout), a regular activity's as an ActivityError wrapping it."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from workflows import names

ActivityFailure = ActivityError | ApplicationError | ActivityTimeout


def root_cause(err: ActivityFailure) -> BaseException | None:
    return err.cause if isinstance(err, ActivityError) else err


def provider_refused(err: ActivityFailure) -> bool:
    cause = root_cause(err)
    return isinstance(cause, ApplicationError) and cause.type == names.PROVIDER_REFUSED_ERROR


def text(err: ActivityFailure) -> str:
    cause = root_cause(err)
    return cause.message if isinstance(cause, ApplicationError) else str(cause or err)
