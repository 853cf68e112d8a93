"""The chaos cases. Each drives a few refunds through a fault, declares how each refund must
end, and proves its faults fired (the counters named in `fires`, checked by the runner, and
per refund from the sandbox's call log); the harness then checks the invariants over
whatever the case touched. The crash and restart cases are in tests/chaos/crash_cases.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from client.errors import InvalidRefundRequest, RefundActionRefused
from sandbox.webhooks import SIGNATURE_HEADER, sign
from tests.chaos import crash_cases, long_cases, money_cases, months_cases
from tests.chaos.ends import COMPLETED, cancelled, operator_wait
from tests.chaos.harness import Chaos, settle
from tests.chaos.proofs import (
    creates,
    paid_once,
    signals,
    wait_for,
)
from tests.conftest import FEE_FREE_REASONS
from workflows import names
from workflows.models import StatusView
from workflows.states import Awaiting, CancelReason, RefundState


@dataclass(frozen=True)
class Case:
    run: Callable[[Chaos], Awaitable[None]]
    fast: bool
    """Part of the README's test command (each case once); the rest run in the full suite."""
    fires: tuple[str, ...] = ()
    """Sandbox counters (`system.kind`) that must have gone up in the run: the fault fired."""


async def _settle_all(chaos: Chaos) -> list[StatusView]:
    """Let every refund of the run reach its end while the fault is still in force."""
    return [await settle(chaos, refund_id) for refund_id in sorted(chaos.refund_ids)]


async def _request_each(chaos: Chaos, orders: list[dict[str, Any]], **fields: Any) -> None:
    await asyncio.gather(*(chaos.request(order, **fields) for order in orders))


async def provider_commits_then_response_lost(chaos: Chaos) -> None:
    await chaos.faults.set_faults({"payment.lose_response_rate": "1"})
    orders = [await chaos.order(amount=4000) for _ in range(3)]
    await _request_each(chaos, orders, expect=COMPLETED)
    await _settle_all(chaos)
    for refund_id in chaos.refund_ids:
        paid_once(refund_id, await chaos.calls(refund_id), "lost")


async def provider_key_forgotten_before_retry(chaos: Chaos) -> None:
    # Partial refunds, so the capture limit cannot hide a second refund. The runner checks
    # `payment.forgotten_keys`: a retry came back after the provider forgot the key.
    await chaos.faults.set_faults(
        {"payment.lose_response_rate": "1", "payment.idempotency_retention_s": "0"}
    )
    orders = [await chaos.order(amount=10000) for _ in range(3)]
    await _request_each(chaos, orders, amount=3000, expect=COMPLETED)
    await _settle_all(chaos)
    for refund_id in chaos.refund_ids:
        paid_once(refund_id, await chaos.calls(refund_id), "lost")


async def storm_of_5xx(chaos: Chaos) -> None:
    # Four calls in ten fail at random; on top, each refund's first call to each system fails,
    # so both storms provably hit every refund, whatever the dice say.
    await chaos.faults.set_faults(
        {
            "payment.error_rate": "0.4",
            "inventory.error_rate": "0.4",
            "payment.fail_first_calls": "1",
            "inventory.fail_first_calls": "1",
        }
    )
    lines = [{"sku": "CUP-1", "quantity": 2, "unit_price": 1000, "category": "kitchen"}]
    returned: list[str] = []
    for _ in range(2):
        status = await chaos.request(
            await chaos.order(lines=lines),
            client=chaos.returns,
            amount=None,
            lines=[{"sku": "CUP-1", "quantity": 2}],
            expect=COMPLETED,
        )
        await _item_comes_back(chaos, status.refund_id)
        returned.append(status.refund_id)
    await _request_each(chaos, [await chaos.order(amount=3000) for _ in range(2)], expect=COMPLETED)
    await _settle_all(chaos)
    for refund_id in chaos.refund_ids:
        calls = await chaos.calls(refund_id)
        hit = bool(calls) and calls[0]["outcome"] == "injected_error"
        assert hit, f"{refund_id}: the payment storm missed it: {calls}"
    for refund_id in returned:
        restocks = await chaos.calls(refund_id, "inventory")
        hit = bool(restocks) and restocks[0]["outcome"] == "injected_error"
        assert hit, f"{refund_id}: the inventory storm missed it: {restocks}"
        assert any(c["status"] in (200, 201) for c in restocks), f"{refund_id}: not restocked"


