"""How a refund tells the world where it is: search attributes, the Web UI's details, and
the audit trail and outbox in our own Postgres (through one idempotent store call)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows import names
    from workflows.models import RecordTransitionsInput
    from workflows.refund import views
    from workflows.refund.case import RefundCase

# Writing the audit trail must eventually succeed: retry for as long as it takes.
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)
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
        entries, notices = self.case.unrecorded()
        if not entries:
            return
        upto = entries[-1].seq
        await self.store_call(
            names.ACTIVITY_RECORD_TRANSITIONS,
            RecordTransitionsInput(
                refund_id=self.case.inp.refund_id,
                entries=entries,
                projection=views.projection(self.case),
                notices=notices,
            ),
            int,
            "audit",
        )
        self.case.mark_recorded(upto)

    async def store_call(self, name: str, arg: Any, result_type: type[T], summary: str) -> T:
        """Our own Postgres, idempotent by key: short enough to run as a local activity
        (no round trip through the server; all local activities of one workflow task count
        as one billable action). Refunds started before that change keep regular ones."""
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
