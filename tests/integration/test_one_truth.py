"""Issue 5 on the real stack: progress you can see, one wording in the customer's language,
approval authority, policies pinned in flight, and notifications through the outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import asyncpg
import pytest

from client.errors import RefundActionRefused
from client.refund_client import RefundClient
from tests.conftest import Sandbox
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_refund_flow import make_request
from workflows import wording
from workflows.states import Awaiting

pytestmark = pytest.mark.stack


async def inbox_bodies(sandbox: Sandbox, refund_id: str, count: int) -> list[dict[str, Any]]:
    return await eventually(lambda: sandbox.inbox(refund_id), lambda rows: len(rows) >= count)


async def test_customer_in_chinese_sees_the_same_words_everywhere(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(amount=30000)
    status = await refunds_v2.request(make_request(order, locale="zh-CN"))
    assert status.awaiting is Awaiting.REVIEWER and status.locale == "zh-CN"
    assert status.message.startswith("您的 300.00 USD 退款正在等待审核。")
    # Review ETA from the SLA: requested + 24 h.
    assert status.eta_kind == "review"
    assert status.eta == status.timeline[0].at + timedelta(hours=24)
    assert status.action_by == "a reviewer with the lead role or above"

    track = await refunds_v2.track(status.refund_id)
    assert track["message"] == status.message
    assert track["status"] == "已申请"
    # The customer sees no staff, systems, reasons or policy internals.
    assert set(track) == {
        "refund_id", "order_id", "locale", "status", "amount", "currency", "message", "eta",
        "eta_earliest", "eta_kind", "timeline",
    }  # fmt: skip
    assert all(set(step) == {"at", "label"} for step in track["timeline"])

    # The notification the customer received says exactly what the tracking page says.
    received = await inbox_bodies(sandbox, status.refund_id, 1)
    assert received[0]["body"] == status.message and received[0]["locale"] == "zh-CN"
    assert wording.core_sentence(status.facts) in status.support_reply  # type: ignore[arg-type]

    done = await refunds_v2.approve(status.refund_id, "li", role="lead")
    done = await wait_for_state(refunds_v2, status.refund_id, "completed")
    received = await inbox_bodies(sandbox, status.refund_id, 4)
    assert [r["seq"] for r in received] == sorted(r["seq"] for r in received)
    assert received[-1]["body"] == done.message
    # Paid out: the message says so, and when the money should arrive (card: 5-10 business days).
    assert done.message.startswith("您的 300.00 USD 退款已退至您的原支付方式。款项预计在 ")
    assert done.eta_kind == "payment" and done.eta is not None
    assert all(r["copies"] >= 1 for r in received)


async def test_payment_eta_follows_the_rail(
    refunds_v2: RefundClient, sandbox: Sandbox, faults: Any
) -> None:
    # Hold the provider's answer as `pending` so the refund waits in `refunding`.
    await faults.set_faults({"payment.pending_rate": "1", "payment.settle_after_ms": "600000"})
    etas = {}
    for rail in ("wallet", "card"):
        order = await sandbox.order(amount=3000, payment_rail=rail)
        status = await refunds_v2.request(make_request(order))
        status = await eventually(
            partial(refunds_v2.status, status.refund_id),
            lambda s: s.state.value == "refunding" and s.eta is not None,
        )
        assert status.eta_kind == "payment" and status.payment_rail == rail
        sent = next(e.at for e in status.timeline if e.event == "start_refund")
        assert status.eta_earliest is not None and status.eta is not None
        etas[rail] = (sent, status.eta_earliest, status.eta)
        assert "between" in status.message
    sent, earliest, latest = etas["wallet"]
    assert (earliest - sent, latest - sent) == (timedelta(minutes=1), timedelta(minutes=30))
    # Card: 5 to 10 business days (Monday to Friday), same time of day.
    sent, earliest, latest = etas["card"]
    assert (weekdays_after(sent, earliest), weekdays_after(sent, latest)) == (5, 10)
    assert earliest.weekday() < 5 and latest.weekday() < 5
    assert earliest.time() == latest.time() == sent.time()


def weekdays_after(start: datetime, end: datetime) -> int:
    """Monday-to-Friday dates after `start`'s date up to and including `end`'s."""
    days = (end.date() - start.date()).days
    return sum((start + timedelta(days=n)).weekday() < 5 for n in range(1, days + 1))


async def test_reviewer_above_their_authority_is_refused_and_nothing_changes(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(amount=25000)
    status = await refunds_v2.request(make_request(order))
    assert status.approval_by == "lead"
    with pytest.raises(RefundActionRefused) as refused:
        await refunds_v2.approve(status.refund_id, "sam", role="support")
    assert str(refused.value) == (
        "refused: sam (support) may approve up to 200.00 USD; approving 250.00 USD needs the"
        " lead role"
    )
    with pytest.raises(RefundActionRefused, match="unknown role 'intern'"):
        await refunds_v2.approve(status.refund_id, "sam", role="intern")
    after = await refunds_v2.status(status.refund_id)
    assert after.state.value == "pending_review" and len(after.timeline) == len(status.timeline)
    # Nor cut it down to support's limit: approving less decides all of it (a trial).
    with pytest.raises(RefundActionRefused, match=r"\(approving less than its 250.00 USD"):
        await refunds_v2.approve(status.refund_id, "sam", amount=20000, role="support")
    # A lead may approve less.
    partial = await refunds_v2.approve(status.refund_id, "lin", amount=20000, role="lead")
    assert partial.amount == 20000
    [approval] = [e for e in partial.timeline if e.actor == "lin"]  # then paid, maybe
    assert approval.reason.endswith("as lead")


async def test_a_policy_change_does_not_alter_refunds_in_flight(
    refunds_v1: RefundClient, refunds_v2: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(amount=25000)
    old = await refunds_v1.request(make_request(order, amount=25000))  # standard-v1: no limits
    assert old.policy_version.startswith("standard@v1#")
    # Policy v2 is now in force for new refunds; the v1 refund keeps v1 (no authority limits).
    newer_order = await sandbox.order(amount=25000)
    new = await refunds_v2.request(make_request(newer_order))
    with pytest.raises(RefundActionRefused):
        await refunds_v2.approve(new.refund_id, "sam", role="support")
    approved = await refunds_v2.approve(old.refund_id, "sam", role="support")
    assert approved.policy_version == old.policy_version
    assert approved.state.value in ("approved", "refunding", "completed")
    # Fees too: a v1 line refund of electronics keeps its full amount.
    lines = [{"sku": "TV", "quantity": 1, "unit_price": 4000, "category": "electronics"}]
    tv_request = {
        "amount": None,
        "lines": [{"sku": "TV", "quantity": 1}],
        "reason_code": "changed_mind",
    }
    v1 = await refunds_v1.request(make_request(await sandbox.order(lines=lines), **tv_request))
    v2 = await refunds_v2.request(make_request(await sandbox.order(lines=lines), **tv_request))
    assert (v1.amount, v1.fee) == (4000, 0)
    assert (v2.amount, v2.fee) == (3400, 600)


async def test_every_state_change_is_one_outbox_event_in_order(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(amount=2000)
    status = await refunds_v2.request(make_request(order))
    done = await wait_for_state(refunds_v2, status.refund_id, "completed")
    events = await eventually(
        lambda: refunds_v2.events(status.refund_id),
        lambda rows: len(rows) == 4 and all(d.delivered_at for r in rows for d in r.deliveries),
    )
    changes = [e for e in done.timeline if e.from_state is None or e.from_state != e.state]
    assert [e.seq for e in events] == [e.seq for e in changes]
    assert [e.type for e in events] == [
        "refund.pending_review", "refund.approved", "refund.refunding", "refund.completed",
    ]  # fmt: skip
    assert events[-1].payload["notification"]["body"] == done.message
    assert {d.subscriber for d in events[0].deliveries} >= {"customer-notifications"}
    # Written once: the outbox has exactly these rows for the refund.
    count = await db.fetchval(
        "SELECT count(*) FROM refundflow.outbox WHERE refund_id = $1", status.refund_id
    )
    assert count == 4


async def test_an_auto_approved_refunds_first_notice_says_received_not_waiting_for_review(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    # Issue 17: it said "waiting for review, decision due tomorrow", then was approved at once.
    order = await sandbox.order(amount=4200)
    status = await refunds.request(make_request(order))
    await wait_for_state(refunds, status.refund_id, "completed")
    received = await inbox_bodies(sandbox, status.refund_id, 4)
    assert received[0]["body"] == "We have received your request for a refund of 42.00 USD."
    assert all("review" not in r["body"] for r in received)
    # A refund a reviewer must decide still says so, with its due date.
    waiting = await refunds.request(make_request(await sandbox.order(amount=30000)))
    first = (await inbox_bodies(sandbox, waiting.refund_id, 1))[0]["body"]
    assert first.startswith("Your refund of 300.00 USD is waiting for review. We aim to decide by")


async def test_a_refund_the_policy_declines_at_once_was_received_never_waiting_for_review(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    # A trial: its first notice said "waiting for review. A decision is due by …", then
    # "not eligible" in the same second.
    order = await sandbox.order(amount=9000, delivered_days_ago=400)
    status = await refunds.request(make_request(order))
    declined = await wait_for_state(refunds, status.refund_id, "cancelled")
    closed_on = (datetime.now(UTC) - timedelta(days=400 - 30)).date()
    received = [r["body"] for r in await inbox_bodies(sandbox, status.refund_id, 2)]
    assert received == [
        "We have received your request for a refund of 90.00 USD.",
        # and why, in the policy's words (a trial read no reason at all)
        "Your refund request of 90.00 USD is not eligible under the refund policy. The"
        f" 30-day return window closed on {closed_on}.",
    ]
    assert declined.message == received[1]
    # In Chinese too (a trial: the reason was left out of a Chinese sentence).
    order = await sandbox.order(amount=9000, delivered_days_ago=400)
    asked = await refunds.request(make_request(order, locale="zh-CN"))
    told = (await wait_for_state(refunds, asked.refund_id, "cancelled")).message
    assert told.endswith(f"不符合条件。30 天退货期已于 {closed_on} 结束。"), told


async def test_arrival_dates_are_told_once_the_provider_took_the_payment(
    refunds: RefundClient, sandbox: Sandbox, faults: Any
) -> None:
    """A trial: "on its way … should reach you between 4 and 11 Dec", then "could not be
    paid yet" in the same second. Dates come once the provider takes the refund."""
    await faults.set_faults({"payment.refuse": "expired_card"})
    refused = await refunds.request(make_request(await sandbox.order(amount=4000)))
    bodies = [r["body"] for r in await inbox_bodies(sandbox, refused.refund_id, 4)]
    assert bodies[2] == "Your refund of 40.00 USD is on its way to your original payment method."
    assert bodies[3].startswith("Your refund of 40.00 USD could not be paid yet")
    assert not any("should reach you" in body for body in bodies), bodies

    await faults.clear_faults()
    await faults.set_faults({"payment.pending_rate": "1", "payment.settle_after_ms": "600000"})
    pending = await refunds.request(make_request(await sandbox.order(amount=4100)))
    told = await inbox_bodies(sandbox, pending.refund_id, 4)
    assert "should reach you" not in told[2]["body"]  # sent, not yet taken
    assert told[3]["type"] == "refund.refunding" and told[3]["body"].startswith(
        "Your refund of 41.00 USD is on its way to your original payment method. The money"
        " should reach you between"
    ), told[3]
    status = await refunds.status(pending.refund_id)
    assert status.eta_kind == "payment" and status.message == told[3]["body"]
