"""How a refund tells the world where it is: search attributes, the Web UI's details, and
the audit trail and outbox in our own Postgres (through one idempotent store call)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from workflows import names
    from workflows.facts import NO_ETA
    from workflows.models import RecordTransitionsInput
    from workflows.refund import views
    from workflows.refund.case import RefundCase

# Writing the audit trail must eventually succeed: retry for as long as it takes.
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)
)
# Long-lived refunds: a local activity's retries each add to history (measured: about 3
# events per 8 s while Postgres was down, so 51,200 events, and termination, after ~38 h).
# A few tries in-process, then the regular activity, whose retries add nothing to history
# however long Postgres stays down; an audit conflict is final, not retried.
STORE_FAST_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=2),
    maximum_attempts=3,
    non_retryable_error_types=[names.AUDIT_CONFLICT_ERROR],
)
STORE_FAST_BUDGET = timedelta(seconds=10)
STORE_DURABLE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=[names.AUDIT_CONFLICT_ERROR],
)
T = TypeVar("T")


class Journal:
    def __init__(self, case: RefundCase) -> None:
        self.case = case
        self.local_fast_path = False
        """Store calls run as local activities (refunds started since the patch)."""

    def publish(self) -> None:
        """Bring search attributes and the Web UI's current details in step with the state.

        Called before every wait and at the end rather than on every change, so one workflow
        task that moves through several states costs one upsert, not one per state.
        """
        p = self.case.p
        workflow.set_current_details(views.details(self.case))
        current = (p.state.value, p.escalation, p.awaiting.value)
        if current == p.published:
            return
        workflow.upsert_search_attributes(
            [
                names.SA_REFUND_STATE.value_set(p.state.value),
                names.SA_ESCALATION_LEVEL.value_set(p.escalation),
                names.SA_AWAITING.value_set(p.awaiting.value),
            ]
        )
        p.published = current

    async def flush(self, publish: bool = True) -> None:
        """Publish the state, then write unrecorded timeline entries to the audit store.

        The store ignores entries it already has (by refund id and sequence), so a retried
        activity never records a transition twice.
        """
        if publish:
            self.publish()
        staged = self.staged()
        if staged is None:
            return
        batch, upto = staged
        try:
            await self.store_call(names.ACTIVITY_RECORD_TRANSITIONS, batch, int, "audit")
        except (ActivityError, ApplicationError) as err:
            conflict = _audit_conflict(err)
            if conflict is None:
                _fail_if_superseded(err)
                raise
            first_clash, stored_upto, why, kept_receipt = conflict
            self.case.follow_other_run(first_clash, stored_upto, why)
            if kept_receipt:  # the record holds the item: so does this run (the workflow
                _take_the_kept_receipt(self.case)  # pays it on approval)
            await self.flush(publish)
            return
        self.case.mark_recorded(upto)

    def staged(self) -> tuple[RecordTransitionsInput, int] | None:
        """What `flush` would write (the unrecorded entries, their notices, the status as
        of them) and the timeline position it records up to; None when all is recorded.
        A call that writes it with something else (payment.Payment's first attempt) marks
        it recorded with `case.mark_recorded(upto)` once written."""
        entries, notices = self.case.unrecorded()
        if not entries:
            return None
        batch = RecordTransitionsInput(
            refund_id=self.case.inp.refund_id,
            entries=entries,
            projection=views.projection(self.case),
            notices=notices,
            conflict_is_final=self.case.p.long_lived,
            view=views.status(self.case),
        )
        return batch, len(self.case.p.timeline)

    async def store_call(self, name: str, arg: Any, result_type: type[T], summary: str) -> T:
        """Our own Postgres, idempotent by key: short enough to run as a local activity
        (no round trip through the server; all local activities of one workflow task count
        as one billable action). Refunds started before that change keep regular ones."""
        if self.case.p.long_lived:
            return await self._bounded_store_call(name, arg, result_type, summary)
        execute = (
            workflow.execute_local_activity if self.local_fast_path else workflow.execute_activity
        )
        result: T = await execute(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=15),
            retry_policy=STORE_RETRY,
            summary=summary,
        )
        return result

    async def _bounded_store_call(
        self, name: str, arg: Any, result_type: type[T], summary: str
    ) -> T:
        """In-process for a few seconds, then durable: history stays short however long the
        store is down. Only an audit conflict (final) comes back as an error."""
        try:
            fast: T = await workflow.execute_local_activity(
                name,
                arg,
                result_type=result_type,
                # A store that hangs (a lock, a network drop) must not hold the workflow
                # task: a write takes milliseconds, 5 s is already an outage.
                start_to_close_timeout=timedelta(seconds=5),
                schedule_to_close_timeout=STORE_FAST_BUDGET,
                retry_policy=STORE_FAST_RETRY,
                summary=summary,
            )
            return fast
        except (ActivityError, ApplicationError, ActivityTimeout) as err:
            if _audit_conflict(err) is not None or _superseded(err) is not None:
                raise
        durable: T = await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=15),
            retry_policy=STORE_DURABLE_RETRY,
            summary=f"{summary} (durable)",
        )
        return durable


def _take_the_kept_receipt(case: RefundCase) -> None:
    """The run holds the receipt its record kept, and the notices not yet written no longer
    ask the customer to send the item (a review: the approval's did, then it was paid)."""
    case.p.item_received = True
    asked = {"item_return_required": False}
    case.p.notices = [
        n.model_copy(
            update={"facts": n.facts.model_copy(update=asked | _no_return_eta(n.facts.eta_kind))}
        )
        if n.facts.item_return_required
        else n
        for n in case.p.notices
    ]


def _no_return_eta(kind: str | None) -> dict[str, None]:
    return dict(NO_ETA) if kind == "return" else {}


def _audit_conflict(err: BaseException) -> tuple[int, int, str, bool] | None:
    """(the first sequence number the store holds otherwise, its last, what conflicts,
    whether the other run's entries keep a returned item's receipt) if `err` is an audit
    conflict. A local activity's failure arrives as its own ApplicationError, a regular
    activity's wrapped in an ActivityError. Conflicts recorded before the receipt was
    told carry two details: none kept, as those runs decided."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if not isinstance(cause, ApplicationError) or cause.type != names.AUDIT_CONFLICT_ERROR:
        return None
    first_clash, stored_upto, *kept = cause.details
    why = f"audit conflict: {cause.message}"
    return int(first_clash), int(stored_upto), why, bool(kept and kept[0])


def _superseded(err: BaseException) -> ApplicationError | None:
    """The store's refusal to record this run's entries at all (AUDIT_SUPERSEDED_ERROR)."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError) and cause.type == names.AUDIT_SUPERSEDED_ERROR:
        return cause
    return None


def _fail_if_superseded(err: BaseException) -> None:
    """A run reset to before the refund moved on (paid, closed) holds a state the refund has
    left: it ends, failed with the store's words (what the Web UI shows), and the record
    stands. Nothing it did since the reset reached the store."""
    if (refusal := _superseded(err)) is not None:
        if refusal.details:  # the record's state: the Web UI's search must not keep this
            # run's (a rejection it took said cancelled of a paid refund, a trial)
            recorded = str(refusal.details[0])
            workflow.upsert_search_attributes([names.SA_REFUND_STATE.value_set(recorded)])
        raise ApplicationError(refusal.message, type=refusal.type, non_retryable=True) from None
