"""A returned item the warehouse records while its refund waits for review, on the real
stack: kept in the record and paid on approval; closed unpaid instead (rejected, withdrawn),
reconciliation tells a person the warehouse holds an item nobody was paid for (a review:
nobody was told)."""

from __future__ import annotations

import html
import re

import aiohttp
import asyncpg
import pytest

from client.errors import RefundActionRefused
from client.refund_client import RefundClient
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox
from tests.integration.api_support import Api
from tests.integration.helpers import eventually, run_cli, wait_for_state
from tests.integration.test_console_pages import html_page, sign_in
from tests.integration.test_reconciliation import details_of, findings_for, reconcile_cli
from tests.integration.test_refund_flow import make_request
from tests.integration.test_reset_after_completion import reset_to_first_task
from tests.integration.test_terminated_returns import refused_once_its_item_came
from worker.devstack import DevStack
from workflows.models import StatusView

pytestmark = pytest.mark.stack


async def in_review_with_its_item(refunds: RefundClient, sandbox: Sandbox) -> tuple[str, str]:
    order = await sandbox.order(amount=30000)
    asked = await refunds.request(make_request(order, amount=30000))
    assert asked.awaiting.value == "reviewer"
    kept = await refunds.item_received(asked.refund_id, "warehouse-7")
    assert (kept.state.value, kept.awaiting.value) == ("pending_review", "reviewer")
    return order["order_id"], asked.refund_id


async def test_a_kept_receipt_is_on_the_record_and_paid_on_approval(
    returns_refunds: RefundClient, sandbox: Sandbox
) -> None:
    order_id, refund_id = await in_review_with_its_item(returns_refunds, sandbox)
    audit = await returns_refunds.audit(refund_id)
    assert [(e.event, e.actor) for e in audit][-1] == ("item_received", "warehouse-7")
    # The customer sees it arrive (a trial: invisible while the refund waited for review).
    labels = [step["label"] for step in (await returns_refunds.track(refund_id))["timeline"]]
    assert labels == ["requested", "returned item received"], labels
    await returns_refunds.approve(refund_id, "li", role="lead")
    done = await wait_for_state(returns_refunds, refund_id, "completed")
    assert [r["amount"] for r in await sandbox.refunds(order_id)] == [30000]
    told = " ".join(m["body"] for m in await sandbox.inbox(refund_id))
    assert "send the item back" not in told.lower(), told
    assert "start_refund" in [e.event for e in done.timeline]


async def test_a_refund_rejected_while_the_warehouse_holds_its_item_is_found(
    returns_refunds: RefundClient,
    sandbox: Sandbox,
    stack: DevStack,
    db: asyncpg.Pool,
    browserless: aiohttp.ClientSession,
    api: Api,
) -> None:
    order_id, refund_id = await in_review_with_its_item(returns_refunds, sandbox)
    customer = (await returns_refunds.status(refund_id)).requested_by
    await returns_refunds.reject(refund_id, "bob", "not our item")
    await eventually(
        lambda: returns_refunds.status(refund_id), lambda s: s.state.value == "cancelled"
    )
    # The customer is told their item is held (a trial: "rejected after review" only).
    told = await eventually(
        lambda: sandbox.inbox(refund_id), lambda rows: any("rejected" in n["body"] for n in rows)
    )
    assert "We have your returned item: our team will contact you" in told[-1]["body"], told
    # The warehouse sending it again is told what to do with the item (a trial: refused,
    # nothing said).
    with pytest.raises(RefundActionRefused) as refused:
        await returns_refunds.item_received(refund_id, "warehouse-7")
    assert "send it back to the customer, or, if they asked again" in str(refused.value)
    # As a run reset to before the receipt writes the status (a trial): found by the audit.
    await db.execute(
        "UPDATE refundflow.refund_status SET item_received = false WHERE refund_id = $1",
        refund_id,
    )
    report = await reconcile_cli(stack, exit_status=0)
    assert findings_for(report, refund_id) == {("returned_item_not_refunded", "escalated")}
    assert await sandbox.refunds(order_id) == []
    said = details_of(report, refund_id, "returned_item_not_refunded")["not_healed"]
    assert said.startswith("closed without a refund while the warehouse holds its returned"), said
    # In the console's queue too, by default and among the escalated (a trial: only in
    # `list --escalated`): closed, but a person has something to do about it.
    assert (await sign_in(browserless, api, "li", "/console"))[0] == 303
    for queue in ("/console", "/console?escalated=yes", f"/console?customer={customer}"):
        page = (await html_page(browserless, api, queue))[1]
        row = re.search(rf"{refund_id}</a></th>\s*<td>(.*?)</td>", page, re.S)
        # Saying why it is there (a trial: "closed …", nothing more).
        assert row is not None and "reconciliation left it to a person" in row.group(1), queue
    # Once the item went back, someone says so, as the finding tells them to.
    kind = "returned_item_not_refunded"
    done = await run_cli(stack.env(), "acknowledge", kind, "--refund", refund_id, "--by", "omar",
                         "--reason", "item sent back to the customer")  # fmt: skip
    assert done[0] == 0, done
    again = await reconcile_cli(stack)
    [standing] = [f for f in again["details"] if f["refund_id"] == refund_id]
    assert standing["acknowledged_by"] == "omar", standing
    # A kept receipt then paid is no such finding.
    _, paid = await in_review_with_its_item(returns_refunds, sandbox)
    await returns_refunds.approve(paid, "li", role="lead")
    await wait_for_state(returns_refunds, paid, "completed")
    assert findings_for(await reconcile_cli(stack), paid) == set()


