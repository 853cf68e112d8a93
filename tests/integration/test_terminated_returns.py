"""A returns-v1 refund whose workflow Temporal ended after its approval asked the customer
to send the item back: reconciliation leaves it to a person, who runs it on (a Reset to its
last task), not "closed by our team before it was paid" to a customer who may have sent the
item (a trial's finding, left for a decision until 2026-11-29)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from client.refund_client import RefundClient
from tests.conftest import Sandbox
from tests.integration.api_support import Api
from tests.integration.helpers import eventually, run_cli, run_the_reset_it_gives, wait_for_state
from tests.integration.test_console_pages import html_page, sign_in
from tests.integration.test_refund_flow import make_request
from tests.integration.test_reset_after_completion import reset_to_last_task
from worker.devstack import DevStack
from workflows.models import ReconcileInput

pytestmark = pytest.mark.stack

LAMP = [{"sku": "LAMP-9", "quantity": 1, "unit_price": 2000, "category": "home"}]


async def _closing_finding(refunds: RefundClient, refund_id: str, run_id: str) -> Any:
    [closing] = [
        f for f in await (await refunds.store()).findings(refund_id=refund_id) if f.run_id == run_id
    ]
    return closing


async def _terminated_then_reconciled(refunds: RefundClient, refund_id: str) -> tuple[str, Any]:
    """Terminate the refund's run, reconcile: its run id and reconciliation's finding."""
    handle = refunds.temporal.get_workflow_handle(refund_id)
    ended_run = (await handle.describe()).run_id
    assert ended_run is not None
    await handle.terminate("stuck")
    report = await refunds.reconcile(ReconcileInput(grace_seconds=0))
    return ended_run, await _closing_finding(refunds, refund_id, report.run_id)


async def test_an_approved_refund_terminated_while_the_item_is_on_its_way_waits_for_a_person(
    returns_refunds: RefundClient,
    sandbox: Sandbox,
    stack: DevStack,
    api: Api,
    browserless: aiohttp.ClientSession,
) -> None:
    refunds = returns_refunds
    order = await sandbox.order(lines=LAMP)
    status = await refunds.request(
        make_request(order, amount=None, lines=[{"sku": "LAMP-9", "quantity": 1}])
    )
    await eventually(
        lambda: refunds.status(status.refund_id),
        lambda s: s.state.value == "approved" and s.awaiting.value == "customer",
    )
    ended_run, closing = await _terminated_then_reconciled(refunds, status.refund_id)

    assert (closing.kind, closing.action) == ("workflow_closed_abnormally", "escalated")
    said = closing.details["not_healed"]
    assert said.startswith(
        "approved, and the customer was asked to send the item back (it may be on its way)"
    ), said
    assert f"temporal workflow reset -w {status.refund_id} -r {ended_run}" in said
    assert f"refundflow received {status.refund_id}" in said
    # Nothing closed: still approved, the unit still held, no closing in the audit.
    assert (await refunds.status(status.refund_id)).state.value == "approved"
    ledger = await refunds.order_ledger(order["order_id"])
    assert ledger is not None and [line.held_quantity for line in ledger.lines] == [1]
    assert "closed_in_temporal" not in [e.event for e in await refunds.audit(status.refund_id)]
    # Still ended in Temporal, so the API tells the customer it is with our team, no date.
    assert (await refunds.abnormal_end(status.refund_id) or "").startswith("terminated ")
    # Where staff look for what needs a person, though its escalation level is 0 (a trial
    # found it in neither): `list --escalated` and the console's default queue.
    listed = await run_cli(stack.env(), "list", "--escalated", "--order", order["order_id"])
    assert status.refund_id in listed[1], listed
    # A monitoring `reconcile --no-heal` since: the person's instructions still stand (a
    # trial: its "reported" finding had no heal words and status lost the reset).
    await refunds.reconcile(ReconcileInput(heal=False, grace_seconds=0))
    _, shown, notes = await run_cli(stack.env(), "status", status.refund_id)
    assert f"temporal workflow reset -w {status.refund_id} -r {ended_run}" in notes, notes
    assert "a person (reconciliation escalated it)" in shown, shown  # not "closes it"
    assert "reconciliation closes it" not in (shown + notes).lower(), (shown, notes)
    assert "reconciliation left it to a person" in notes, notes
    queue = f"/console?order={order['order_id']}"  # the default view (waiting for a person)
    assert (await sign_in(browserless, api, "li", queue))[0] == 303
    assert status.refund_id in (await html_page(browserless, api, queue))[1]
    # The warehouse's receipt meanwhile is refused, saying what its finding says (a trial:
    # told reconciliation "closes it", which had left it to a person).
    code, _, refused = await run_cli(stack.env(), "received", status.refund_id)
    assert code != 0 and "reconciliation left it to a person" in refused, refused
    assert "reconciliation closes it" not in refused, refused

    # The reset as the finding gives it, run as written (a trial's went to localhost:7233).
    await run_the_reset_it_gives(said)
    await waiting_again(refunds, status.refund_id, "customer")
    await refunds.item_received(status.refund_id, "warehouse-7")
    await wait_for_state(refunds, status.refund_id, "completed")
    assert [(r["amount"], r["status"]) for r in await sandbox.refunds(order["order_id"])] == [
        (2000, "succeeded")
    ]


async def test_a_received_item_whose_payment_failed_is_not_closed_when_terminated(
    returns_refunds: RefundClient, sandbox: Sandbox, faults: Any
) -> None:
    """The warehouse has the item, the provider refused the payment (no money moved), the run
    is terminated while it waits for an operator: the customer's item is with us, so it is
    not cancelled; run on, an operator's retry pays it once."""
    refunds = returns_refunds
    order = await sandbox.order(lines=LAMP)
    status = await refunds.request(
        make_request(order, amount=None, lines=[{"sku": "LAMP-9", "quantity": 1}])
    )
    await refused_once_its_item_came(refunds, faults, status.refund_id)
    await faults.clear_faults()
    ended_run, closing = await _terminated_then_reconciled(refunds, status.refund_id)

    assert closing.action == "escalated", closing
    said = closing.details["not_healed"]
    assert "(the warehouse has received it)" in said and "--type LastWorkflowTask" in said, said
    assert "operator retry" in said
    assert (await refunds.status(status.refund_id)).state.value == "refunding"

    await reset_to_last_task(refunds, status.refund_id, ended_run)
    await waiting_again(refunds, status.refund_id, "operator")
    await refunds.operator_retry(status.refund_id, "op-1")
    await wait_for_state(refunds, status.refund_id, "completed")
    paid = [r for r in await sandbox.refunds(order["order_id"]) if r["status"] == "succeeded"]
    assert [r["amount"] for r in paid] == [2000]


async def refused_once_its_item_came(refunds: RefundClient, faults: Any, refund_id: str) -> None:
    """An approved returns refund, once it waits for its item: received, and its payment
    refused for good (the fault stays set): it waits for an operator."""
    await eventually(lambda: refunds.status(refund_id), lambda s: s.awaiting.value == "customer")
    await faults.set_faults({"payment.refuse": "expired_card"})
    await refunds.item_received(refund_id, "warehouse-7")
    await eventually(lambda: refunds.status(refund_id), lambda s: s.awaiting.value == "operator")


async def waiting_again(refunds: RefundClient, refund_id: str, awaiting: str) -> None:
    """As the finding says: act once the new run (asked live: the record said so all along)
    waits again; in its first moments it may still hold an earlier state."""
    await eventually(
        lambda: refunds.status(refund_id, live=True), lambda s: s.awaiting.value == awaiting
    )
