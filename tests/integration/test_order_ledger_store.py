"""Invariant 9 on the real stack, at the store: reservations under the order's lock, holds
made at the edge, the ledger read ahead of the order's look-up (split from
test_order_ledger.py, which keeps the requests through RefundClient)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from activities import reserving
from activities.pg_store import PostgresRefundStore
from activities.projection import project_status
from client.errors import InvalidRefundRequest
from client.refund_client import RefundClient
from tests.conftest import Sandbox, unique_key
from tests.integration.helpers import eventually
from tests.integration.test_audit_store import batch
from tests.integration.test_order_ledger import GIFT_AND_PEN, TV_AND_CABLES
from tests.integration.test_refund_flow import make_request
from workflows.models import OrderLine, ReconcileInput, ReserveInput, ReserveResult
from workflows.states import RefundState

pytestmark = pytest.mark.stack


# --- the store, under the order's lock ----------------------------------------------------


def reservation(order_id: str, **fields: Any) -> ReserveInput:
    lines = [OrderLine.model_validate(line) for line in TV_AND_CABLES]
    values: dict[str, Any] = {
        "refund_id": unique_key("rf"),
        "order_id": order_id,
        "amount": 3000,
        "currency": "USD",
        "captured_amount": 33000,
        "lines": [lines[1]],
        "order_lines": lines,
        "reason_code": "damaged",
        "final_sale_categories": ["final_sale", "gift_card"],
        "seller_fault": True,
    }
    values.update(fields)
    return ReserveInput(**values)


async def test_concurrent_reservations_for_the_same_units_hold_them_once(
    db: asyncpg.Pool,
) -> None:
    store = PostgresRefundStore(db)
    order_id = unique_key("ord")
    asks = [reservation(order_id, reason_code=r) for r in ("damaged", "defective") * 10]
    results: list[ReserveResult] = await asyncio.gather(*(store.reserve(a) for a in asks))
    winners = [a.refund_id for a, r in zip(asks, results, strict=True) if r.reserved]
    assert len(winners) == 1
    for result in results:
        if not result.reserved:
            assert result.refused_because == (
                f"2 x CABLE of order {order_id} are already held or refunded by {winners[0]};"
                " 0 of 2 left"
            )
    # Retried, every request gets its first answer again.
    again = await asyncio.gather(*(store.reserve(a) for a in asks))
    assert [r.reserved for r in again] == [r.reserved for r in results]
    units = await db.fetchval(
        "SELECT sum(l.quantity) FROM refundflow.reservation_lines l JOIN"
        " refundflow.reservations r USING (refund_id) WHERE r.order_id = $1"
        " AND r.state <> 'released'",
        order_id,
    )
    assert units == 2


async def test_a_reservation_on_a_known_order_waits_for_the_one_in_progress(
    db: asyncpg.Pool,
) -> None:
    """The order's lock on an order the ledger already knows (the conflict path of its
    upsert): a second reservation for the same units waits until the first commits, then
    sees its hold. Without the wait both would read 'nothing held' and both would hold."""
    store = PostgresRefundStore(db)
    order_id = unique_key("ord")
    tv = OrderLine.model_validate(TV_AND_CABLES[0])
    assert (await store.reserve(reservation(order_id, amount=30000, lines=[tv]))).reserved
    first, second = reservation(order_id), reservation(order_id, reason_code="defective")
    async with db.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        assert (await reserving.hold(conn, first))[0].reserved  # holding the order's lock
        waiting = asyncio.create_task(store.reserve(second))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        await transaction.commit()
    result = await asyncio.wait_for(waiting, timeout=10)
    assert not result.reserved
    assert result.refused_because == (
        f"2 x CABLE of order {order_id} are already held or refunded by {first.refund_id};"
        " 0 of 2 left"
    )


async def test_a_refund_held_at_the_edge_is_found_without_waiting_for_the_order(
    db: asyncpg.Pool,
) -> None:
    """The workflow's reservation of a refund the edge held reads its first answer without
    the order's lock (`reserving.held_already`): it does not queue behind another request
    for the order, and the answer is the one the edge got; once released, the released
    answer, as under the lock."""
    store = PostgresRefundStore(db)
    order_id = unique_key("ord")
    held = reservation(order_id, auto_approve=True)
    edge, _ = await store.hold(held)
    assert edge.reserved
    other = reservation(order_id, reason_code="defective", lines=[], amount=1000)
    async with db.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await reserving.hold(conn, other)  # another request holds the order's lock
        found = await asyncio.wait_for(store.reserve(held), timeout=5)
        await transaction.rollback()
    assert found == edge  # its first answer, not a second hold
    assert (
        await db.fetchval(
            "SELECT count(*) FROM refundflow.reservations WHERE refund_id = $1", held.refund_id
        )
        == 1
    )

    await db.execute(
        "UPDATE refundflow.reservations SET state = 'released' WHERE refund_id = $1",
        held.refund_id,
    )
    released = await store.reserve(held)
    assert (released.reserved, released.remaining) == (False, 33000)


async def test_concurrent_amounts_never_reach_final_sale_value(db: asyncpg.Pool) -> None:
    store = PostgresRefundStore(db)
    order_id = unique_key("ord")
    order_lines = [OrderLine.model_validate(line) for line in GIFT_AND_PEN]
    asks = [
        reservation(
            order_id,
            amount=40,
            captured_amount=20100,
            lines=[],
            order_lines=order_lines,
            reason_code="changed_mind",
            seller_fault=False,
        )
        for _ in range(12)
    ]
    results = await asyncio.gather(*(store.reserve(a) for a in asks))
    assert sum(1 for r in results if r.reserved) == 2  # 40 + 40 of the pen's 100
    on_gift = await db.fetchval(
        "SELECT coalesce(sum(amount), 0) FROM refundflow.reservation_lines"
        " WHERE order_id = $1 AND sku = 'GIFT'",
        order_id,
    )
    assert on_gift == 0


async def test_a_reservation_whose_refund_never_started_is_released(
    refunds_v2: RefundClient, db: asyncpg.Pool
) -> None:
    store = PostgresRefundStore(db)
    ask = reservation(unique_key("ord"), refund_id=f"rf_{unique_key('orphan')[-12:]:0>24}")
    assert (await store.reserve(ask)).reserved
    # Only an opening status (as a respond-async answer writes, last_seq 0): still no refund.
    opening = batch(ask.refund_id, [1], RefundState.PENDING_REVIEW).projection
    await project_status(db, opening, None, 0)
    await db.execute(
        "UPDATE refundflow.reservations SET created_at = now() - interval '1 hour'"
        " WHERE refund_id = $1",
        ask.refund_id,
    )
    report = await refunds_v2.reconcile(ReconcileInput(grace_seconds=0))
    found = await (await refunds_v2.store()).findings(run_id=report.run_id, limit=10_000)
    assert [(f.kind, f.action) for f in found if f.refund_id == ask.refund_id] == [
        ("reservation_without_refund", "healed")
    ]
    state = await db.fetchval(
        "SELECT state FROM refundflow.reservations WHERE refund_id = $1", ask.refund_id
    )
    assert state == "released"
    assert (await store.reserve(reservation(ask.order_id))).reserved  # its units are free


async def test_a_request_reads_the_ledger_while_its_order_is_looked_up(
    refunds: RefundClient, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API starts the ledger read with the order's look-up (client/ledger_ahead.py): the
    answer waits for the slower of the two, not both in turn. A read ahead for another refund
    (another key) is not used: the ledger is read again for this one."""
    moments: list[str] = []
    read = PostgresRefundStore.state_and_holds

    async def noted_read(store: PostgresRefundStore, order_id: str, refund_id: str) -> Any:
        moments.append("ledger read")
        return await read(store, order_id, refund_id)

    monkeypatch.setattr(PostgresRefundStore, "state_and_holds", noted_read)
    order = await sandbox.order(amount=5000, category="general")
    request = make_request(order)
    async with refunds.ledger_read_ahead(order["order_id"], request.refund_key) as ahead:
        looked_up = await refunds.order(order["order_id"])
        moments.append("order looked up")
        status, asked_before = await refunds.request_again_or_new(
            request, order=looked_up, first_step=False, ahead=ahead
        )
    assert moments == ["ledger read", "order looked up"]
    assert (status.state, asked_before) == (RefundState.PENDING_REVIEW, False)

    moments.clear()
    other = make_request(order, amount=1000)
    async with refunds.ledger_read_ahead(order["order_id"], "another-key") as ahead:
        looked_up = await refunds.order(order["order_id"])
        moments.append("order looked up")
        with pytest.raises(InvalidRefundRequest, match="still refundable"):
            await refunds.request_again_or_new(other, order=looked_up, ahead=ahead)
    assert moments == ["ledger read", "order looked up", "ledger read"]


