"""Operators press "Request Cancellation" in the Web UI (or run `temporal workflow cancel`):
the refund is withdrawn everywhere, its amount freed and the customer told. They press
"Terminate": reconciliation closes the refund and frees its amount; its key answers clearly."""

from __future__ import annotations

import asyncio
import html
import json
import re
import uuid
from typing import Any

import aiohttp
import asyncpg
import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest

from activities.closing import close_ended_refund
from activities.closing_advice import EndedRun
from client import render
from client.refund_client import RefundClient
from tests.conftest import Sandbox
from tests.integration.api_support import Api
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_cli import cli
from tests.integration.test_console_pages import sign_in
from tests.integration.test_refund_flow import make_request
from worker.devstack import DevStack
from workflows.models import ReconcileInput

pytestmark = pytest.mark.stack


async def test_a_cancel_from_temporal_withdraws_frees_the_amount_and_tells_the_customer(
    refunds: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(amount=20000)
    waiting = await refunds.request(make_request(order))  # above the auto-approve limit
    assert waiting.state.value == "pending_review"

    await refunds.temporal.get_workflow_handle(waiting.refund_id).cancel()

    cancelled = await wait_for_state(refunds, waiting.refund_id, "cancelled")
    assert cancelled.cancel_reason is not None and cancelled.cancel_reason.value == "withdrawn"
    # The customer did not withdraw it, and is not told they did.
    assert cancelled.eta is None and "was cancelled by our team" in cancelled.message
    # The workflow answers "cancelled" at once; its audit write (with the projection and the
    # release of the hold, in one transaction) follows a moment later.
    held = await eventually(
        lambda: db.fetchval(
            "SELECT state FROM refundflow.reservations WHERE refund_id = $1", waiting.refund_id
        ),
        lambda state: state == "released",
    )
    assert held == "released"
    listed = await refunds.list(order_id=order["order_id"])
    assert [(row_state(r), row_id(r)) for r in listed] == [("cancelled", waiting.refund_id)]
    told = await eventually(
        lambda: sandbox.inbox(waiting.refund_id), lambda events: len(events) >= 2
    )
    assert told[-1]["type"] == "refund.cancelled"
    assert told[-1]["body"] == cancelled.message  # the notification says the same

    # The whole amount is refundable again: a new request for it is accepted.
    again = await refunds.request(make_request(order))
    assert again.refund_id != waiting.refund_id and again.state.value == "pending_review"


async def test_a_cancel_from_temporal_while_the_provider_pays_is_refused_and_staff_see_why(
    refunds: RefundClient, sandbox: Sandbox, faults: Any
) -> None:
    """Money may have moved: the cancel is refused on the record and escalated, the refund
    pays once. Staff's status said "nothing for staff to do" and no more (a review): it now
    says the cancel was refused, why, and how to ask the provider to stop a pending refund."""
    await faults.set_faults({"payment.pending_rate": "1", "payment.settle_after_ms": "4000"})
    order = await sandbox.order(amount=3100)
    made = await refunds.request(make_request(order))
    await wait_for_state(refunds, made.refund_id, "refunding")

    await refunds.temporal.get_workflow_handle(made.refund_id).cancel()
    escalated = await eventually(
        lambda: refunds.status(made.refund_id),
        lambda s: any(e.event == "escalated" and e.source == "temporal" for e in s.timeline),
    )
    assert escalated.state.value == "refunding" and escalated.escalation_level >= 1
    assert "past the refund SLA" not in escalated.action_by  # within it: not late (a review)
    shown = render.status(escalated)
    assert "note       a cancellation requested in Temporal at" in shown, shown
    assert "so money may have moved; it is paid at most once" in shown
    assert f"refundflow --as OPERATOR operator cancel {made.refund_id} --reason TEXT" in shown
    assert "a provider cancels only a refund that waits for the customer's action" in shown

    paid = await wait_for_state(refunds, made.refund_id, "completed")
    assert [r["amount"] for r in await sandbox.refunds(order["order_id"])] == [paid.amount]
    # A staff matter: the customer is not told the provider is taking longer (a trial).
    told = await eventually(lambda: sandbox.inbox(made.refund_id), lambda events: len(events) >= 4)
    assert "refund.escalated" not in [event["type"] for event in told], told
    assert "note       a cancellation" not in render.status(paid)  # it is paid: no note


async def test_a_cancel_from_temporal_while_an_operator_decides_pays_nothing(
    refunds: RefundClient, sandbox: Sandbox, faults: Any, api: Api
) -> None:
    """A review: the provider refused, the refund waited for an operator, a cancel in the Web
    UI was refused "with the same payment" going on: a new attempt under the same key, which
    the provider (having kept nothing of the refusal) paid, nobody deciding. Now the refund
    waits for the operator again, staff told how to cancel it."""
    await faults.set_faults({"payment.refuse": "expired_card"})
    order = await sandbox.order(amount=3100)
    made = await refunds.request(make_request(order))
    await eventually(
        lambda: refunds.status(made.refund_id), lambda s: s.awaiting.value == "operator"
    )
    await faults.clear_faults()  # a new attempt would now be paid

    await refunds.temporal.get_workflow_handle(made.refund_id).cancel()
    refused = await eventually(
        lambda: refunds.status(made.refund_id),
        lambda s: any(e.event == "escalated" and e.source == "temporal" for e in s.timeline),
    )
    await asyncio.sleep(1)  # what an attempt would take, on the fast path
    assert await sandbox.refunds(order["order_id"]) == []
    now = await refunds.status(made.refund_id)
    assert (now.state.value, now.awaiting.value) == ("refunding", "operator")
    shown = render.status(refused)
    assert "refused: the refund waits for an operator's decision on its payment" in shown
    assert f"operator cancel {made.refund_id} --reason TEXT` cancels it" in shown, shown
    # The console says it too, in its own words (a trial found only the audit's entry).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        assert (await sign_in(browser, api, "omar", "/console"))[0] == 303
        async with browser.get(f"{api.base}/console/refunds/{made.refund_id}") as r:
            page = html.unescape(await r.text())
    said = re.search(r'<p class="warning" id="temporal-cancel">([^<]*)</p>', page)
    assert said is not None, page
    assert said.group(1).startswith("A cancellation requested in Temporal at"), said.group(1)
    assert "an operator's “Cancel (operator)” on this page cancels it" in said.group(1)

    # The operator decides: retry, paid once.
    await refunds.operator_retry(made.refund_id, "ops-1")
    paid = await wait_for_state(refunds, made.refund_id, "completed")
    assert [r["amount"] for r in await sandbox.refunds(order["order_id"])] == [paid.amount]


def row_state(row: object) -> str:
    return str(row["state"] if isinstance(row, dict) else getattr(row, "state"))  # noqa: B009


def row_id(row: object) -> str:
    return str(row["refund_id"] if isinstance(row, dict) else getattr(row, "refund_id"))  # noqa: B009


async def test_a_terminated_refund_is_closed_by_reconciliation_and_its_key_answers_clearly(
    refunds: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(amount=20000)
    request = make_request(order)
    waiting = await refunds.request(request)  # above the auto-approve limit: waits
    handle = refunds.temporal.get_workflow_handle(waiting.refund_id)
    await handle.terminate("stuck: pressed Terminate in the Web UI")
    ended = await refunds.abnormal_end(waiting.refund_id)
    assert ended is not None and ended.startswith("terminated ")

    report = await refunds.reconcile(ReconcileInput(grace_seconds=0))
    assert report.findings.get("workflow_closed_abnormally", 0) >= 1
    finding = await db.fetchrow(
        "SELECT action, details FROM refundflow.findings WHERE refund_id = $1"
        " AND kind = 'workflow_closed_abnormally'",
        waiting.refund_id,
    )
    assert finding is not None and finding["action"] == "healed"
    assert json.loads(finding["details"])["temporal_status"] == "terminated"
    listed = await refunds.list(order_id=order["order_id"])
    assert [(row_state(r), row_id(r)) for r in listed] == [("cancelled", waiting.refund_id)]
    held = await db.fetchval(
        "SELECT state FROM refundflow.reservations WHERE refund_id = $1", waiting.refund_id
    )
    assert held == "released"
    # Closed as a workflow closes a refund: every channel says so, audited, the customer told.
    status = await refunds.status(waiting.refund_id)
    assert (status.state.value, status.cancel_reason) == ("cancelled", "closed_in_temporal")
    assert status.awaiting.value == "nothing" and status.eta is None
    # Asked live too (a trial: the ended workflow's query still said pending_review).
    assert await refunds.status(waiting.refund_id, live=True) == status
    assert "closed by our team before it was paid; no money moved" in status.message
    assert (await refunds.track(waiting.refund_id))["status"] == "closed"
    trail = await refunds.audit(waiting.refund_id)
    assert [(e.event, e.actor) for e in trail][-1] == ("closed_in_temporal", "reconciliation")
    # When Temporal ended it, in UTC as the audit says times.
    assert re.search(r"terminated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC in Temporal", trail[-1].reason)
    told = await refunds.events(waiting.refund_id)
    assert told[-1].type == "refund.cancelled", [e.type for e in told]
    assert told[-1].payload["facts"]["cancel_reason"] == "closed_in_temporal", told[-1].payload

    # The same key, once reconciliation closed it: its closed status, as for any closed
    # refund (not "ended in Temporal; see reconcile", which a trial found after reconcile).
    same = await refunds.request(request)
    assert (same.refund_id, same.state.value) == (waiting.refund_id, "cancelled")
    assert same.cancel_reason == "closed_in_temporal"
    again = await refunds.request(make_request(order))
    assert again.refund_id != waiting.refund_id and again.state.value == "pending_review"


async def test_a_refund_terminated_while_the_provider_pays_is_completed_by_reconciliation(
    refunds: RefundClient, sandbox: Sandbox, db: asyncpg.Pool, faults: Any, stack: DevStack
) -> None:
    """Terminated while its provider refund was pending; the provider paid afterwards (a
    trial found it stuck "on its way", every action refused). Reconciliation waits while the
    payment is pending, then records it as the workflow would: completed, audited, the
    amount consumed, the customer told, and paid once."""
    await faults.set_faults(
        {
            "payment.pending_rate": "1",
            "payment.settle_after_ms": "3000",
            "payment.webhooks": "false",
        }
    )
    order = await sandbox.order(amount=3000)
    made = await refunds.request(make_request(order))
    await wait_for_state(refunds, made.refund_id, "refunding")
    await refunds.temporal.get_workflow_handle(made.refund_id).terminate("stuck")

    await refunds.reconcile(ReconcileInput(grace_seconds=0))  # still pending: escalated
    details = json.loads(await db.fetchval(
        "SELECT details FROM refundflow.findings WHERE refund_id = $1"
        " AND kind = 'workflow_closed_abnormally' ORDER BY finding_id DESC LIMIT 1",
        made.refund_id,
    ))  # fmt: skip
    assert details["not_healed"].startswith("its provider refund is pending"), details
    assert (await refunds.status(made.refund_id)).state.value == "refunding"
    # Staff's status says reconciliation has it (a trial: escalation level 0, nothing said).
    shown = await asyncio.to_thread(cli, stack, "status", made.refund_id)
    assert (
        f"note: reconciliation escalated workflow_closed_abnormally for {made.refund_id}"
        in shown.stderr
    ), shown.stderr
    assert "its provider refund is pending" in shown.stderr
    paid = await eventually(
        lambda: sandbox.refunds(order["order_id"]),
        lambda found: [r["status"] for r in found] == ["succeeded"],
        timeout=30,
    )
    report = await refunds.reconcile(ReconcileInput(grace_seconds=0))
    assert report.healed >= 1
    done = await refunds.status(made.refund_id)
    assert (done.state.value, done.escalation_level, done.awaiting.value) == (
        "completed", 0, "nothing",
    )  # fmt: skip
    assert done.provider_refund_id == paid[0]["id"]
    last = (await refunds.audit(made.refund_id))[-1]
    assert (last.event, last.actor, last.to_state) == (
        "provider_confirmed",
        "reconciliation",
        "completed",
    )
    assert paid[0]["id"] in last.reason and "terminated" in last.reason
    held = await db.fetchval(
        "SELECT state FROM refundflow.reservations WHERE refund_id = $1", made.refund_id
    )
    assert held == "consumed"
    told = await refunds.events(made.refund_id)
    assert told[-1].type == "refund.completed", [e.type for e in told]
    listed = await refunds.list(order_id=order["order_id"])
    assert [(row_state(r), row_id(r)) for r in listed] == [("completed", made.refund_id)]
    # Paid once; a later run finds nothing more to do.
    assert len(await sandbox.refunds(order["order_id"])) == 1
    again = await refunds.reconcile(ReconcileInput(grace_seconds=0))
    # This refund's findings: other files' refunds in the same stack may have their own.
    found = await (await refunds.store()).findings(run_id=again.run_id, refund_id=made.refund_id)
    assert found == [], found


async def test_a_refund_terminated_while_the_provider_fails_it_is_cancelled_saying_so(
    refunds: RefundClient, sandbox: Sandbox, faults: Any
) -> None:
    """No money moved, but the provider holds a failed refund: the audit names it, not "the
    provider holds no refund for it" (a trial)."""
    await faults.set_faults({
        "payment.pending_rate": "1", "payment.settle_after_ms": "1000",
        "payment.settle_failure_rate": "1", "payment.webhooks": "false",
    })  # fmt: skip
    order = await sandbox.order(amount=3000)
    made = await refunds.request(make_request(order))
    await wait_for_state(refunds, made.refund_id, "refunding")
    await refunds.temporal.get_workflow_handle(made.refund_id).terminate("stuck")
    [failed] = await eventually(
        lambda: sandbox.refunds(order["order_id"]),
        lambda found: [r["status"] for r in found] == ["failed"],
    )
    await refunds.reconcile(ReconcileInput(grace_seconds=0))
    closed = await refunds.status(made.refund_id)
    assert (closed.state.value, closed.cancel_reason) == ("cancelled", "closed_in_temporal")
    last = (await refunds.audit(made.refund_id))[-1]
    assert f"did not pay ({failed['id']} failed): no money moved" in last.reason, last.reason


async def test_a_refund_reset_after_it_was_terminated_is_not_closed_under_its_new_run(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    """Reconciliation saw the run end; an operator then pressed Reset (a new run from its
    first workflow task): the heal leaves the refund to its live run."""
    order = await sandbox.order(amount=20000)
    waiting = await refunds.request(make_request(order))  # above the auto-approve limit
    handle = refunds.temporal.get_workflow_handle(waiting.refund_id)
    ended_run = (await handle.describe()).run_id
    first_task = next(
        e.event_id
        for e in (await handle.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    )
    await handle.terminate("stuck")
    await refunds.temporal.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=refunds.temporal.namespace,
            workflow_execution=WorkflowExecution(workflow_id=waiting.refund_id),
            reason="Reset from the Web UI",
            workflow_task_finish_event_id=first_task,
            request_id=str(uuid.uuid4()),
        )
    )
    run = EndedRun(waiting.refund_id, ended_run, "terminated 2026-11-27 11:34:50 UTC")
    assert await close_ended_refund(refunds.temporal, await refunds.store(), run) is False
    status = await refunds.status(waiting.refund_id)
    assert (status.state.value, status.cancel_reason) == ("pending_review", None)
    assert "closed_in_temporal" not in [e.event for e in await refunds.audit(waiting.refund_id)]


async def test_a_customer_asking_again_for_a_terminated_refund_is_told_what_happened(
    api: Api, refunds: RefundClient, sandbox: Sandbox, stack: DevStack
) -> None:
    """Not "the key was used for another request" (a trial): the request is the same; its
    refund was stopped. Told without refund ids or Temporal's words."""
    who = f"cust_{uuid.uuid4().hex[:8]}"
    order = await sandbox.order(amount=20000, customer_id=who)
    body = {"order_id": order["order_id"], "amount": 20000, "reason_code": "damaged"}
    key = f"k-{uuid.uuid4().hex[:12]}"
    made = await api.request_refund(who, body, key=key)
    assert made.status == 201, made.body
    refund_id = made.body["refund_id"]
    before = (await api.call("GET", f"/v1/refunds/{refund_id}/track", as_=who)).body
    assert before["eta"] is not None and "We aim to decide by" in before["message"]
    await refunds.temporal.get_workflow_handle(refund_id).terminate("stuck")
    # Until reconciliation closes it: with our team, and no date that cannot come; staff's
    # status says the same, and that nothing moves it.
    tracked = (await api.call("GET", f"/v1/refunds/{refund_id}/track", as_=who)).body
    assert tracked["eta"] is None and tracked["message"] == (
        "Your refund of 200.00 USD is with our team, who are checking it; we will tell you what"
        " happens next."
    ), tracked  # not "It has taken longer than it should" (a trial): it was stopped, not late
    assert tracked["status"] == "with our team", tracked
    staff = await asyncio.to_thread(cli, stack, "status", refund_id)
    assert "We aim to decide" not in staff.stdout and "eta        -" in staff.stdout
    assert "Nothing moves it: Temporal ended its workflow" in staff.stdout, staff.stdout
    # Nobody it waited for can act any more: "(ended)", as `list` says (a trial read
    # "awaiting reviewer" above "who acts reconciliation").
    assert "  awaiting   (ended)   escalation level" in staff.stdout, staff.stdout
    read = (await api.call("GET", f"/v1/refunds/{refund_id}", as_="li")).body
    assert (read["state"], read["eta"], read["eta_kind"]) == ("pending_review", None, None), read
    assert "stopped" not in read["facts"], read  # the release before's CLIs refuse new facts
    assert read["message"] == tracked["message"], read
    assert read["next_step"].startswith("Nothing moves it: Temporal ended its workflow"), read
    # Staff read the level the refund recorded, as its list row does (a trial saw 1 and 0).
    shown = json.loads((await asyncio.to_thread(cli, stack, "--json", "status", refund_id)).stdout)
    assert shown["escalation_level"] == 0, shown
    # Lists mark it for staff (the projection keeps it open until reconciliation).
    listed = await asyncio.to_thread(cli, stack, "list", "--order", order["order_id"])
    assert f"Temporal ended the workflow of {refund_id} (terminated" in listed.stdout
    mine = await api.call("GET", "/v1/refunds", as_=who)
    assert "ended_in_temporal" not in mine.body["items"][0], mine.body  # /track words it
    assert mine.body["items"][0]["status"] == tracked["status"], (mine.body, tracked)
    # Acting on it says why nothing moves it, not that a refund still open "is closed".
    approve = await asyncio.to_thread(cli, stack, "--as", "li", "approve", refund_id)
    assert "cannot move: Temporal ended its workflow (terminated" in approve.stderr
    withdraw = await api.call(
        "POST", f"/v1/refunds/{refund_id}/cancel", as_=who, json={"reason": "changed my mind"}
    )
    assert withdraw.status == 409, withdraw.body
    assert withdraw.body["detail"].startswith("refused: this refund request was stopped by our")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        assert (await sign_in(browser, api, "li", f"/console/refunds/{refund_id}"))[0] == 303
        async with browser.get(f"{api.base}/console/refunds/{refund_id}") as r:
            page = html.unescape(await r.text())
        async with browser.get(f"{api.base}/console?order={order['order_id']}") as r:
            queue = html.unescape(await r.text())
    assert "Nothing moves it" in page and "We aim to decide" not in page
    assert "No action can be taken" in page and 'action="/console/refunds/' not in page
    # The queue lists it (the projection keeps it open until reconciliation) as ended.
    row = queue[queue.index(f">{refund_id}</a>") :].split("</tr>")[0]
    assert "nothing moves it" in row and "Temporal ended its workflow (terminated" in row, row
    assert "<time" not in row  # no deadline that cannot come
    again = await api.request_refund(who, body, key=key)
    assert again.status == 409, again.body
    assert again.body["detail"].startswith("your earlier request for this refund was stopped")
    # Not "our team closes it shortly": one with the provider may complete as paid (a trial).
    assert "may still be paid" in again.body["detail"] and "shortly" not in again.body["detail"]
    assert "rf_" not in again.body["detail"] and "Temporal" not in again.body["detail"]
