"""Refunds that live for months keep a bounded history (issue 11): store calls that cannot
reach Postgres stop adding history, an audit conflict after a reset is escalated instead of
retried forever, and long provider and operator waits continue as new with the whole state.
The dev server here suggests continue-as-new at SUGGEST_CONTINUE_AT events (4,096 in
production), so months of waiting take seconds."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter

from tests.workflow.conftest import SUGGEST_CONTINUE_AT, Env, tv_order
from tests.workflow.recording import keep_history
from tests.workflow.waiting import Handle, result_of, status_of, until
from workflows import wording
from workflows.models import OperatorRetryInput, RefundWorkflowInput
from workflows.refund.case import ContinuedRefundInput, RefundCase
from workflows.refund.workflow import RefundWorkflow
from workflows.states import Awaiting, OperatorDecision, RefundState

SMALL = 4200  # auto-approved under every policy


async def history_length(handle: Handle) -> int:
    return len((await handle.fetch_history()).events)


async def runs_of(client: Client, workflow_id: str) -> list[tuple[str, int, str]]:
    """(run id, history events, how it ended) for every run of one workflow id, first first."""
    runs = []
    executions = [e async for e in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    for execution in sorted(executions, key=lambda e: e.start_time):
        handle = client.get_workflow_handle(workflow_id, run_id=execution.run_id)
        events = len((await handle.fetch_history()).events)
        status = execution.status.name if execution.status else "?"
        runs.append((execution.run_id, events, status))
    return runs


async def test_history_stops_growing_while_postgres_is_down(env: Env) -> None:
    env.systems.store_down = True
    handle = await env.start(tv_order(price=SMALL))
    # A few in-process tries with the payment (about 3 s: nothing is paid before the record
    # is written), a few more of the record alone, then the regular activity retries
    # server-side.
    await asyncio.sleep(10)
    calls_then, events_then = env.systems.store_calls, await history_length(handle)
    await asyncio.sleep(12)
    assert env.systems.store_calls > calls_then, "the store was not retried while down"
    # Before, each in-process retry cycle added about 3 events every 8 s, forever.
    assert await history_length(handle) == events_then
    assert env.systems.paid() == []  # the record before the money, with the store down too
    env.systems.store_down = False
    done = await result_of(handle, timeout=60)
    assert done.state is RefundState.COMPLETED
    assert len(env.systems.paid()) == 1
    assert env.systems.events(handle.id)[0] == "requested"


async def test_an_audit_conflict_after_a_reset_is_escalated_and_the_refund_goes_on(
    env: Env,
) -> None:
    # Another run of this refund (a reset from the Web UI) wrote three other entries.
    env.systems.other_run_entries = 3
    handle = await env.start(tv_order(price=SMALL))
    done = await result_of(handle, timeout=60)
    assert done.state is RefundState.COMPLETED
    assert len(env.systems.paid()) == 1
    stored = env.systems.audit[handle.id]
    # Append-only and gap-free: the other run's entries stay, this run's follow them.
    assert sorted(stored) == list(range(1, len(stored) + 1))
    assert [stored[s].event for s in (2, 3, 4)] == ["other_run"] * 3
    mine = [stored[s] for s in sorted(stored) if s > 4]
    assert mine[0].event == "auto_approve"
    assert any(e.event == "escalated" and "audit conflict" in e.reason for e in mine)
    # What the refund shows is what the store has.
    assert [e.seq for e in done.timeline] == [1] + [e.seq for e in mine]
    await keep_history(handle, "audit_conflict_after_reset")


async def virtual_age(handle: Handle, started: datetime) -> timedelta:
    """How much virtual time the refund has lived: its newest run's last event."""
    history = await handle.fetch_history()
    return history.events[-1].event_time.ToDatetime(UTC) - started


