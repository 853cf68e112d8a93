"""A refund's first payment attempt in-process: the provider call as a local activity, with
the audit write before it in the same call for refunds started on RECORD_WITH_PAYMENT.

A slow or failing provider is left to the durable (regular) activity that payment.Payment
falls back to, watched by the refund-SLA timer.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from workflows import names
    from workflows.models import IssueRefundInput, ProviderRefundResult
    from workflows.recorded_payment import RecordAndPayInput
    from workflows.refund import failures
    from workflows.refund.case import RefundCase
    from workflows.refund.journal import Journal

# The provider call is safe to retry because every attempt carries the same idempotency key.
PROVIDER_CALL_TIMEOUT = timedelta(seconds=15)
# How long the in-process (local activity) provider call may take, retries included, before
# the refund moves to the durable, timer-watched activity path. Measured: the SDK does not
# end a local activity's retries at this schedule-to-close timeout (it retried for over a
# minute), so the attempts are bounded too (FAST_PATH_RETRY); the timeout stays as a cap.
FAST_PATH_BUDGET = timedelta(seconds=10)
# Three tries within about 3 s (1 s, then 2 s apart): a provider that is still failing after
# that is left to the durable activity, which the refund-SLA timer watches. A record the
# store refuses (an audit conflict, a superseded run) is raised non-retryable by the store.
FAST_PATH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=2),
    maximum_attempts=3,
    non_retryable_error_types=[names.PROVIDER_REFUSED_ERROR],
)


async def pay_in_process(
    case: RefundCase, journal: Journal, request: IssueRefundInput, with_record: bool
) -> ProviderRefundResult:
    """The provider's answer to `request`, asked in-process; with `with_record`, after the
    unrecorded timeline is written in the same call. Raises the activity's failure: the
    caller decides between a refusal (final) and the durable path. A local activity re-runs
    from attempt 1 if the worker dies, so it always looks for an existing refund first."""
    pay = request.model_copy(update={"look_up_first": True})
    staged = journal.staged() if with_record else None
    if staged is None:
        return await _local(names.ACTIVITY_ISSUE_PROVIDER_REFUND, pay, "provider refund")
    batch, upto = staged
    try:
        result = await _local(
            names.ACTIVITY_RECORD_AND_PAY,
            RecordAndPayInput(record=batch, pay=pay),
            "audit and provider refund",
        )
    except (ActivityError, ApplicationError, ActivityTimeout) as err:
        if failures.provider_refused(err):
            case.mark_recorded(upto)  # the provider is asked only once the record is written
        raise
    case.mark_recorded(upto)
    return result


async def _local(name: str, arg: object, what: str) -> ProviderRefundResult:
    result: ProviderRefundResult = await workflow.execute_local_activity(
        name,
        arg,
        result_type=ProviderRefundResult,
        start_to_close_timeout=PROVIDER_CALL_TIMEOUT,
        schedule_to_close_timeout=FAST_PATH_BUDGET,
        retry_policy=FAST_PATH_RETRY,
        summary=f"{what} (fast path)",
    )
    return result
