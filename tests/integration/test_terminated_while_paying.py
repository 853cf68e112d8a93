"""A refund whose workflow Temporal ended while its payment was on its way to the provider:
reconciliation must not close it as "no money moved" while that call may still be paid (a
red-team trial: closed by `reconcile --grace 0`, paid 5 s later, paid again under a new
key)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from activities.closing import (
    ClosedByItsRecord,
    RunBehindRecord,
    _runs_of,
    check_run_holds_the_record,
)
from activities.closing_advice import IN_FLIGHT_SECONDS, EndedRun
from activities.pg_store import PostgresRefundStore
from client.errors import RefundflowError
from client.refund_client import RefundClient
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox, unique_key
from tests.integration.helpers import eventually, run_the_reset_it_gives, wait_for_state
from tests.integration.test_audit_store import batch
from tests.integration.test_graceful_shutdown import (
    asked_until_the_provider_is_called,
    provider_calls,
)
from tests.integration.test_refund_flow import make_request
from tests.unit.test_refund_case import new_case
from worker.devstack import DevStack
from workflows.models import ReconcileInput
from workflows.refund.case import RefundCase
from workflows.refund.fast_path import FAST_PATH_RETRY
from workflows.states import RefundState, TimelineEvent
from workflows.vocabulary import PERSON_DECIDES

pytestmark = pytest.mark.stack


async def last_finding(db: asyncpg.Pool, refund_id: str) -> dict[str, Any]:
    details: dict[str, Any] = json.loads(await db.fetchval(
        "SELECT details FROM refundflow.findings WHERE refund_id = $1"
        " AND kind = 'workflow_closed_abnormally' ORDER BY finding_id DESC LIMIT 1",
        refund_id,
    ))  # fmt: skip
    return details


async def test_a_run_ended_while_its_payment_is_on_its_way_is_not_closed_as_no_money_moved(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, db: asyncpg.Pool
) -> None:
    """The trial's steps: the in-process tries fail, the payment goes to the durable
    activity, whose call is on its way when the run is terminated; the provider, asked at
    once, holds nothing yet."""
    tries = FAST_PATH_RETRY.maximum_attempts
    await faults.set_faults({"payment.fail_first_calls": str(tries), "payment.latency_ms": "2000"})
    order, refund_id, asking = await asked_until_the_provider_is_called(
        refunds, sandbox, 2000, kind="create"
    )
    try:
        await refunds.temporal.get_workflow_handle(refund_id).terminate("looks stuck")
        await faults.clear_faults()  # answers at once again; the create is still on its way
        assert await sandbox.refunds(order["order_id"]) == []
        await refunds.reconcile(ReconcileInput(grace_seconds=0))
    finally:
        await faults.clear_faults()
        asking.cancel()
    said = (await last_finding(db, refund_id)).get("not_healed", "")
    assert "while it was paying" in said and f"no sooner than {IN_FLIGHT_SECONDS} s" in said
    assert (await refunds.status(refund_id)).state.value == "refunding"  # not "cancelled"

    paid = await eventually(
        lambda: sandbox.refunds(order["order_id"]),
        lambda found: [r["status"] for r in found] == ["succeeded"],
        timeout=30,
    )
    await refunds.reconcile(ReconcileInput(grace_seconds=0))
    done = await refunds.status(refund_id)
    assert (done.state.value, done.provider_refund_id) == ("completed", paid[0]["id"])
    told = [event.type for event in await refunds.events(refund_id)]
    assert "refund.cancelled" not in told and told[-1] == "refund.completed", told


async def test_a_run_ended_during_its_first_step_is_left_to_a_person_with_the_reset_to_run(
    refunds: RefundClient,
    sandbox: Sandbox,
    faults: SandboxAdmin,
    db: asyncpg.Pool,
    stack: DevStack,
) -> None:
    """Started without an update, an auto-approved refund's run is one workflow task. Its
    worker died while the provider paid, before it recorded that; the run was terminated:
    Temporal answers no query of it, and every reconciliation escalated it with Temporal's
    raw error (a red-team trial). The finding gives the reset, which pays nothing twice."""
    await faults.set_faults({"payment.latency_ms": "2000"})
    order, refund_id, _ = await asked_until_the_provider_is_called(
        refunds, sandbox, 2000, kind="create", first_step=False
    )
    try:
        await asyncio.to_thread(stack.kill_worker)  # the provider still pays the call
        await refunds.temporal.get_workflow_handle(refund_id).terminate("looks stuck")
    finally:
        await faults.clear_faults()
        await asyncio.to_thread(stack.start_worker)
    await eventually(
        lambda: sandbox.refunds(order["order_id"]),
        lambda found: [r["status"] for r in found] == ["succeeded"],
        timeout=30,
    )
    await refunds.reconcile(ReconcileInput(grace_seconds=0))
    details = await last_finding(db, refund_id)
    assert "heal_error" not in details, details
    said = details.get("not_healed", "")
    assert "ended during its first step" in said and details.get(PERSON_DECIDES), details

    await run_the_reset_it_gives(said)
    await wait_for_state(refunds, refund_id, "completed")
    assert len(await sandbox.refunds(order["order_id"])) == 1


async def test_a_retry_on_its_way_is_waited_for_beside_a_failed_first_attempt(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, db: asyncpg.Pool
) -> None:
    """A review: the provider held attempt 1's failed refund, so the guard was skipped and
    the refund closed "no money moved" while the operator's retry was on its way."""
    await faults.set_faults({
        "payment.pending_rate": "1", "payment.settle_after_ms": "300",
        "payment.settle_failure_rate": "1",
    })  # fmt: skip
    order = await sandbox.order(amount=2000)
    made = await refunds.request(make_request(order))
    await eventually(
        lambda: refunds.status(made.refund_id), lambda s: s.awaiting.value == "operator"
    )
    await faults.clear_faults()
    await faults.set_faults({"payment.latency_ms": "3000"})
    retry = asyncio.create_task(refunds.operator_retry(made.refund_id, "ops-kim"))
    try:
        await eventually(
            lambda: provider_calls(sandbox, made.refund_id),
            lambda calls: any(c["kind"] == "create" and c["outcome"] == "in_flight" for c in calls),
        )
        await refunds.temporal.get_workflow_handle(made.refund_id).terminate("looks stuck")
        await faults.clear_faults()
        assert [r["status"] for r in await sandbox.refunds(order["order_id"])] == ["failed"]
        await refunds.reconcile(ReconcileInput(grace_seconds=0))
    finally:
        await faults.clear_faults()
        retry.cancel()
    said = (await last_finding(db, made.refund_id)).get("not_healed", "")
    assert "while it was paying" in said, said
    assert (await refunds.status(made.refund_id)).state.value == "refunding"  # not "cancelled"