async def pending_for(env: Env, days: int) -> Handle:
    """A refund the provider keeps pending while `days` pass (in virtual time). A
    fast-forward ends at a continue-as-new, so it is asked again until the time has passed."""
    env.systems.provider_answers = ["pending"]
    handle = await env.start(tv_order(price=SMALL))
    await until(handle, lambda s: s.awaiting is Awaiting.PAYMENT_PROVIDER and len(s.timeline) > 2)
    started = (await status_of(handle)).timeline[0].at
    for _ in range(200):
        left = timedelta(days=days) - await virtual_age(handle, started)
        if left <= timedelta(0):
            return handle
        await env.skipper.fast_forward(handle, left)
    raise AssertionError(f"{days} virtual days did not pass")


async def settles_once_with_state_whole(env: Env, handle: Handle) -> None:
    # Queries reach the newest run; the state came along whole.
    status = await status_of(handle)
    assert status.state is RefundState.REFUNDING
    assert [e.event for e in status.timeline][:3] == ["requested", "auto_approve", "start_refund"]
    [pending] = env.systems.provider_refunds.values()
    env.systems.settle(pending.provider_refund_id, "succeeded")
    await env.skipper.fast_forward(handle, timedelta(days=1))
    done = await result_of(handle)
    assert done.state is RefundState.COMPLETED
    assert len(env.systems.paid()) == 1
    assert env.systems.events(handle.id) == [e.event for e in done.timeline]


def each_run_bounded(runs: list[tuple[str, int, str]]) -> None:
    # The server's hint comes at a wait's end: one wait (a poll, ~6 events) may follow it.
    assert all(events < SUGGEST_CONTINUE_AT + 20 for _, events, _ in runs), runs
    assert [status for _, _, status in runs[:-1]] == ["CONTINUED_AS_NEW"] * (len(runs) - 1)


@pytest.mark.slow  # time skipping fires about one timer a second: a day of polls is ~30 s
async def test_a_refund_pending_for_days_continues_as_new_and_settles(env: Env) -> None:
    handle = await pending_for(env, days=2)
    runs = await runs_of(env.skipper.client, handle.id)
    assert len(runs) >= 2, runs
    each_run_bounded(runs)
    # Hourly for the first day, then every 6 h: not 48 polls a day.
    assert env.systems.calls.count("poll") < 45
    first = env.skipper.client.get_workflow_handle(handle.id, run_id=runs[0][0])
    await keep_history(first, "pending_continued_as_new")
    await settles_once_with_state_whole(env, handle)
    await keep_history(handle, "pending_continued_run_settled")


@pytest.mark.slow
@pytest.mark.months  # about 3 minutes: `./scripts/test tests/workflow -m months`
async def test_ninety_days_pending_with_the_provider(env: Env) -> None:
    handle = await pending_for(env, days=90)
    runs = await runs_of(env.skipper.client, handle.id)
    print("history events per run:", [events for _, events, _ in runs])
    each_run_bounded(runs)
    assert len(runs) >= 3, runs
    # Hourly for a day, every 6 h to day 7, then (doubling through 12 h) daily: never more
    # often (hourly polling would be 2,160 polls). Time skipping sometimes jumps past a
    # timer across a continue-as-new, so gaps can be longer than the schedule, never shorter.
    started = env.systems.polled_at[0]
    late = [
        (before, after)
        for before, after in itertools.pairwise(env.systems.polled_at)
        if before - started >= timedelta(days=8)
    ]
    assert late, env.systems.polled_at  # it kept polling past day 8, so the check says something
    for before, after in late:
        assert after - before >= timedelta(hours=12), (before, after)
    assert len(env.systems.polled_at) < 160
    await settles_once_with_state_whole(env, handle)


