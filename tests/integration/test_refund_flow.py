"""The whole flow on the dev server, through the sandbox over HTTP, with the real worker."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata

from bench.history_cost import history_cost
from client.errors import InvalidRefundRequest, RefundActionRefused, RefundConflict
from client.refund_client import RefundClient, default_refund_key, refund_id_for
from client.settings import Settings
from client.starting import start_options
from tests.conftest import Sandbox, unique_key
from tests.integration.helpers import eventually, wait_for_state
from worker.devstack import DevStack
from workflows.models import RefundRequest, RefundWorkflowInput, StatusView
from workflows.refund.workflow import RefundWorkflow

pytestmark = pytest.mark.stack


def make_request(order: dict[str, Any], **fields: Any) -> RefundRequest:
    """A valid request for the whole order; `fields` override (amount=None for lines)."""
    values: dict[str, Any] = {
        "refund_key": unique_key(),
        "order_id": order["order_id"],
        "amount": order["captured_amount"],
        "reason_code": "damaged",
        "channel": "web",
        # The order's customer, one of its own (the sandbox makes one up per order): under
        # v3 one customer's auto-approvals share a budget, and a refund is its order's
        # customer's (RefundClient refuses anyone else).
        "requested_by": order["customer_id"],
    }
    values.update(fields)
    return RefundRequest(**values)


async def audit_rows(db: asyncpg.Pool, refund_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT seq, event, from_state, to_state, actor, source FROM refundflow.audit"
        " WHERE refund_id = $1 ORDER BY seq",
        refund_id,
    )
    return rows


async def assert_audited_exactly_once(db: asyncpg.Pool, status: StatusView) -> None:
    """Invariant 5: every timeline entry is in the audit trail once, in order."""
    rows = await eventually(
        lambda: audit_rows(db, status.refund_id), lambda r: len(r) >= len(status.timeline)
    )
    assert [r["seq"] for r in rows] == list(range(1, len(status.timeline) + 1))
    assert [(r["event"], r["to_state"]) for r in rows] == [
        (e.event, e.state.value) for e in status.timeline
    ]


async def test_small_refund_is_auto_approved_and_paid_once(
    refunds: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(amount=4000)
    status = await refunds.request(make_request(order))
    done = await wait_for_state(refunds, status.refund_id, "completed")

    assert [e.state.value for e in done.timeline] == [
        "pending_review",
        "approved",
        "refunding",
        "completed",
    ]
    assert done.timeline[1].actor == "policy"
    assert done.policy_version.startswith("standard@v4#")  # the default policy
    ledger = await sandbox.refunds(order["order_id"])
    assert [(r["amount"], r["idempotency_key"]) for r in ledger] == [
        (4000, f"{done.refund_id}:refund")
    ]
    assert done.provider_refund_id == ledger[0]["id"]
    await assert_audited_exactly_once(db, done)
    projection = await db.fetchrow(
        "SELECT state, amount FROM refundflow.refund_status WHERE refund_id = $1", done.refund_id
    )
    assert (projection["state"], projection["amount"]) == ("completed", 4000)
    # What it costs: started on every path of the code by its input, it asks no patch (no
    # marker, no TemporalChangeVersion upsert); one workflow task does the whole refund.
    handle = refunds.temporal.get_workflow_handle(done.refund_id)
    await handle.result()  # the projection may say completed before the task has completed
    history = await handle.fetch_history()
    cost = history_cost(history)
    assert cost.breakdown == {
        "start": 1, "updates": 1, "local activity tasks": 1, "search attribute upserts": 1,
    }  # fmt: skip
    markers = [
        e.marker_recorded_event_attributes.marker_name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    assert set(markers) == {"core_local_activity"}


async def test_large_refund_waits_for_a_reviewer_who_may_approve_less(
    refunds: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(amount=12000)
    status = await refunds.request(make_request(order))
    assert (status.state.value, status.awaiting.value) == ("pending_review", "reviewer")
    assert status.eta is not None and status.next_step.startswith("A reviewer")
    assert await sandbox.refunds(order["order_id"]) == []

    approved = await refunds.approve(status.refund_id, "alice", amount=10000)
    # The answer is the refund as recorded once the approval's task ended: paid, as a rule.
    assert approved.state.value in ("approved", "refunding", "completed")
    assert approved.amount == 10000
    done = await wait_for_state(refunds, status.refund_id, "completed")
    assert done.timeline[1].actor == "alice" and done.timeline[1].source == "support"
    assert [r["amount"] for r in await sandbox.refunds(order["order_id"])] == [10000]
    await assert_audited_exactly_once(db, done)


async def test_rejected_refund_is_cancelled_and_moves_no_money(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(amount=9000)
    status = await refunds.request(make_request(order))
    rejected = await refunds.reject(status.refund_id, "bob", "photos show no damage")
    assert (rejected.state.value, rejected.cancel_reason) == ("cancelled", "rejected")
    await wait_for_state(refunds, status.refund_id, "cancelled")
    with pytest.raises(RefundActionRefused):
        await refunds.approve(status.refund_id, "alice")
    assert await sandbox.refunds(order["order_id"]) == []


async def test_customer_can_withdraw_while_pending(refunds: RefundClient, sandbox: Sandbox) -> None:
    order = await sandbox.order(amount=9000)
    status = await refunds.request(make_request(order))
    withdrawn = await refunds.cancel(status.refund_id, "cust_42", "found a replacement")
    assert (withdrawn.state.value, withdrawn.cancel_reason) == ("cancelled", "withdrawn")


async def test_duplicate_requests_from_every_channel_converge(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    """Invariant 3: the same request, concurrently from all channels, is one refund."""
    order = await sandbox.order(amount=15000)
    key = default_refund_key(order["order_id"], 15000, None, "damaged")
    channels = ["web", "app", "support", "api"] * 3
    results = await asyncio.gather(
        *(refunds.request(make_request(order, refund_key=key, channel=c)) for c in channels)
    )
    assert {r.refund_id for r in results} == {refund_id_for(order["order_id"], key)}
    await refunds.approve(results[0].refund_id, "alice")
    await wait_for_state(refunds, results[0].refund_id, "completed")

    # Asked again after it completed: the same refund answers, nothing new starts. A second
    # start would be a new run of the same workflow id (each run's own history has exactly
    # one start event, so the latest run is what to compare).
    handle = refunds.temporal.get_workflow_handle(results[0].refund_id)
    run_before = (await handle.describe()).run_id
    again = await refunds.request(make_request(order, refund_key=key, channel="app"))
    assert again.refund_id == results[0].refund_id and again.state.value == "completed"
    assert len(await sandbox.refunds(order["order_id"])) == 1
    assert (await handle.describe()).run_id == run_before


async def test_reusing_a_key_for_another_request_is_refused(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(amount=15000)
    first = make_request(order, amount=9000)
    await refunds.request(first)
    with pytest.raises(RefundConflict, match="already used for a different request"):
        await refunds.request(make_request(order, amount=8000, refund_key=first.refund_key))


async def test_invalid_actions_are_refused_and_never_reach_history(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(amount=12000)
    status = await refunds.request(make_request(order))
    refused: list[tuple[Callable[[], Awaitable[StatusView]], str]] = [
        (lambda: refunds.approve(status.refund_id, "alice", amount=12001), "more than the"),
        (lambda: refunds.item_received(status.refund_id), "refunds on approval"),
    ]
    for action, message in refused:
        with pytest.raises(RefundActionRefused, match=message):
            await action()
    await refunds.approve(status.refund_id, "alice")
    with pytest.raises(RefundActionRefused):
        await refunds.approve(status.refund_id, "carol")
    await wait_for_state(refunds, status.refund_id, "completed")
    with pytest.raises(RefundActionRefused):
        await refunds.cancel(status.refund_id, "cust_42", "too late")

    handle = refunds.temporal.get_workflow_handle(status.refund_id)
    accepted = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    # The request's own first_step (update-with-start) and the one valid approval.
    assert accepted == ["first_step", "approve"], "only the one valid approval may be in history"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"order_id": "ord_does_not_exist"}, "unknown order ord_does_not_exist"),
        ({"amount": 10001}, "is more than the 100.00 USD captured"),
        ({"currency": "EUR"}, "does not match order"),
        ({"amount": None, "lines": [{"sku": "NOPE", "quantity": 1}]}, "no line with sku NOPE"),
        # A trial: a service named another customer, who was paid on this order and could
        # track it, charged to their own budget (the API refused it; RefundClient did not).
        ({"requested_by": "cust_7"}, "'s: a refund on it is for that customer, not cust_7"),
    ],
)
async def test_bad_requests_are_refused_and_start_nothing(
    refunds: RefundClient,
    sandbox: Sandbox,
    db: asyncpg.Pool,
    fields: dict[str, Any],
    message: str,
) -> None:
    order = await sandbox.order(amount=10000)
    request = make_request(order, **{"amount": 5000, **fields})
    with pytest.raises(InvalidRefundRequest, match=message):
        await refunds.request(request)
    if "requested_by" in fields:  # nor judged: a budget and a history are the customer's
        with pytest.raises(InvalidRefundRequest, match=message):
            await refunds.eligibility(request)
    refund_id = refund_id_for(request.order_id, request.refund_key)
    assert await audit_rows(db, refund_id) == []
    assert await sandbox.refunds(order["order_id"]) == []
    with pytest.raises(Exception, match="no refund"):
        await refunds.status(refund_id)


async def test_search_attributes_follow_the_state(refunds: RefundClient, sandbox: Sandbox) -> None:
    order = await sandbox.order(amount=3000)
    status = await refunds.request(make_request(order))
    await wait_for_state(refunds, status.refund_id, "completed")

    async def listed() -> list[str]:
        query = f"OrderId = '{order['order_id']}' AND RefundState = 'completed'"
        return [w.id async for w in refunds.temporal.list_workflows(query)]

    assert await eventually(listed, lambda ids: ids == [status.refund_id])


async def test_operators_read_a_summary_and_current_details(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(amount=12000)
    request = make_request(order)
    status = await refunds.request(request)
    handle = refunds.temporal.get_workflow_handle(status.refund_id)
    summary = await (await handle.describe()).static_summary()
    assert summary == f"Refund 120.00 USD on order {order['order_id']} (damaged, via web)"
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert "**pending_review**" in metadata.current_details
    assert "awaiting: reviewer" in metadata.current_details
    assert request.requested_by not in summary + metadata.current_details  # no customer data


async def forged_start(refunds: RefundClient, task_queue: str, model_refund_id: str) -> str:
    """A refund started straight in Temporal, bypassing the edge, with the input of an
    earlier refund but an order snapshot that claims more was captured than was."""
    handle = refunds.temporal.get_workflow_handle(model_refund_id)
    started = (await handle.fetch_history()).events[0]
    [decoded] = await refunds.temporal.data_converter.decode(
        started.workflow_execution_started_event_attributes.input.payloads, [RefundWorkflowInput]
    )
    real: RefundWorkflowInput = decoded
    order = real.order.model_copy(update={"captured_amount": real.order.captured_amount + 100})
    forged = real.model_copy(update={"refund_id": f"rf_{uuid.uuid4().hex[:24]}", "order": order})
    options = start_options(forged, task_queue)
    await refunds.temporal.start_workflow(RefundWorkflow.run, forged, **options)
    refund_id: str = forged.refund_id
    return refund_id


@pytest.mark.parametrize("snapshot_without_customer", [False, True])
async def test_a_start_straight_in_temporal_for_another_customer_is_declined(
    refunds: RefundClient, sandbox: Sandbox, settings: Settings, snapshot_without_customer: bool
) -> None:
    """A review: RefundClient refuses a request for anyone but the order's customer, but a
    start made straight in Temporal, or one given a snapshot without its customer, passed
    by it. The workflow's check of the start with the order system declines both."""
    order = await sandbox.order(amount=2500)
    model = await refunds.request(make_request(order))
    started = await refunds.temporal.get_workflow_handle(model.refund_id).fetch_history()
    [real] = await refunds.temporal.data_converter.decode(
        started.events[0].workflow_execution_started_event_attributes.input.payloads,
        [RefundWorkflowInput],
    )
    assert isinstance(real, RefundWorkflowInput)
    snapshot = real.order.model_copy(update={"customer_id": None})
    forged = real.model_copy(
        update={
            "refund_id": f"rf_{uuid.uuid4().hex[:24]}",
            "request": real.request.model_copy(update={"requested_by": "cust_7"}),
            "order": snapshot if snapshot_without_customer else real.order,
        }
    )
    await refunds.temporal.start_workflow(
        RefundWorkflow.run, forged, **start_options(forged, settings.task_queue)
    )
    declined = await wait_for_state(refunds, forged.refund_id, "cancelled")
    said = declined.timeline[-1].reason
    assert said.startswith("the request could not be verified: "), said
    # A snapshot without its customer claims none (refunds started before snapshots carried
    # it): whose the order is, is checked against requested_by either way.
    assert "requested_by is not the order's customer" in said, said
    assert [r["amount"] for r in await sandbox.refunds(order["order_id"])] == [model.amount]


