"""Reconciliation finds where the provider, inventory and refundflow disagree; heals what is
safe through the workflow, escalates the rest, and keeps the findings.

Where a refund waits on a timer that could settle it first (the provider poll), the test
moves that timer out of the way in virtual time rather than racing it in real time."""

from __future__ import annotations

import json
from datetime import timedelta
from functools import partial
from typing import Any

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import TimeSkipper

from client.refund_client import RefundClient
from client.report import build_report
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox
from tests.integration.helpers import eventually, run_cli, wait_for_state
from tests.integration.test_refund_flow import make_request
from worker.devstack import DevStack
from workflows import names
from workflows.models import ReconcileInput, StatusView

pytestmark = pytest.mark.stack
A_DAY_MS = str(24 * 3600 * 1000)


def findings_for(report: dict[str, Any], refund_id: str) -> set[tuple[str, str]]:
    return {(f["kind"], f["action"]) for f in report["details"] if f["refund_id"] == refund_id}


def details_of(report: dict[str, Any], refund_id: str, kind: str) -> dict[str, Any]:
    [found] = [f for f in report["details"] if (f["refund_id"], f["kind"]) == (refund_id, kind)]
    details: dict[str, Any] = found["details"]
    return details


async def reconcile_cli(stack: DevStack, *extra: str, exit_status: int = 0) -> dict[str, Any]:
    code, out, err = await run_cli(stack.env(), "reconcile", "--grace", "0", "--json", *extra)
    assert code == exit_status, err
    report: dict[str, Any] = json.loads(out)
    return report


