"""How a refund that waits for months keeps its history short: continue-as-new.

Temporal terminates a workflow at 51,200 history events (or 50 MB) and suggests
continue-as-new from about 4,096. A refund pending with the provider polls hourly, about 11
events a poll (250 a day); one waiting for an operator adds a reminder a day. At those waits
the refund hands its whole state (`Progress`: timeline, settlements, escalation, pins via the
start input) to a new run of the same workflow id, so queries, updates, search attributes and
idempotency keys (all derived from the refund id) are unaffected; only the run id changes.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.refund.case import ContinuedRefundInput, RefundCase
    from workflows.refund.journal import Journal

# Our own bound, below the server's suggestion (4,096 by default) in case a server is
# configured higher: every run of a refund stays under this many events plus one wait's.
HISTORY_BOUND = 3_000


def history_is_long() -> bool:
    info = workflow.info()
    return info.is_continue_as_new_suggested() or info.get_current_history_length() >= HISTORY_BOUND


async def continue_if_long(case: RefundCase, journal: Journal) -> None:
    """At a wait, if history is long: record everything, let running handlers finish, and
    continue as a new run carrying the state. Returns (to go on waiting) otherwise."""
    if not case.p.long_lived or not history_is_long():
        return
    await journal.flush()
    await workflow.wait_condition(workflow.all_handlers_finished)
    case.p.runs += 1
    carried = {**dict(case.inp), "carried": case.p, "reversal": None}
    workflow.continue_as_new(ContinuedRefundInput(**carried))