async def test_a_refusal_on_holds_read_ahead_waits_for_a_fresh_read(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    """Holds read ahead may be as old as the order's look-up: a hold released meanwhile has
    freed its units, so the request is not refused on the old read."""
    order = await sandbox.order(lines=TV_AND_CABLES)
    tv = [{"sku": "TV-55", "quantity": 1}]
    waiting = await refunds_v2.request(
        make_request(order, amount=None, lines=tv, reason_code="changed_mind")
    )
    later = make_request(order, amount=None, lines=tv)
    async with refunds_v2.ledger_read_ahead(order["order_id"], later.refund_key) as ahead:
        assert ahead is not None
        holds = (await ahead.result()).holds
        assert [hold.refund_id for hold in holds] == [waiting.refund_id]
        # Released while this request's order is looked up.
        await refunds_v2.cancel(waiting.refund_id, "cust_42", "found it")
        await eventually(
            lambda: db.fetchval(
                "SELECT state FROM refundflow.reservations WHERE refund_id = $1",
                waiting.refund_id,
            ),
            lambda state: state == "released",
        )
        looked_up = await refunds_v2.order(order["order_id"])
        status, _ = await refunds_v2.request_again_or_new(later, order=looked_up, ahead=ahead)
    assert status.state.value == "pending_review" and status.refund_id != waiting.refund_id