async def test_an_operator_cancel_after_the_item_came_back_is_found_too(
    returns_refunds: RefundClient, sandbox: Sandbox, stack: DevStack, faults: SandboxAdmin
) -> None:
    """The same for an item received after the approval whose payment the provider refused
    for good and an operator then cancelled (a review: only the kept receipt was found)."""
    order = await sandbox.order(amount=3000)
    asked = await returns_refunds.request(make_request(order, amount=3000))
    await refused_once_its_item_came(returns_refunds, faults, asked.refund_id)
    await returns_refunds.operator_cancel(asked.refund_id, "omar", "card closed")
    await wait_for_state(returns_refunds, asked.refund_id, "cancelled")
    report = await reconcile_cli(stack)
    assert findings_for(report, asked.refund_id) == {("returned_item_not_refunded", "escalated")}
    said = details_of(report, asked.refund_id, "returned_item_not_refunded")
    assert said["closed_by"] == "operator_cancel", said


async def test_the_console_warns_before_closing_unpaid_what_the_warehouse_holds(
    returns_refunds: RefundClient,
    sandbox: Sandbox,
    browserless: aiohttp.ClientSession,
    api: Api,
) -> None:
    _, refund_id = await in_review_with_its_item(returns_refunds, sandbox)
    page = f"/console/refunds/{refund_id}"
    assert (await sign_in(browserless, api, "li", page))[0] == 303
    _, text = await html_page(browserless, api, page)
    csrf = re.search(r'name="csrf" value="([^"]+)"', text)
    assert csrf is not None
    form = {"csrf": csrf.group(1), "action": "reject", "code": "other", "note": "not ours"}
    async with browserless.post(f"{api.base}{page}/act", data=form) as r:
        confirm = html.unescape(await r.text())
    assert "Confirm: Reject" in confirm, confirm
    assert "The warehouse holds this refund's returned item</strong> (entry 2)" in confirm
    assert (await returns_refunds.status(refund_id)).state.value == "pending_review"


async def test_the_cli_says_who_holds_the_item_of_a_refund_it_closes_unpaid(
    returns_refunds: RefundClient, sandbox: Sandbox, stack: DevStack
) -> None:
    _, refund_id = await in_review_with_its_item(returns_refunds, sandbox)
    code, shown, notes = await run_cli(
        stack.env(), "--as", "li", "reject", refund_id, "--reason", "not our item"
    )
    assert code == 0 and "cancelled" in shown, (code, shown, notes)
    assert "the warehouse holds this refund's returned item (entry 2)" in notes, notes


async def test_a_kept_receipt_survives_a_reset_to_the_first_task(
    returns_refunds: RefundClient, sandbox: Sandbox
) -> None:
    """A trial: reset in Temporal to its first task, the run met its reapplied receipt while
    its first step was decided, refused it, and on approval asked the customer for an item
    the warehouse held, then closed the refund "not returned in time". The receipt now waits
    for the first step and is kept again, as its record holds it."""
    order_id, refund_id = await in_review_with_its_item(returns_refunds, sandbox)
    recorded = await returns_refunds.audit(refund_id)
    await reset_to_first_task(returns_refunds, refund_id)

    async def reset_run_status() -> StatusView:
        return await returns_refunds.status(refund_id, live=True)

    held = await eventually(
        reset_run_status,
        lambda s: (
            s.awaiting.value == "reviewer" and "item_received" in [e.event for e in s.timeline]
        ),
    )
    assert held.escalation_level == 0, held  # no clash with the record: the same entries
    assert [(e.seq, e.event) for e in await returns_refunds.audit(refund_id)] == [
        (e.seq, e.event) for e in recorded
    ]
    await returns_refunds.approve(refund_id, "li", role="lead")
    done = await wait_for_state(returns_refunds, refund_id, "completed")
    assert [r["amount"] for r in await sandbox.refunds(order_id)] == [30000]
    assert "start_refund" in [e.event for e in done.timeline]
    told = " ".join(m["body"] for m in await sandbox.inbox(refund_id))
    assert "send the item back" not in told.lower(), told


async def test_a_kept_receipt_survives_a_reset_that_reapplies_nothing(
    returns_refunds: RefundClient, sandbox: Sandbox
) -> None:
    """A trial: reset to its first task with the Web UI's "exclude updates" ticked, the run
    knew nothing of the receipt its record holds; approved, it asked the customer for the
    item and would have closed the refund unpaid. Its approval meets the record's receipt
    (an audit conflict, escalated) and the refund is paid at once, as the record says."""
    order_id, refund_id = await in_review_with_its_item(returns_refunds, sandbox)
    await reset_to_first_task(returns_refunds, refund_id, reapply=False)
    await eventually(
        lambda: returns_refunds.status(refund_id, live=True),
        lambda s: s.awaiting.value == "reviewer" and len(s.timeline) == 1,
    )
    await returns_refunds.approve(refund_id, "li", role="lead")
    done = await wait_for_state(returns_refunds, refund_id, "completed")
    assert [r["amount"] for r in await sandbox.refunds(order_id)] == [30000]
    events = [e.event for e in await returns_refunds.audit(refund_id)]
    assert events[:2] == ["requested", "item_received"], events
    assert events[2:5] == ["approve", "escalated", "start_refund"], events
    assert done.escalation_level == 0, done
    # Nobody asked the customer for the item the warehouse holds (a review: the approval's
    # notice still did), nor said the audit conflict was the provider's delay (a review).
    told = " ".join(m["body"] for m in await sandbox.inbox(refund_id))
    assert "send the item back" not in told.lower(), told
    assert "taking longer" not in told, told