async def _item_comes_back(chaos: Chaos, refund_id: str) -> None:
    async def waits_for_the_item() -> bool:
        return (await chaos.status(refund_id)).awaiting is Awaiting.CUSTOMER

    await wait_for(f"{refund_id} to wait for the returned item", waits_for_the_item)
    await chaos.returns.item_received(refund_id)


async def fifty_identical_requests_from_every_channel(chaos: Chaos) -> None:
    order = await chaos.order(amount=4500)
    channels = ["web", "app", "support", "api"]
    answers = await asyncio.gather(
        *(
            chaos.request(
                order, refund_key="same-request", channel=channels[i % 4], expect=COMPLETED
            )
            for i in range(50)
        )
    )
    assert len({a.refund_id for a in answers}) == 1, "identical requests became several refunds"
    assert not chaos.errors, f"channels got errors: {chaos.errors[:3]}"


async def concurrent_refunds_beyond_the_capture(chaos: Chaos) -> None:
    # Five refunds of 30.00 on a 100.00 capture: three fit, two must be refused, either at
    # request time (nothing started) or by the workflow's reservation (cancelled). Five
    # reasons: the same amount for the same reason would wait for a reviewer as asked again.
    order = await chaos.order(amount=10000)
    either = (COMPLETED, cancelled(CancelReason.EXCEEDS_REFUNDABLE))
    results = await asyncio.gather(
        *(
            chaos.request(order, amount=3000, reason_code=reason, expect=either)
            for reason in FEE_FREE_REASONS
        ),
        return_exceptions=True,
    )
    at_request = 0
    for result in results:
        if isinstance(result, InvalidRefundRequest) and "still refundable" in str(result):
            at_request += 1
        elif isinstance(result, BaseException):
            raise result
    ends = [s.state for s in await _settle_all(chaos)]
    paid = ends.count(RefundState.COMPLETED)
    assert paid == 3, f"{paid} of five 30.00 refunds on a 100.00 capture were paid"
    refused = at_request + ends.count(RefundState.CANCELLED)
    assert refused == 2, f"{refused} refusals ({at_request} at request time), not 2"


async def webhooks_duplicated_early_and_forged(chaos: Chaos) -> None:
    await chaos.faults.set_faults(
        {
            "payment.pending_rate": "1",
            "payment.settle_after_ms": "0",
            "payment.duplicate_webhooks": "3",
            # The answer is held back, so the webhook gets there before it.
            "payment.response_delay_ms": "2000",
        }
    )
    orders = [await chaos.order(amount=4000) for _ in range(3)]
    await _request_each(chaos, orders, expect=COMPLETED)
    first = sorted(chaos.refund_ids)[0]
    await _forged_webhook_refused(chaos, first)
    for status in await _settle_all(chaos):
        await _webhook_settled_it(chaos, status)


async def _forged_webhook_refused(chaos: Chaos, refund_id: str) -> None:
    forged = json.dumps(
        {
            "id": f"evt_forged_{refund_id}",
            "type": "refund.failed",
            "created": int(time.time()),
            "data": {"object": {"id": "re_forged", "metadata": {"refund_id": refund_id}}},
        }
    )
    async with chaos.http.post(
        chaos.stack.webhook_url,
        data=forged,
        headers={SIGNATURE_HEADER: sign("guessed-secret", forged)},
    ) as response:
        assert response.status == 400, "a forged webhook was accepted"