@pytest.mark.slow
async def test_an_operator_wait_of_months_continues_as_new_and_the_operator_still_acts(
    env: Env,
) -> None:
    env.systems.provider_answers = ["refuse", "succeeded"]
    handle = await env.start(tv_order(price=SMALL))
    await until(handle, lambda s: s.awaiting is Awaiting.OPERATOR)
    await env.skipper.fast_forward(handle, timedelta(days=30))
    runs = await runs_of(env.skipper.client, handle.id)
    assert len(runs) > 1, runs
    each_run_bounded(runs)
    first = env.skipper.client.get_workflow_handle(handle.id, run_id=runs[0][0])
    await keep_history(first, "operator_wait_continued_as_new")
    # An update sent to the workflow id reaches the newest run.
    await handle.execute_update(
        RefundWorkflow.operator_retry, OperatorRetryInput(operator="op_1", source="cli")
    )
    done = await result_of(handle)
    assert done.state is RefundState.COMPLETED
    assert [r.idempotency_key for r in env.systems.paid()] == [f"{handle.id}:refund:2"]
    described = await handle.describe()
    assert described.status is WorkflowExecutionStatus.COMPLETED
    await keep_history(handle, "operator_wait_continued_run_completed")


async def test_customers_and_subscribers_are_told_of_a_payment_failure_and_escalations(
    env: Env,
) -> None:
    env.systems.provider_answers = ["refuse"]
    handle = await env.start(tv_order(price=SMALL))
    await until(handle, lambda s: s.awaiting is Awaiting.OPERATOR)
    await env.skipper.fast_forward(handle, timedelta(hours=49))  # two operator reminders
    await until(handle, lambda s: sum(e.event == "escalated" for e in s.timeline) >= 3)
    told = env.systems.told[handle.id]
    [failure] = [n for n in told if n.event == "escalated"]  # reminders are not news
    assert failure.facts.payment_failed
    told_customer = wording.notification(failure.facts)
    assert told_customer["template"] == "refunding.payment_failed"
    assert told_customer["subject"].endswith(": delayed")  # not "on its way"

    review = await env.start(tv_order(price=200_000))  # above every auto-approval limit
    await until(review, lambda s: s.awaiting is Awaiting.REVIEWER)
    await env.skipper.fast_forward(review, timedelta(days=3))
    await until(review, lambda s: s.escalation_level >= 1)
    escalated = [n for n in env.systems.told[review.id] if n.event == "escalated"]
    assert escalated and escalated[0].facts.escalation_level == 1
    assert wording.notification(escalated[0].facts)["template"] == "pending_review.escalated"


async def test_a_run_continued_right_after_an_operator_retry_goes_on_with_the_retry(
    env: Env,
) -> None:
    """An operator retried while the run was handing over (continue-as-new): the new run
    starts with the retry already chosen and no settlement pending; it must pay, not wait."""
    env.systems.provider_answers = ["refuse", "succeeded"]
    handle = await env.start(tv_order(price=SMALL))
    waiting = await until(handle, lambda s: s.awaiting is Awaiting.OPERATOR)
    first = await handle.describe()
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    inp = pydantic_data_converter.payload_converter.from_payload(
        started.input.payloads[0], RefundWorkflowInput
    )
    await handle.terminate("replaced by a run continued at the handover")
    case = RefundCase(inp, lambda: waiting.timeline[0].at)
    progress = case.p.model_copy(
        update={
            "state": RefundState.REFUNDING,
            "awaiting": Awaiting.PAYMENT_PROVIDER,
            "operator_action": OperatorDecision.RETRY,
            "long_lived": True,
            "local_fast_path": True,
            "timeline": waiting.timeline,
            "recorded": len(waiting.timeline),
            "refunding_since": waiting.timeline[-1].at,
        }
    )
    continued = ContinuedRefundInput(**{**dict(inp), "carried": progress})
    second = await env.skipper.client.start_workflow(
        RefundWorkflow.run,
        continued,
        id=f"{handle.id}-continued",
        task_queue=env.task_queue,
    )
    done = await result_of(second)
    assert first.run_id != (await second.describe()).run_id
    assert done.state is RefundState.COMPLETED
    assert [r.idempotency_key for r in env.systems.paid()] == [f"{handle.id}:refund:2"]