async def test_a_record_the_worker_closed_after_the_run_ended_is_left_closed(
    db: asyncpg.Pool,
) -> None:
    """A red team's finding read "its ended run was reset to before the refund's record" of
    a run Temporal terminated while its worker went on and recorded the refund's end: the
    record closed it, nothing to do (healed, not escalated for a person)."""
    case, _ = new_case()
    refund_id = unique_key("rf")
    case = RefundCase(case.inp.model_copy(update={"refund_id": refund_id}), case.clock)
    case.append(TimelineEvent.REQUESTED, None, "cust_1", "web", "asked")  # the run's only entry
    store = PostgresRefundStore(db)
    await store.record_transitions(batch(refund_id, [1], RefundState.REFUNDING))
    with pytest.raises(RunBehindRecord):  # a record ahead of the run, still open: a person
        await check_run_holds_the_record(store, case, "")
    await store.record_transitions(batch(refund_id, [2], RefundState.COMPLETED))
    with pytest.raises(ClosedByItsRecord, match="its record closed it \\(completed, entry 2"):
        await check_run_holds_the_record(store, case, "")


def runs(listed: int) -> Callable[[], Awaitable[int]]:
    """How many runs (not continued as new) Temporal lists, as the heal asks it."""

    async def count() -> int:
        return listed

    return count