async def awaiting_operator(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> tuple[StatusView, dict[str, Any]]:
    """An auto-approved refund the provider refused for good: it waits for an operator."""
    order = await sandbox.order(amount=4000)
    await faults.set_faults({"payment.refuse": "expired_card"})
    status = await refunds.request(make_request(order))
    stuck = await eventually(
        partial(refunds.status, status.refund_id), lambda s: s.awaiting.value == "operator"
    )
    await faults.clear_faults()
    assert await sandbox.refunds(order["order_id"]) == []  # refused: nothing at the provider
    return stuck, order


async def signals(handle: WorkflowHandle[Any, Any]) -> int:
    history = await handle.fetch_history()
    return sum(
        e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED for e in history.events
    )


async def test_provider_paid_but_refund_still_waiting_is_healed_through_the_workflow(
    refunds: RefundClient,
    skipper: TimeSkipper,
    sandbox: Sandbox,
    faults: SandboxAdmin,
    db: asyncpg.Pool,
    stack: DevStack,
) -> None:
    # The provider answers pending, settles only when the test says so, and sends no webhook.
    await faults.set_faults(
        {"payment.pending_rate": "1", "payment.settle_after_ms": A_DAY_MS,
         "payment.webhooks": "false"}
    )  # fmt: skip
    order = await sandbox.order(amount=4000)
    status = await refunds.request(make_request(order))
    await eventually(
        partial(refunds.status, status.refund_id),
        lambda s: any(e.event == "provider_pending" for e in s.timeline),
    )
    # Polls back off from 30 s to hourly. Skip 64 min of virtual time while the provider
    # still says pending: seven polls later the next one is an hour of real time away, so
    # only reconciliation can settle the refund below (no race with a 30 s poll).
    handle = refunds.temporal.get_workflow_handle(status.refund_id)
    await skipper.fast_forward(handle, timedelta(minutes=64))
    history = await handle.fetch_history()
    polls = [
        e for e in history.events
        if e.activity_task_scheduled_event_attributes.activity_type.name
        == names.ACTIVITY_CHECK_PROVIDER_REFUND
    ]  # fmt: skip
    assert len(polls) >= 7, "the poll backoff has not reached an hour"
    # The provider settles now (its webhook lost).
    await db.execute(
        "UPDATE sandbox.refunds SET settle_at = now() WHERE metadata->>'refund_id' = $1",
        status.refund_id,
    )
    await eventually(
        lambda: sandbox.refunds(order["order_id"]),
        lambda ledger: [r["status"] for r in ledger] == ["succeeded"],
    )
    report = await reconcile_cli(stack)
    assert findings_for(report, status.refund_id) == {("provider_refunded_not_completed", "healed")}
    done = await wait_for_state(refunds, status.refund_id, "completed")
    assert "settled via reconciliation" in done.timeline[-1].reason
    assert len(await sandbox.refunds(order["order_id"])) == 1

    # Healed: the next run finds nothing more for it.
    again = await refunds.reconcile(ReconcileInput(grace_seconds=0))
    details = await (await refunds.store()).findings(run_id=again.run_id, limit=10_000)
    assert not [f for f in details if f.refund_id == status.refund_id]


async def test_a_refund_awaiting_an_operator_is_healed_when_the_provider_paid_after_all(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, stack: DevStack
) -> None:
    stuck, order = await awaiting_operator(refunds, sandbox, faults)
    # The provider paid it after all (a refund for it made in the provider's dashboard).
    paid = await sandbox.provider_refund(order, stuck.refund_id, stuck.amount)
    assert paid["status"] == "succeeded"
    report = await reconcile_cli(stack)
    assert findings_for(report, stuck.refund_id) == {("provider_refunded_not_completed", "healed")}
    # The workflow confirms with the provider and leaves the operator wait: no one must act.
    done = await wait_for_state(refunds, stuck.refund_id, "completed")
    assert done.provider_refund_id == paid["id"]
    assert done.provider_failure is None
    assert f"provider refund {paid['id']} succeeded (settled via reconciliation)" == (
        done.timeline[-1].reason
    )
    ledger = await sandbox.refunds(order["order_id"])
    assert [(r["id"], r["status"]) for r in ledger] == [(paid["id"], "succeeded")]


async def test_reconcile_no_heal_finds_the_paid_refund_and_leaves_it_alone(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, stack: DevStack
) -> None:
    stuck, order = await awaiting_operator(refunds, sandbox, faults)
    handle = refunds.temporal.get_workflow_handle(stuck.refund_id)
    await sandbox.provider_refund(order, stuck.refund_id, stuck.amount)
    report = await reconcile_cli(stack, "--no-heal")
    # The same finding a healing run heals (previous test), here only reported: not
    # "escalated", which read as handed to a person by a run told to change nothing.
    assert findings_for(report, stuck.refund_id) == {
        ("provider_refunded_not_completed", "reported")
    }
    assert report["escalated"] == 0 and report["reported"] >= 1  # other tests share the stack
    assert "heal_error" not in details_of(
        report, stuck.refund_id, "provider_refunded_not_completed"
    )
    assert report["healed"] == 0
    # Nothing reached the workflow: no signal in its history, still waiting for an operator.
    assert await signals(handle) == 0
    after = await refunds.status(stuck.refund_id)
    assert (after.state.value, after.awaiting.value) == ("refunding", "operator")
    assert len(after.timeline) == len(stuck.timeline)
    code, out, err = await run_cli(
        stack.env(), "anomalies", "--kind", "provider_refunded_not_completed", "--json"
    )
    assert code == 0, err
    kept = [f for f in json.loads(out) if f["refund_id"] == stuck.refund_id]
    assert [(f["run_id"], f["action"]) for f in kept] == [(report["run_id"], "reported")]


async def anomalies_of(stack: DevStack, refund_id: str, *extra: str) -> list[dict[str, Any]]:
    code, out, err = await run_cli(
        stack.env(), "anomalies", "--refund", refund_id, "--json", *extra
    )
    assert code == 0, err
    found: list[dict[str, Any]] = json.loads(out)
    return found


async def test_anomalies_open_lists_what_still_stands_until_a_run_heals_it(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, stack: DevStack
) -> None:
    stuck, order = await awaiting_operator(refunds, sandbox, faults)
    await sandbox.provider_refund(order, stuck.refund_id, stuck.amount)
    looked = await reconcile_cli(stack, "--no-heal")
    [reported] = await anomalies_of(stack, stuck.refund_id, "--open")
    assert (reported["run_id"], reported["action"], reported["open"]) == (
        looked["run_id"],
        "reported",
        True,
    )
    code, out, err = await run_cli(stack.env(), "anomalies", "--refund", stuck.refund_id)
    assert code == 0 and " reported  open provider_refunded_not_completed" in out, (out, err)

    healed_by = await reconcile_cli(stack)
    # Both runs' findings are kept; neither stands now, and the healed one says since when.
    kept = await anomalies_of(stack, stuck.refund_id)
    assert [(f["run_id"], f["action"], f["open"]) for f in kept] == [
        (healed_by["run_id"], "healed", False),
        (looked["run_id"], "reported", False),
    ]
    assert kept[0]["first_found_at"] == reported["created_at"]
    assert await anomalies_of(stack, stuck.refund_id, "--open") == []
    code, out, err = await run_cli(stack.env(), "anomalies", "--open", "--refund", stuck.refund_id)
    assert (code, out.strip()) == (0, "no open findings"), err
    # Another refund's findings are not this one's.
    assert await anomalies_of(stack, "rf_" + "0" * 24) == []
    # An order refundflow knows with none open: just that; one it has no refund of (a typo,
    # a trial): a note says so, still exit 0 and no findings for a script.
    code, out, err = await run_cli(stack.env(), "anomalies", "--open", "--order", order["order_id"])
    assert (code, out.strip(), err) == (0, "no open findings", ""), err
    code, out, err = await run_cli(stack.env(), "anomalies", "--order", "ord_nope")
    assert (code, out.strip()) == (0, "no findings")
    assert err.strip() == "note: refundflow has no refund of order ord_nope: is the id right?"
    code, out, err = await run_cli(stack.env(), "anomalies", "--refund", "rf_" + "0" * 24)
    assert (code, out.strip()) == (0, "no findings")
    assert err.strip() == f"note: refundflow has no refund rf_{'0' * 24}: is the id right?"


async def test_a_payment_that_cannot_be_the_refunds_is_escalated_with_why(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, stack: DevStack
) -> None:
    stuck, order = await awaiting_operator(refunds, sandbox, faults)
    # Closed by hand in Temporal while it waited: its projection still says refunding.
    handle = refunds.temporal.get_workflow_handle(stuck.refund_id)
    await handle.terminate(reason="closed by hand while waiting for an operator")
    # Paid at the provider, by hand, 1.00 less than approved: not this refund's payment as
    # approved, so a person must look (the paid case completes: test_temporal_cancel.py).
    await sandbox.provider_refund(order, stuck.refund_id, stuck.amount - 100)
    # --check: the exit status says a person must look (cron reads only that).
    report = await reconcile_cli(stack, "--check", exit_status=3)
    assert report["escalated"] >= 1
    # One finding: the payment is the dead refund's closing's to record (a second finding
    # paged a person within the closing's grace, a trial).
    assert findings_for(report, stuck.refund_id) == {("workflow_closed_abnormally", "escalated")}
    closed = details_of(report, stuck.refund_id, "workflow_closed_abnormally")
    assert closed["not_healed"].startswith(
        "the provider paid 39.00 USD, not the 40.00 USD approved"
    ), closed
    assert closed["state"] == "refunding" and "heal_error" not in closed
    assert (await refunds.status(stuck.refund_id)).state.value == "refunding"


async def test_a_provider_refund_for_a_cancelled_refund_is_escalated(
    refunds: RefundClient, sandbox: Sandbox, stack: DevStack
) -> None:
    order = await sandbox.order(amount=30000)
    status = await refunds.request(make_request(order))  # above the auto-approve limit
    await refunds.reject(status.refund_id, "bob", "no damage visible")
    cancelled = await wait_for_state(refunds, status.refund_id, "cancelled")
    # Money went out at the provider for a refund refundflow cancelled.
    await sandbox.provider_refund(order, status.refund_id, 30000)
    report = await reconcile_cli(stack)
    assert findings_for(report, status.refund_id) == {
        ("provider_refund_on_cancelled_refund", "escalated")
    }
    details = details_of(report, status.refund_id, "provider_refund_on_cancelled_refund")
    assert details == {"provider_refunds": 1, "provider_paid": 30000}
    # Never healed: a cancelled refund stays cancelled, the money is for a person to recover.
    after = await refunds.status(status.refund_id)
    assert after.state.value == "cancelled" and len(after.timeline) == len(cancelled.timeline)


async def test_a_refund_paid_elsewhere_and_by_the_provider_is_escalated(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, stack: DevStack
) -> None:
    """A review: a refund an operator recorded as paid outside the provider, then paid by
    the provider too (late, or in its dashboard), matched no finding: paid twice, unseen."""
    stuck, order = await awaiting_operator(refunds, sandbox, faults)
    done = await refunds.operator_paid_elsewhere(stuck.refund_id, "omar", "SEPA TX-4411")
    assert done.state.value == "completed"
    await sandbox.provider_refund(order, stuck.refund_id, stuck.amount)
    report = await reconcile_cli(stack)
    assert findings_for(report, stuck.refund_id) == {
        ("paid_elsewhere_and_by_provider", "escalated")
    }
    details = details_of(report, stuck.refund_id, "paid_elsewhere_and_by_provider")
    assert details == {"refund_amount": 4000, "provider_paid": 4000, "currency": "USD"}
    # The report's duplicate alarm counts it and names its order.
    report_now = await build_report((await refunds.store()).pool)
    assert order["order_id"] in report_now.duplicate_orders


async def test_drift_that_cannot_be_healed_is_escalated_and_kept(
    refunds: RefundClient, sandbox: Sandbox, db: asyncpg.Pool, stack: DevStack
) -> None:
    paid_twice = make_request(await sandbox.order(amount=8000), amount=3000)
    never_paid = make_request(await sandbox.order(amount=3000))
    ids = []
    for request in (paid_twice, never_paid):
        status = await refunds.request(request)
        await wait_for_state(refunds, status.refund_id, "completed")
        ids.append(status.refund_id)
    twice_id, never_id = ids
    # Drift in the provider's books: a second refund for one refund, and a refund that the
    # provider has no record of although refundflow completed it (one the provider reports
    # as failed is a reversal, reopened: tests/integration/test_reversals.py).
    await db.execute(
        "INSERT INTO sandbox.refunds (provider_refund_id, idempotency_key, request_hash,"
        " payment_reference, order_id, amount, currency, status, metadata)"
        " SELECT 're_drift' || substr(md5(random()::text), 1, 8), 'manual', 'x',"
        " payment_reference, order_id, 1000, currency, 'succeeded', metadata"
        " FROM sandbox.refunds WHERE metadata->>'refund_id' = $1",
        twice_id,
    )
    await db.execute(
        "DELETE FROM sandbox.refunds WHERE metadata->>'refund_id' = $1",
        never_id,
    )
    report = await reconcile_cli(stack)
    assert findings_for(report, twice_id) == {
        ("duplicate_provider_refunds", "escalated"),
        ("amount_mismatch", "escalated"),
    }
    assert findings_for(report, never_id) == {("completed_without_provider_refund", "escalated")}

    code, out, err = await run_cli(stack.env(), "anomalies", "--kind", "amount_mismatch", "--json")
    assert code == 0, err
    mismatch = [f for f in json.loads(out) if f["refund_id"] == twice_id]
    assert mismatch and mismatch[0]["details"] == {
        "refund_amount": 3000,
        "provider_amount": 4000,
        "currency": "USD",
    }


async def test_restock_drift_is_found(
    returns_refunds: RefundClient, sandbox: Sandbox, db: asyncpg.Pool, stack: DevStack
) -> None:
    lines = [{"sku": "LAMP-3", "quantity": 1, "unit_price": 2000, "category": "home"}]
    statuses = []
    for _ in range(2):
        order = await sandbox.order(lines=lines)
        status = await returns_refunds.request(
            make_request(order, amount=None, lines=[{"sku": "LAMP-3", "quantity": 1}])
        )
        await eventually(
            partial(returns_refunds.status, status.refund_id),
            lambda s: s.awaiting.value == "customer",
        )
        await returns_refunds.item_received(status.refund_id)
        await wait_for_state(returns_refunds, status.refund_id, "completed")
        statuses.append(status.refund_id)
    lost, doubled = statuses
    # An amount-only refund names no lines: received and paid, it restocks none (a trial
    # found every such refund escalated as restock_missing).
    order = await sandbox.order(lines=lines)
    by_amount = (await returns_refunds.request(make_request(order, amount=1500))).refund_id
    await eventually(
        partial(returns_refunds.status, by_amount), lambda s: s.awaiting.value == "customer"
    )
    await returns_refunds.item_received(by_amount)
    await wait_for_state(returns_refunds, by_amount, "completed")
    await db.execute("DELETE FROM sandbox.stock_movements WHERE reference = $1", lost)
    await db.execute(
        "INSERT INTO sandbox.stock_movements (movement_id, idempotency_key, request_hash, sku,"
        " quantity, reference) VALUES ('mv_drift', 'manual-key', 'x', 'LAMP-3', 1, $1)",
        doubled,
    )
    report = await reconcile_cli(stack)
    assert findings_for(report, lost) == {("restock_missing", "escalated")}
    assert findings_for(report, doubled) == {("restock_duplicated", "escalated")}
    assert findings_for(report, by_amount) == set()


async def test_a_payment_its_workflow_was_told_of_long_ago_is_escalated_not_healed_again(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, stack: DevStack,
    db: asyncpg.Pool,
) -> None:  # fmt: skip
    """A trial: a run reset to before the payment ignored the word, and every run printed
    'healed' again while the refund stayed unpaid on its record. Told before (long enough
    ago) and still not recorded: escalated, saying so, and the workflow is not told again."""
    stuck, order = await awaiting_operator(refunds, sandbox, faults)
    handle = refunds.temporal.get_workflow_handle(stuck.refund_id)
    await sandbox.provider_refund(order, stuck.refund_id, stuck.amount)
    await db.execute(
        "INSERT INTO refundflow.findings (run_id, kind, refund_id, order_id, action, created_at)"
        " VALUES ('outbox-dispatcher', 'provider_refunded_not_completed', $1, $2, 'healed',"
        " now() - interval '10 minutes')",
        stuck.refund_id,
        order["order_id"],
    )
    report = await reconcile_cli(stack)
    assert findings_for(report, stuck.refund_id) == {
        ("provider_refunded_not_completed", "escalated")
    }
    said = details_of(report, stuck.refund_id, "provider_refunded_not_completed")["not_healed"]
    assert said.startswith("its workflow was told of the payment at "), said
    assert await signals(handle) == 0
    assert (await refunds.status(stuck.refund_id)).awaiting.value == "operator"
