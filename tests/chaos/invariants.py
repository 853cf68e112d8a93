"""The invariants (numbered in ARCHITECTURE.md) every chaos run must leave intact, checked
over every refund the run touched: each refund reached its declared end, 1-6, and the
README's "the retry first asks the provider" rule.

No check may pass for want of rows: where a check loops over rows, it first requires the
rows that must exist (a completed refund's provider refund, each state change's outbox event
and delivery, each audit entry).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from activities.outbox import SITUATION_TYPES
from client.errors import RefundflowError
from tests.chaos.ends import describe
from tests.chaos.harness import Chaos, settle
from workflows.models import StatusView
from workflows.states import RefundState

T = TypeVar("T")
CUSTOMER = "customer-notifications"


async def violations(chaos: Chaos) -> list[str]:
    """Every invariant over everything this run touched; an empty list means all held."""
    if not chaos.expected:
        return ["the run touched no refund: nothing was checked"]
    found: list[str] = []
    statuses: dict[str, StatusView] = {}
    for refund_id in sorted(chaos.refund_ids):
        try:
            statuses[refund_id] = await settle(chaos, refund_id)
        except (AssertionError, RefundflowError) as err:
            found.append(f"{refund_id}: {type(err).__name__}: {err}")
    for refund_id, status in statuses.items():
        ends = chaos.expected[refund_id]
        if not any(end.reached_by(status) for end in ends):
            wanted = " or ".join(str(e) for e in ends)
            found.append(f"{refund_id}: ended {describe(status)}, declared {wanted}")
    found += await _money(chaos, statuses)
    found += await _restocks(chaos, statuses)
    for status in statuses.values():
        found += await _audit(chaos, status)
        found += await _outbox(chaos, status)
        found += await _looked_up_before_sending_again(chaos, status)
    return found


async def _money(chaos: Chaos, statuses: dict[str, StatusView]) -> list[str]:
    """Invariants 1 and 2: one provider refund per refund, exactly one per completed refund,
    none live for a cancelled one; never beyond the capture, on either side."""
    found: list[str] = []
    ledger = await chaos.db.fetch(
        "SELECT metadata->>'refund_id' AS refund_id, order_id, amount, status"
        " FROM sandbox.refunds WHERE metadata->>'refund_id' = ANY($1::text[])",
        list(chaos.refund_ids),
    )
    for refund_id, status in statuses.items():
        mine = [r for r in ledger if r["refund_id"] == refund_id]
        live = [r for r in mine if r["status"] != "failed"]
        if len(live) > 1:
            found.append(f"{refund_id}: {len(live)} provider refunds (invariant 1)")
        if status.state is RefundState.COMPLETED:
            paid = [r for r in live if r["status"] == "succeeded"]
            if len(paid) != 1 or paid[0]["amount"] != status.amount:
                found.append(f"{refund_id}: completed but provider has {[dict(r) for r in mine]}")
        if status.state is RefundState.CANCELLED and live:
            found.append(f"{refund_id}: cancelled but money moved: {[dict(r) for r in live]}")
        if status.state is not RefundState.COMPLETED and any(
            r["status"] == "succeeded" for r in live
        ):
            found.append(f"{refund_id}: the provider paid but the refund is {status.state.value}")
        failure = status.provider_failure or ""
        if "amount_exceeds_captured" in failure or "idempotency_key_reused" in failure:
            # The provider's own guard had to stop us: refundflow's guard failed.
            found.append(f"{refund_id}: provider refused a repeat or an over-refund: {failure}")
    per_order = {
        "reserved": "SELECT coalesce(sum(amount), 0) FROM refundflow.reservations"
        " WHERE order_id = $1 AND state <> 'released'",
        "refunded": "SELECT coalesce(sum(amount), 0) FROM sandbox.refunds"
        " WHERE order_id = $1 AND status <> 'failed'",
    }
    for order_id, captured in chaos.orders.items():
        for what, query in per_order.items():
            total = await chaos.db.fetchval(query, order_id)
            if total > captured:
                found.append(f"order {order_id}: {what} {total} > captured {captured} (inv. 2)")
    return found


async def _restocks(chaos: Chaos, statuses: dict[str, StatusView]) -> list[str]:
    """Invariant 4: each line restocked at most once; a completed refund whose item came back
    restocked (at least one movement), so that "at most once" is not met by none at all."""
    rows = await chaos.db.fetch(
        "SELECT reference, sku, count(*) AS n FROM sandbox.stock_movements"
        " WHERE reference = ANY($1::text[]) GROUP BY reference, sku",
        list(chaos.refund_ids),
    )
    found = [
        f"{r['reference']}: {r['sku']} restocked {r['n']} times (inv. 4)"
        for r in rows
        if r["n"] > 1
    ]
    restocked = {r["reference"] for r in rows}
    returned = {
        r["refund_id"]
        for r in await chaos.db.fetch(
            "SELECT refund_id FROM refundflow.refund_status"
            " WHERE item_received AND refund_id = ANY($1::text[])",
            list(chaos.refund_ids),
        )
    }
    for refund_id, status in statuses.items():
        paid = status.state is RefundState.COMPLETED
        if paid and refund_id in returned and refund_id not in restocked:
            found.append(f"{refund_id}: completed, item received, nothing restocked (inv. 4)")
    return found


async def _eventually(
    read: Callable[[], Awaitable[T]], done: Callable[[T], bool], seconds: float
) -> T:
    """Read until `done` says yes or time is up; the last reading either way (what is
    written just after a transition needs a moment)."""
    deadline = time.monotonic() + seconds
    while True:
        value = await read()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


async def _audit(chaos: Chaos, status: StatusView) -> list[str]:
    """Invariant 5: the audit holds each timeline entry once: same seq, event and state."""
    refund_id = status.refund_id
    expected = [(e.seq, e.event, e.state.value) for e in status.timeline]
    if not expected:
        return [f"{refund_id}: an empty timeline (inv. 5)"]

    async def read() -> list[tuple[int, str, str]]:
        rows = await chaos.db.fetch(
            "SELECT seq, event, to_state FROM refundflow.audit WHERE refund_id = $1 ORDER BY seq",
            refund_id,
        )
        return [(r["seq"], r["event"], r["to_state"]) for r in rows]

    # After a long store outage the last write waits out its retry interval (at most 30 s,
    # journal.STORE_DURABLE_RETRY) before it lands: give it longer than that.
    audit = await _eventually(read, lambda rows: rows == expected, 45)
    if audit != expected:
        return [f"{refund_id}: audit {audit} vs timeline {expected} (inv. 5)"]
    return []


async def _outbox(chaos: Chaos, status: StatusView) -> list[str]:
    """Invariant 6: each state change is one outbox event (its seq and new state), delivered
    to the customer's channel and received in the customer's inbox, whatever crashed."""
    refund_id = status.refund_id
    # A state change is told as its new state, or as what happened when that has a name of
    # its own (a reversal reopening a paid refund is `refund.reversed`, not `.refunding`).
    changes = [
        (e.seq, SITUATION_TYPES.get(e.event, f"refund.{e.state.value}"))
        for e in status.timeline
        if e.from_state != e.state
    ]
    if not changes:
        return [f"{refund_id}: no state change in the timeline (inv. 6)"]
    events = [
        (r["seq"], r["type"])
        for r in await chaos.db.fetch(
            "SELECT seq, type FROM refundflow.outbox WHERE refund_id = $1 ORDER BY seq",
            refund_id,
        )
    ]
    # Escalations, payment failures and requires_action are told too: their own type, at
    # the seq of their own timeline entry.
    situations = {
        e.seq: SITUATION_TYPES[e.event] for e in status.timeline if e.event in SITUATION_TYPES
    }
    # So is the provider taking the refund (its arrival dates): `refund.refunding` at its
    # `provider_pending` entry (not for requires_action, which is told as such).
    situations |= {
        e.seq: "refund.refunding" for e in status.timeline if e.event == "provider_pending"
    }
    told = [(seq, kind) for seq, kind in events if seq in situations and (seq, kind) not in changes]
    if [e for e in events if e not in told] != changes or any(
        situations.get(seq) != kind for seq, kind in told
    ):
        return [f"{refund_id}: outbox events {events} vs state changes {changes} (inv. 6)"]
    seqs = [seq for seq, _ in events]

    async def delivered() -> list[int]:
        rows = await chaos.db.fetch(
            "SELECT seq FROM refundflow.deliveries WHERE refund_id = $1 AND subscriber = $2"
            " AND delivered_at IS NOT NULL ORDER BY seq",
            refund_id,
            CUSTOMER,
        )
        return [r["seq"] for r in rows]

    sent = await _eventually(delivered, lambda got: got == seqs, 30)
    if sent != seqs:
        return [f"{refund_id}: delivered {sent} of events {seqs} to the customer (inv. 6)"]
    inbox = sorted(n["seq"] for n in await chaos.faults.inbox(refund_id))
    if inbox != seqs:
        return [f"{refund_id}: the customer's inbox has {inbox} of events {seqs} (inv. 6)"]
    return []


async def _looked_up_before_sending_again(chaos: Chaos, status: StatusView) -> list[str]:
    """README "Lost answers": a refund is sent to the provider again only after a lookup by
    refund id found none (the provider may have committed the call whose answer was lost).
    A completed refund must show its call to pay, or an empty call log would pass."""
    refund_id = status.refund_id
    calls: list[dict[str, Any]] = [
        c
        for c in await chaos.calls(refund_id)
        # refundflow's own calls: its keys start with the refund id (a case may pay a refund
        # outside refundflow, as from the provider's dashboard, under another key).
        if c["kind"] != "create" or (c["key"] or "").startswith(refund_id)
    ]
    found: list[str] = []
    sent = 0
    for i, call in enumerate(calls):
        if call["kind"] != "create" or call["outcome"] == "injected_error":
            continue  # an injected 503 answers before the provider does anything
        before = calls[i - 1] if i else None
        looked = before is not None and before["kind"] == "lookup" and before["found"] == 0
        if sent and not looked:
            found.append(f"{refund_id}: sent again without looking up first: {calls}")
        sent += 1
    if status.state is RefundState.COMPLETED and not sent:
        found.append(f"{refund_id}: completed, but the provider saw no call to pay: {calls}")
    return found
