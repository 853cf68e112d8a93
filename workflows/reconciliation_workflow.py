"""ReconciliationWorkflow: compare the provider's ledger, inventory and refundflow's own
records, heal what is safe through the refunds' workflows, escalate the rest.

Run by a Temporal Schedule (created by the worker) and on demand by `refundflow reconcile`.
All the comparing is one activity of set-based SQL, so it stays fast at 100k refunds.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows import names
    from workflows.models import ReconcileInput, ReconcileReport


@workflow.defn
class ReconciliationWorkflow:
    @workflow.run
    async def run(self, inp: ReconcileInput) -> ReconcileReport:
        report: ReconcileReport = await workflow.execute_activity(
            names.ACTIVITY_RECONCILE,
            inp,
            result_type=ReconcileReport,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(maximum_attempts=3),
            summary="reconcile ledgers",
        )
        return report
