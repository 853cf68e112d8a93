"""The chaos case of a refund that waits for months (issue 11): the provider keeps refunds
pending for 90 days of virtual time (the dev server's time skipping, on the real stack),
then pays. Proved from the record: several runs (continue-as-new happened), each under the
server's hint plus one wait and far under 4,096 events, polls on the slowing schedule, and
the refund settles once with its whole state."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
from temporalio.client import WorkflowHandle

from tests.chaos.ends import COMPLETED
from tests.chaos.harness import SUGGEST_CONTINUE_AT, Chaos, settle
from tests.chaos.proofs import creates, wait_for
from workflows.states import Awaiting, RefundState

DAYS = 90
# Hourly polling would be 2,160 polls in 90 days; the schedule slows to daily after a week.
MOST_POLLS = 160
# The server's hint comes at the end of a wait: one more wait (a poll, ~11 events) may
# follow it before the run continues as new.
RUN_BOUND = SUGGEST_CONTINUE_AT + 30


async def ninety_days_pending_with_the_provider(chaos: Chaos) -> None:
    await chaos.faults.set_faults(
        {"payment.pending_rate": "1", "payment.settle_after_ms": "86400000"}
    )
    orders = [await chaos.order(amount=4000) for _ in range(2)]
    await asyncio.gather(*(chaos.request(o, expect=COMPLETED) for o in orders))
    refund_ids = sorted(chaos.refund_ids)
    await asyncio.gather(*(_pending_for(chaos, refund_id) for refund_id in refund_ids))
    for refund_id in refund_ids:
        runs = await _runs(chaos, refund_id)
        assert len(runs) >= 2, f"{refund_id}: no continue-as-new in {DAYS} days: {runs}"
        assert all(events < RUN_BOUND for events, _ in runs), f"{refund_id}: {runs}"
        ended = [status for _, status in runs[:-1]]
        assert ended == ["CONTINUED_AS_NEW"] * len(ended), f"{refund_id}: {runs}"
        polls = [c for c in await chaos.calls(refund_id) if c["kind"] == "poll"]
        assert len(polls) < MOST_POLLS, f"{refund_id}: {len(polls)} polls"
    await _provider_settles_now(chaos, refund_ids)
    for refund_id in refund_ids:
        status = await settle(chaos, refund_id)
        assert status.state is RefundState.COMPLETED, status.state
        events = [e.event for e in status.timeline]
        assert events[:3] == ["requested", "auto_approve", "start_refund"], events
        assert len(creates(await chaos.calls(refund_id))) == 1, refund_id


async def _pending_for(chaos: Chaos, refund_id: str) -> None:
    """Wait for the provider's `pending`, then fast-forward until DAYS have passed. A
    fast-forward may end at a continue-as-new, so it is asked again until they have."""

    async def waiting() -> bool:
        status = await chaos.status(refund_id)
        pending = any(e.event == "provider_pending" for e in status.timeline)
        return status.awaiting is Awaiting.PAYMENT_PROVIDER and pending

    await wait_for(f"{refund_id} to wait on the provider", waiting)
    started = (await chaos.status(refund_id)).timeline[0].at
    handle = chaos.refunds.temporal.get_workflow_handle(refund_id)
    for _ in range(200):
        left = timedelta(days=DAYS) - await _virtual_age(handle, started)
        if left <= timedelta(0):
            return
        await chaos.skipper.fast_forward(handle, left)
    raise AssertionError(f"{refund_id}: {DAYS} virtual days did not pass")


async def _virtual_age(handle: WorkflowHandle[object, object], started: datetime) -> timedelta:
    history = await handle.fetch_history()
    return history.events[-1].event_time.ToDatetime(UTC) - started


async def _runs(chaos: Chaos, refund_id: str) -> list[tuple[int, str]]:
    """(history events, how it ended) of every run of the refund, oldest first."""
    client = chaos.refunds.temporal
    executions = [e async for e in client.list_workflows(f"WorkflowId = '{refund_id}'")]
    runs = []
    for execution in sorted(executions, key=lambda e: e.start_time):
        handle = client.get_workflow_handle(refund_id, run_id=execution.run_id)
        status = execution.status.name if execution.status else "?"
        runs.append((len((await handle.fetch_history()).events), status))
    return runs


async def _provider_settles_now(chaos: Chaos, refund_ids: list[str]) -> None:
    """The provider pays at last (its webhook tells the refunds)."""
    assert chaos.stack.owner_database_url, "the case needs the owner's connection"
    owner = await asyncpg.connect(chaos.stack.owner_database_url)
    try:
        await owner.execute(
            "UPDATE sandbox.refunds SET settle_at = now()"
            " WHERE metadata->>'refund_id' = ANY($1::text[]) AND status = 'pending'",
            refund_ids,
        )
    finally:
        await owner.close()