async def _webhook_settled_it(chaos: Chaos, status: StatusView) -> None:
    """The webhook arrived before the provider's answer, settled the refund (not the 30 s
    poll), reached the workflow once although sent four times, and a replay is a duplicate."""
    refund_id = status.refund_id
    received = await chaos.db.fetch(
        "SELECT event_id, signalled_at FROM refundflow.webhook_events"
        " WHERE refund_id = $1 AND signalled_at IS NOT NULL",
        refund_id,
    )
    assert len(received) == 1, f"{refund_id}: webhooks signalled: {received}"
    confirmed = [e for e in status.timeline if e.event == "provider_confirmed"]
    assert confirmed and "settled via webhook" in confirmed[0].reason, f"{refund_id}: {confirmed}"
    calls = await chaos.calls(refund_id)
    assert not [c for c in calls if c["kind"] == "poll"], f"{refund_id}: polled: {calls}"
    assert len(creates(calls)) == 1, f"{refund_id}: {calls}"
    signalled = await signals(chaos, refund_id, names.SIGNAL_PROVIDER_SETTLED)
    assert signalled == 1, f"{refund_id}: 4 copies sent, {signalled} reached the workflow"
    # The provider held its answer back 2 s: the webhook reached the workflow before it.
    answered = creates(calls)[0]["answered_at"]
    early = received[0]["signalled_at"].timestamp() < answered
    assert early, f"{refund_id}: the webhook came after the provider's answer"
    await _replay_is_a_duplicate(chaos, received[0]["event_id"])


async def _replay_is_a_duplicate(chaos: Chaos, event_id: str) -> None:
    """The provider's own event, validly signed, sent again: deduplicated, not re-signalled."""
    body = await chaos.db.fetchval(
        "SELECT payload::text FROM sandbox.webhook_events WHERE event_id = $1", event_id
    )
    headers = {SIGNATURE_HEADER: sign(chaos.stack.webhook_secret, body)}
    async with chaos.http.post(chaos.stack.webhook_url, data=body, headers=headers) as response:
        answer = await response.json()
    assert answer == {"status": "duplicate"}, f"a replayed webhook was {answer}"


async def provider_refuses_and_settlement_fails(chaos: Chaos) -> None:
    """The two failures that need a person: a refusal for good and a failed settlement. One
    refused refund is cancelled by an operator. The other is paid meanwhile from the
    provider's dashboard: the operator's cancel is refused (money moved), and the operator's
    retry finds that refund instead of paying again. The failed settlement is left waiting
    for an operator, saying why."""
    await chaos.faults.set_faults({"payment.refuse": "expired_card"})
    to_cancel, to_retry = [await chaos.order(amount=2500) for _ in range(2)]
    a = await chaos.request(to_cancel, expect=cancelled(CancelReason.PAYMENT_FAILED))
    b = await chaos.request(to_retry, expect=COMPLETED)
    for refund_id in (a.refund_id, b.refund_id):
        await _wait_for_operator(chaos, refund_id, "expired_card")
    await chaos.faults.set_faults(
        {
            "payment.refuse": "",
            "payment.pending_rate": "1",
            "payment.settle_after_ms": "0",
            "payment.settle_failure_rate": "1",
        }
    )
    failed = await chaos.request(
        await chaos.order(amount=2500), expect=operator_wait("lost_or_stolen_card")
    )
    await _wait_for_operator(chaos, failed.refund_id, "lost_or_stolen_card")
    await chaos.faults.clear_faults()
    await chaos.refunds.operator_cancel(a.refund_id, "kim", "card expired")
    await _paid_from_the_dashboard(chaos, to_retry, b)
    try:
        await chaos.refunds.operator_cancel(b.refund_id, "kim", "card expired")
        raise AssertionError(f"{b.refund_id}: cancelled although the provider paid it")
    except RefundActionRefused as err:
        assert "cannot cancel" in str(err), err
    await chaos.refunds.operator_retry(b.refund_id, "kim")
    settled = await chaos.db.fetchval(
        "SELECT failure_code FROM sandbox.refunds WHERE metadata->>'refund_id' = $1"
        " AND status = 'failed'",
        failed.refund_id,
    )
    assert settled == "lost_or_stolen_card", f"no failed settlement at the provider: {settled}"


