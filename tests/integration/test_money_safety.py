"""Invariants 1 and 2 under injected faults: one provider refund per refund, never more
than was captured, a person told whenever the money cannot move, and no operator cancel
while the provider may still pay."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest
from temporalio.testing import TimeSkipper

from client.errors import InvalidRefundRequest, RefundActionRefused
from client.refund_client import RefundClient
from sandbox.admin_client import SandboxAdmin
from tests.conftest import FEE_FREE_REASONS, Sandbox
from tests.integration.helpers import eventually, run_cli, wait_for_state
from tests.integration.test_refund_flow import make_request
from worker.devstack import DevStack
from workflows.models import StatusView

pytestmark = pytest.mark.stack


async def test_lost_response_then_retry_finds_the_refund_instead_of_sending_another(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    order = await sandbox.order(amount=10000)
    # Every POST commits and then loses its response; the idempotency key is forgotten at
    # once, so only the lookup by refund id stands between a retry and a second refund.
    await faults.set_faults(
        {"payment.lose_response_rate": "1", "payment.idempotency_retention_s": "0"}
    )
    status = await refunds.request(make_request(order, amount=3000))
    done = await wait_for_state(refunds, status.refund_id, "completed", timeout=60)
    ledger = await sandbox.refunds(order["order_id"])
    assert [(r["amount"], r["status"]) for r in ledger] == [(3000, "succeeded")]
    assert done.provider_refund_id == ledger[0]["id"]


async def test_transient_errors_are_retried_until_the_provider_answers(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(amount=4000)
    await faults.set_faults({"payment.error_rate": "1"})
    status = await refunds.request(make_request(order))
    await eventually(
        lambda: refunds.status(status.refund_id),
        lambda s: s.state.value == "refunding" and s.awaiting.value == "payment_provider",
    )
    await asyncio.sleep(1.5)  # a few failed attempts
    # The provider's API answers 503 to everyone now; look at its books directly.
    count = "SELECT count(*) FROM sandbox.refunds WHERE order_id = $1"
    assert await db.fetchval(count, order["order_id"]) == 0
    await faults.clear_faults()
    await wait_for_state(refunds, status.refund_id, "completed", timeout=60)
    assert len(await sandbox.refunds(order["order_id"])) == 1


async def test_concurrent_requests_never_exceed_the_capture(
    refunds: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(amount=8000)
    # Four reasons: the same amount for the same reason would wait for a reviewer.
    reasons = FEE_FREE_REASONS[:4]
    answers = await asyncio.gather(
        *(refunds.request(make_request(order, amount=3000, reason_code=r)) for r in reasons),
        return_exceptions=True,
    )
    # A request that arrives after others hold the order is refused at once (nothing
    # started); requests that race past that check are declined by the reservation.
    refused_at_request = [a for a in answers if isinstance(a, InvalidRefundRequest)]
    statuses = [a for a in answers if isinstance(a, StatusView)]
    assert len(refused_at_request) + len(statuses) == 4, answers
    finals = [
        await wait_for_state(refunds, s.refund_id, "completed", "cancelled") for s in statuses
    ]
    outcomes = sorted((f.state.value, f.cancel_reason) for f in finals)
    assert (
        outcomes
        == [("cancelled", "exceeds_refundable")] * (2 - len(refused_at_request))
        + [("completed", None)] * 2
    )
    for refused in [f for f in finals if f.state.value == "cancelled"]:
        assert "20.00 USD" in refused.timeline[-1].reason
    for error in refused_at_request:
        assert "only 20.00 USD of order" in str(error)
    ledger = await sandbox.refunds(order["order_id"])
    assert sum(r["amount"] for r in ledger) == 6000 <= order["captured_amount"]


async def test_a_withdrawn_refund_gives_its_reservation_back(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(amount=20000)
    big = await refunds.request(make_request(order, amount=20000))  # goes to review
    with pytest.raises(InvalidRefundRequest, match=r"only 0\.00 USD of order .* is still"):
        await refunds.request(make_request(order, amount=1000))  # refused at request time
    await refunds.cancel(big.refund_id, "cust_42", "changed my mind")
    await wait_for_state(refunds, big.refund_id, "cancelled")
    later = await refunds.request(make_request(order, amount=1000))
    await wait_for_state(refunds, later.refund_id, "completed")


async def test_pending_refund_completes_when_the_signed_webhook_arrives(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    order = await sandbox.order(amount=4000)
    await faults.set_faults(
        {
            "payment.pending_rate": "1",
            "payment.settle_after_ms": "300",
            "payment.duplicate_webhooks": "2",
        }
    )
    status = await refunds.request(make_request(order))
    done = await wait_for_state(refunds, status.refund_id, "completed", timeout=60)
    events = [e.event for e in done.timeline]
    assert "provider_pending" in events
    assert "settled via webhook" in done.timeline[-1].reason
    assert len(await sandbox.refunds(order["order_id"])) == 1


async def test_pending_refund_without_webhook_is_settled_by_polling(
    refunds: RefundClient, skipper: TimeSkipper, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    order = await sandbox.order(amount=4000)
    await faults.set_faults(
        {"payment.pending_rate": "1", "payment.settle_after_ms": "0", "payment.webhooks": "false"}
    )
    status = await refunds.request(make_request(order))
    pending = await eventually(
        lambda: refunds.status(status.refund_id),
        lambda s: any(e.event == "provider_pending" for e in s.timeline),
    )
    assert pending.state.value == "refunding" and pending.awaiting.value == "payment_provider"
    # The status written with the pending entry names it (a trial read null there).
    named = pending.provider_refund_id
    assert named is not None and named in pending.timeline[-1].reason, pending.timeline[-1]
    handle = refunds.temporal.get_workflow_handle(status.refund_id)
    await skipper.fast_forward(handle, timedelta(minutes=1))  # the first poll is after 30 s
    done = await wait_for_state(refunds, status.refund_id, "completed", timeout=60)
    assert "settled via poll" in done.timeline[-1].reason


async def test_permanent_refusal_waits_for_an_operator_who_may_cancel(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(amount=4000)
    await faults.set_faults({"payment.refuse": "expired_card"})
    stuck = status = await refunds.request(make_request(order))
    # The answer is the provider's refusal, not "on its way": the auto-approved refund was
    # paid (and refused) in the workflow task that answered.
    assert stuck.awaiting.value == "operator", stuck
    assert stuck.message.startswith("Your refund of 40.00 USD could not be paid yet"), stuck
    assert (stuck.state.value, stuck.escalation_level) == ("refunding", 2)
    assert stuck.provider_failure is not None and "expired_card" in stuck.provider_failure
    assert stuck.next_step.startswith("An operator")
    with pytest.raises(RefundActionRefused):
        await refunds.cancel(status.refund_id, "cust_42", "customers cannot cancel now")

    cancelled = await refunds.operator_cancel(status.refund_id, "ops-kim", "card expired")
    assert (cancelled.state.value, cancelled.cancel_reason) == ("cancelled", "payment_failed")
    assert await sandbox.refunds(order["order_id"]) == []
    reservation = await eventually(
        lambda: db.fetchval(
            "SELECT state FROM refundflow.reservations WHERE refund_id = $1", status.refund_id
        ),
        lambda state: state == "released",
    )
    assert reservation == "released"


async def test_operator_retry_after_the_cause_is_fixed_pays_once(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    order = await sandbox.order(amount=4000)
    await faults.set_faults({"payment.pending_rate": "1", "payment.settle_after_ms": "100",
                             "payment.settle_failure_rate": "1"})  # fmt: skip
    status = await refunds.request(make_request(order))
    failed = await eventually(
        lambda: refunds.status(status.refund_id), lambda s: s.awaiting.value == "operator"
    )
    assert failed.provider_failure and "lost_or_stolen_card" in failed.provider_failure
    with pytest.raises(RefundActionRefused, match="cannot approve a refund that is refunding"):
        await refunds.approve(status.refund_id, "alice")  # not a reviewer matter now
    await faults.clear_faults()
    retried = await refunds.operator_retry(status.refund_id, "ops-kim")
    # The answer the operator reads says what happens now, not "awaiting operator" (issue 17).
    assert retried.awaiting.value != "operator", retried
    done = await wait_for_state(refunds, status.refund_id, "completed", timeout=60)
    ledger = await sandbox.refunds(order["order_id"])
    assert sorted(r["status"] for r in ledger) == ["failed", "succeeded"]
    paid = next(r for r in ledger if r["status"] == "succeeded")
    assert paid["idempotency_key"] == f"{status.refund_id}:refund:2"
    assert done.provider_refund_id == paid["id"]


async def test_a_retry_the_provider_refuses_again_is_answered_with_that_refusal(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    """A trial: `operator retry` answered "on its way, money arrives between …" and exit 0
    while the provider had refused the new attempt in the same second."""
    order = await sandbox.order(amount=4000)
    await faults.set_faults({"payment.refuse": "expired_card"})
    status = await refunds.request(make_request(order))
    await eventually(
        lambda: refunds.status(status.refund_id), lambda s: s.awaiting.value == "operator"
    )
    retried = await refunds.operator_retry(status.refund_id, "ops-kim")
    assert retried.awaiting.value == "operator", retried
    assert retried.message.startswith("Your refund of 40.00 USD could not be paid yet"), retried
    assert retried.provider_failure is not None and "expired_card" in retried.provider_failure
    assert [r["status"] for r in await sandbox.refunds(order["order_id"])] == []

    # Answered "pending" this time: the answer is the latest record (the pending entry),
    # still with the provider, not the bare acceptance (a review).
    await faults.clear_faults()
    await faults.set_faults({"payment.pending_rate": "1", "payment.webhooks": "false",
                             "payment.settle_after_ms": str(3600 * 1000)})  # fmt: skip
    pending = await refunds.operator_retry(status.refund_id, "ops-kim")
    assert pending.awaiting.value == "payment_provider", pending
    assert pending.timeline[-1].event == "provider_pending", pending.timeline[-2:]


async def test_operator_cancel_is_refused_while_the_provider_holds_a_live_refund(
    refunds: RefundClient,
    sandbox: Sandbox,
    faults: SandboxAdmin,
    db: asyncpg.Pool,
    stack: DevStack,
) -> None:
    order = await sandbox.order(amount=4000)
    await faults.set_faults({"payment.refuse": "expired_card"})
    status = await refunds.request(make_request(order))
    stuck = await eventually(
        lambda: refunds.status(status.refund_id), lambda s: s.awaiting.value == "operator"
    )
    # Meanwhile a refund for it is pending at the provider (made in its dashboard; it will
    # settle as failed, when the test says so): money may still move, so no cancel.
    await faults.clear_faults()
    await faults.set_faults(
        {"payment.pending_rate": "1", "payment.settle_after_ms": str(24 * 3600 * 1000),
         "payment.settle_failure_rate": "1", "payment.webhooks": "false"}
    )  # fmt: skip
    pending = await sandbox.provider_refund(order, status.refund_id, 4000)
    assert pending["status"] == "pending"
    before = await what_a_cancel_would_change(refunds, db, status.refund_id)
    # omar: the dev directory's operator (the API takes the role from his token).
    cancel = ("operator", "cancel", status.refund_id, "--operator", "omar", "--reason", "card")
    code, _, err = await run_cli(stack.env(), *cancel)
    assert code == 1, err
    assert f"cannot cancel: provider refund {pending['id']} is pending" in err
    assert await what_a_cancel_would_change(refunds, db, status.refund_id) == before
    assert before[0] == ("refunding", "operator", len(stuck.timeline))

    # The provider fails that refund: it holds nothing live for this one, the cancel goes on.
    await db.execute(
        "UPDATE sandbox.refunds SET settle_at = now() WHERE provider_refund_id = $1", pending["id"]
    )
    await eventually(
        lambda: sandbox.refunds(order["order_id"]),
        lambda ledger: [r["status"] for r in ledger] == ["failed"],
    )
    code, _, err = await run_cli(stack.env(), *cancel)
    assert code == 0, err
    cancelled = await wait_for_state(refunds, status.refund_id, "cancelled")
    assert cancelled.cancel_reason == "payment_failed"
    reservation = await eventually(
        lambda: reservation_state(db, status.refund_id), lambda state: state == "released"
    )
    assert reservation == "released"


async def reservation_state(db: asyncpg.Pool, refund_id: str) -> str | None:
    state: str | None = await db.fetchval(
        "SELECT state FROM refundflow.reservations WHERE refund_id = $1", refund_id
    )
    return state


async def what_a_cancel_would_change(
    refunds: RefundClient, db: asyncpg.Pool, refund_id: str
) -> tuple[tuple[str, str, int], int, int, str | None]:
    """(state, awaiting, timeline length), audit entries, outbox events, reservation."""
    now = await refunds.status(refund_id)
    audit = await db.fetchval(
        "SELECT count(*) FROM refundflow.audit WHERE refund_id = $1", refund_id
    )
    return (
        (now.state.value, now.awaiting.value, len(now.timeline)),
        int(audit),
        len(await refunds.events(refund_id)),
        await reservation_state(db, refund_id),
    )
