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


# Refusals of refundflow's own checks before anything is sent: the provider refused nothing.
NOT_SENT_CODES = frozenset(
    {
        names.NOT_SENT_ABOVE_CAPTURE,
        names.NOT_SENT_AMOUNT_MISMATCH,
        names.NOT_SENT_ABOVE_HOLD,
        names.NOT_SENT_RECORD_MOVED_ON,
    }
)


def code(err: ActivityFailure) -> object:
    """A refusal's code (its first detail), None without one."""
    cause = root_cause(err)
    return cause.details[0] if isinstance(cause, ApplicationError) and cause.details else None


def refused_by(err: ActivityFailure) -> str:
    """The actor of a payment refusal: `payment-guard` for refundflow's own checks (a trial
    read "escalated by payment-provider" for money the provider never saw), else the
    provider."""
    return "payment-guard" if code(err) in NOT_SENT_CODES else "payment-provider"
