"""Chaos cases where a process dies or a call outlives its timeout: the worker killed (kill -9)
with a provider call in flight, on the in-process fast path and on the durable path; the
provider slower than the activity timeout; Temporal and Postgres restarted while refunds are
pending at the provider. Each proves that what it waited for happened: a call in flight at
the kill, refunds pending at the restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.chaos.ends import COMPLETED
from tests.chaos.harness import Chaos, settle
from tests.chaos.proofs import all_in_flight, durable_attempts, in_flight, paid_once, wait_for
from workflows.models import StatusView
from workflows.refund.fast_path import FAST_PATH_RETRY
from workflows.states import Awaiting, RefundState

Calls = dict[str, list[dict[str, Any]]]


async def _settle_all(chaos: Chaos) -> list[StatusView]:
    return [await settle(chaos, refund_id) for refund_id in sorted(chaos.refund_ids)]


async def _kill_with_calls_in_flight(chaos: Chaos, refund_ids: set[str]) -> Calls:
    """kill -9 the worker once the provider has committed every refund's call and still
    holds the answers back; the call log as it stood at the kill."""
    await wait_for(
        "a committed provider call in flight for every refund",
        lambda: all_in_flight(chaos, refund_ids),
    )
    at_kill = {refund_id: await chaos.calls(refund_id) for refund_id in refund_ids}
    await asyncio.to_thread(chaos.stack.kill_worker)  # the answers die with it
    for refund_id, calls in at_kill.items():
        assert any(in_flight(c) for c in calls), f"{refund_id}: nothing in flight: {calls}"
    await chaos.faults.clear_faults()
    await asyncio.to_thread(chaos.stack.start_worker)
    return at_kill


async def kill9_worker_after_provider_commit(chaos: Chaos) -> None:
    # The provider commits, then holds its answer 3 s (the worker's HTTP call waits up to
    # 6 s): the worker dies while its in-process (fast path) call waits for the answer.
    await chaos.faults.set_faults({"payment.response_delay_ms": "3000"})
    orders = [await chaos.order(amount=4000) for _ in range(3)]
    # A request's answer may wait for the workflow task that holds the in-process provider
    # call: ask in the background, and kill meanwhile.
    asking = [asyncio.create_task(chaos.request(o, expect=COMPLETED)) for o in orders]
    committed: dict[str, str] = {}

    async def all_committed() -> bool:
        rows = await chaos.db.fetch(
            "SELECT order_id, metadata->>'refund_id' AS refund_id FROM sandbox.refunds"
            " WHERE order_id = ANY($1::text[])",
            [o["order_id"] for o in orders],
        )
        committed.update({r["order_id"]: r["refund_id"] for r in rows})
        return len(committed) == len(orders)

    await wait_for("the provider to commit every refund", all_committed, timeout=30)
    await _kill_with_calls_in_flight(chaos, set(committed.values()))
    await asyncio.gather(*asking)
    for status in await _settle_all(chaos):
        paid_once(status.refund_id, await chaos.calls(status.refund_id))


async def kill9_worker_mid_durable_call(chaos: Chaos) -> None:
    """The crash path of the test command: the provider fails every in-process try, so the
    payment moves to the durable activity; the provider commits that call and holds the
    answer beyond the activity's 15 s timeout; the worker is killed meanwhile. The durable
    activity must have looked up before sending, and its retry must find the refund."""
    tries = FAST_PATH_RETRY.maximum_attempts
    await chaos.faults.set_faults(
        {"payment.fail_first_calls": str(tries), "payment.response_delay_ms": "20000"}
    )
    orders = [await chaos.order(amount=4000) for _ in range(2)]
    await asyncio.gather(*(chaos.request(o, expect=COMPLETED) for o in orders))
    at_kill = await _kill_with_calls_in_flight(chaos, chaos.refund_ids)
    for status in await _settle_all(chaos):
        refund_id = status.refund_id
        before = at_kill[refund_id]
        fast = before[:tries]
        assert all(c["outcome"] == "injected_error" for c in fast), f"{refund_id}: {before}"
        durable = before[tries:]
        looked = bool(durable) and durable[0]["kind"] == "lookup" and durable[0]["found"] == 0
        assert looked, f"{refund_id}: the durable call did not look up first: {before}"
        paid_once(refund_id, await chaos.calls(refund_id))
        attempts = await durable_attempts(chaos, refund_id)
        assert attempts and attempts[-1] >= 2, (
            f"{refund_id}: the durable activity was not retried after the kill: {attempts}"
        )


async def latency_beyond_the_activity_timeout(chaos: Chaos) -> None:
    # The provider commits, then answers after 16 s: the caller gives up first and the
    # retry must find the refund rather than create another.
    await chaos.faults.set_faults({"payment.response_delay_ms": "16000"})
    orders = [await chaos.order(amount=4000) for _ in range(2)]
    await asyncio.gather(*(chaos.request(o, expect=COMPLETED) for o in orders))
    for status in await _settle_all(chaos):
        paid_once(status.refund_id, await chaos.calls(status.refund_id))


async def _restart_mid_refund(chaos: Chaos, restart: Callable[[float], None]) -> None:
    """Refunds pending at the provider while a server goes down and comes back; they settle
    (6 s after the provider took them) while it is down or just back."""
    await chaos.faults.set_faults({"payment.pending_rate": "1", "payment.settle_after_ms": "6000"})
    orders = [await chaos.order(amount=4000) for _ in range(3)]
    await asyncio.gather(*(chaos.request(o, expect=COMPLETED) for o in orders))
    await wait_for("every refund to wait on a pending provider refund", lambda: _pending(chaos))
    still = await chaos.db.fetchval(
        "SELECT count(*) FROM sandbox.refunds WHERE status = 'pending'"
        " AND metadata->>'refund_id' = ANY($1::text[])",
        list(chaos.refund_ids),
    )
    assert still == len(orders), f"only {still} refunds still pending at the restart"
    await asyncio.to_thread(restart, 1.0)
    for status in await _settle_all(chaos):
        assert any(e.event == "provider_pending" for e in status.timeline), status.timeline


async def _pending(chaos: Chaos) -> bool:
    for refund_id in chaos.refund_ids:
        status = await chaos.status(refund_id)
        waiting = status.state is RefundState.REFUNDING and (
            status.awaiting is Awaiting.PAYMENT_PROVIDER
        )
        if not waiting or not any(e.event == "provider_pending" for e in status.timeline):
            return False
    return True


async def temporal_restarted_mid_refund(chaos: Chaos) -> None:
    await _restart_mid_refund(chaos, chaos.stack.restart_temporal)


async def postgres_restarted_mid_refund(chaos: Chaos) -> None:
    await _restart_mid_refund(chaos, chaos.stack.restart_postgres)