async def _paid_from_the_dashboard(chaos: Chaos, order: dict[str, Any], status: StatusView) -> None:
    """Someone refunds through the provider's own dashboard, naming the refund."""
    body = {
        "payment_reference": order["payment_reference"],
        "amount": status.amount,
        "currency": status.currency,
        "metadata": {"refund_id": status.refund_id, "order_id": order["order_id"]},
    }
    headers = {"Idempotency-Key": f"dashboard-{status.refund_id}"}
    url = f"{chaos.stack.sandbox_url}/payments/v1/refunds"
    async with chaos.http.post(url, json=body, headers=headers) as response:
        assert response.status == 201, await response.text()


async def _wait_for_operator(chaos: Chaos, refund_id: str, failure: str) -> None:
    waiting = operator_wait(failure)

    async def check() -> bool:
        return waiting.reached_by(await chaos.status(refund_id))

    await wait_for(f"{refund_id} to wait for an operator ({failure})", check)


CASES: dict[str, Case] = {
    "kill -9 worker after provider commit": Case(
        crash_cases.kill9_worker_after_provider_commit,
        fast=False,
        fires=("payment.delayed_responses",),
    ),
    "kill -9 worker mid durable provider call": Case(
        crash_cases.kill9_worker_mid_durable_call,
        fast=True,
        fires=("payment.errors", "payment.delayed_responses"),
    ),
    "provider commits, response lost": Case(
        provider_commits_then_response_lost, fast=True, fires=("payment.lost_responses",)
    ),
    "provider key forgotten before retry": Case(
        provider_key_forgotten_before_retry,
        fast=True,
        fires=("payment.lost_responses", "payment.forgotten_keys"),
    ),
    "5xx storm (payment + inventory)": Case(
        storm_of_5xx, fast=True, fires=("payment.errors", "inventory.errors")
    ),
    "latency beyond activity timeout": Case(
        crash_cases.latency_beyond_the_activity_timeout,
        fast=False,
        fires=("payment.delayed_responses",),
    ),
    # The restart is the fault: these prove refunds were pending at it (crash_cases).
    "Temporal restarted mid-refund": Case(crash_cases.temporal_restarted_mid_refund, fast=False),
    "Postgres restarted mid-refund": Case(crash_cases.postgres_restarted_mid_refund, fast=False),
    "50 identical requests, 4 channels": Case(
        fifty_identical_requests_from_every_channel, fast=True
    ),
    "concurrent refunds beyond capture": Case(concurrent_refunds_beyond_the_capture, fast=True),
    "webhooks: duplicate, early, forged": Case(
        webhooks_duplicated_early_and_forged, fast=True, fires=("payment.delayed_responses",)
    ),
    "provider refuses, settlement fails": Case(
        provider_refuses_and_settlement_fails, fast=True, fires=("payment.refusals",)
    ),
    "the same return from three channels at once": Case(
        money_cases.same_return_from_three_channels, fast=True, fires=("orders.latency",)
    ),
    "splitting below the auto-approve limit": Case(
        money_cases.splitting_below_the_auto_approve_limit, fast=False, fires=("orders.latency",)
    ),
    # These prove their faults from history and the database (tests/chaos/long_cases.py).
    "audit store down while refunds settle": Case(
        long_cases.audit_store_unavailable_while_refunds_settle, fast=False
    ),
    "workflow reset after payment": Case(long_cases.workflow_reset_after_payment, fast=False),
    "poison subscriber": Case(long_cases.poison_subscriber, fast=False),
    "reversal after success": Case(long_cases.reversal_after_success, fast=False),
    "90 days pending with the provider": Case(
        months_cases.ninety_days_pending_with_the_provider, fast=False
    ),
}