async def test_every_activity_log_line_carries_the_refund_id(
    refunds: RefundClient, sandbox: Sandbox, stack: DevStack, settings: Settings
) -> None:
    """Lines are chosen by the refund id anywhere in them, not by the context that binds
    it: a line written without the context (its own refund_id field only) fails."""
    order = await sandbox.order(amount=2500)
    status = await refunds.request(make_request(order))
    await wait_for_state(refunds, status.refund_id, "completed")
    # The verifier's refusal is logged by another activity class: it must carry the same.
    refused = await forged_start(refunds, settings.task_queue, status.refund_id)
    declined = await wait_for_state(refunds, refused, "cancelled")
    assert "the request could not be verified" in declined.timeline[-1].reason

    def lines_naming(refund_id: str) -> list[dict[str, Any]]:
        """Every worker line naming the refund, but the dispatcher's (`outbox_…`: it runs
        outside any activity, and names the refund only inside an event id)."""
        lines = (stack.logs / "worker.log").read_text().splitlines()
        named = [json.loads(line) for line in lines if refund_id in line]  # JSON, or it fails
        return [line for line in named if not line["event"].startswith("outbox_")]

    async def read() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return lines_naming(status.refund_id), lines_naming(refused)

    paid, forged = await eventually(
        read,
        lambda both: (
            any(p["event"] == "provider_refund_issued" for p in both[0])
            and any(p["event"] == "request_not_verified" for p in both[1])
        ),
    )
    assert {p["event"] for p in paid} >= {"transitions_recorded", "provider_refund_issued"}
    for refund_id, lines in ((status.refund_id, paid), (refused, forged)):
        for line in lines:
            assert line["refund_id"] == refund_id, line
            assert {"run_id", "activity", "attempt", "timestamp", "level"} <= line.keys(), line