async def test_a_run_ended_while_its_approval_paid_is_told_to_run_on_with_it_again(
    db: asyncpg.Pool,
) -> None:
    """A trial: terminated while the approval's payment was on its way (the approve
    update's workflow task: its history keeps no approval, the record does), the finding
    said to reset "the run that wrote" the record, which does not exist, and the refund
    stayed escalated though the provider had paid. With one run, the finding gives the
    reset to its last step and the same approval again (the trial's warehouse did the same
    with `received` and it completed, paid once)."""
    case, _ = new_case()
    refund_id = unique_key("rf")
    case = RefundCase(case.inp.model_copy(update={"refund_id": refund_id}), case.clock)
    case.append(TimelineEvent.REQUESTED, None, "cust_1", "web", "asked")  # the run's only entry
    store = PostgresRefundStore(db)
    written = batch(refund_id, [2], RefundState.APPROVED)
    approval = written.entries[0].model_copy(update={"event": "approve", "actor": "alice"})
    await store.record_transitions(written.model_copy(update={"entries": [approval]}))
    await store.record_transitions(batch(refund_id, [3], RefundState.REFUNDING))
    with pytest.raises(RunBehindRecord) as one_run:
        await check_run_holds_the_record(store, case, " --address 127.0.0.1:7", runs=runs(1))
    said = str(one_run.value)
    assert "while it recorded and paid its last action (approve by alice, entry 2)" in said
    assert f"`refundflow --as alice approve {refund_id}` (the same amount)" in said
    assert f"reset -w {refund_id} --type LastWorkflowTask" in said and "was reset" not in said
    with pytest.raises(RunBehindRecord, match="its ended run was reset to before"):
        await check_run_holds_the_record(store, case, "", runs=runs(2))  # a reset: as before


async def test_a_reconciliation_the_provider_stops_says_why(
    refunds: RefundClient, faults: SandboxAdmin
) -> None:
    """A trial: with the provider down, `reconcile` printed only "unexpected
    WorkflowFailureError: Workflow execution failed" (the cause in the worker's log)."""
    await faults.set_faults({"payment.error_rate": "1"})
    try:
        with pytest.raises(RefundflowError) as failed:
            await refunds.reconcile(ReconcileInput(grace_seconds=0))
    finally:
        await faults.clear_faults()
    said = str(failed.value)
    assert said.startswith("reconciliation did not finish: "), said
    assert "payment provider" in said and "run it again once that is fixed" in said, said


async def test_a_step_no_person_took_is_run_on_by_the_reset_alone(db: asyncpg.Pool) -> None:
    """A review: the unkept step may be a timer's or the provider's; nobody is to "send it
    again" (it read "have payment-provider send it again: the same provider_pending")."""
    case, _ = new_case()
    refund_id = unique_key("rf")
    case = RefundCase(case.inp.model_copy(update={"refund_id": refund_id}), case.clock)
    case.append(TimelineEvent.REQUESTED, None, "cust_1", "web", "asked")
    store = PostgresRefundStore(db)
    await store.record_transitions(batch(refund_id, [2], RefundState.REFUNDING))
    with pytest.raises(RunBehindRecord) as one_run:
        await check_run_holds_the_record(store, case, "", runs=runs(1))
    said = str(one_run.value)
    assert "recorded its last step (e2 by tester, entry 2)" in said, said
    assert "it takes that step again" in said and "send it again" not in said


async def test_a_refunds_runs_are_counted_as_temporal_lists_them(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    """The count the advice rests on, asked of the real visibility store (its query, runs
    that continued as new left out)."""
    order = await sandbox.order(amount=2000)
    made = await refunds.request(make_request(order))
    await wait_for_state(refunds, made.refund_id, "completed")
    ran = EndedRun(made.refund_id, None, "completed")
    assert await eventually(lambda: _runs_of(refunds.temporal, ran), lambda n: n == 1) == 1
