"""Invariant 9 on the real stack: money is guarded per order line, not per request. The
issue's scenarios through RefundClient (the edge), concurrent reservations straight at the
store under the order's lock, and the ledger as status, report and reconciliation see it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import aiohttp
import asyncpg
import pytest

from activities import reserving
from activities.pg_store import PostgresRefundStore
from activities.projection import project_status
from client import render, render_findings
from client.errors import InvalidRefundRequest, RefundActionRefused
from client.refund_client import RefundClient
from client.refund_ids import default_refund_key
from client.report import build_report
from client.review_context import review_context
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox, unique_key
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_audit_store import batch
from tests.integration.test_refund_flow import make_request
from workflows.models import OrderLine, ReconcileInput, ReserveInput, ReserveResult, StatusView
from workflows.states import Awaiting, RefundState

pytestmark = pytest.mark.stack

TV_AND_CABLES = [
    {"sku": "TV-55", "quantity": 1, "unit_price": 30000, "category": "electronics"},
    {"sku": "CABLE", "quantity": 2, "unit_price": 1500, "category": "general"},
]
GIFT_AND_PEN = [
    {"sku": "GIFT", "quantity": 1, "unit_price": 20000, "category": "gift_card"},
    {"sku": "PEN", "quantity": 1, "unit_price": 100, "category": "general"},
]
CABLES = [{"sku": "CABLE", "quantity": 2}]


def cables(order: dict[str, Any], **fields: Any) -> Any:
    return make_request(order, amount=None, lines=CABLES, **fields)


async def paid(sandbox: Sandbox, order_id: str) -> int:
    return sum(r["amount"] for r in await sandbox.refunds(order_id) if r["status"] != "failed")


async def test_the_same_cables_from_three_channels_are_refunded_once(
    refunds_v2: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(lines=TV_AND_CABLES)
    first = await refunds_v2.request(cables(order, channel="web", reason_code="damaged"))
    await wait_for_state(refunds_v2, first.refund_id, "completed")
    held = (
        f"2 x CABLE of order {order['order_id']} are already held or refunded by"
        f" {first.refund_id}; 0 of 2 left"
    )
    again = [
        cables(order, channel="support", refund_key="ticket-1", reason_code="damaged"),
        cables(order, channel="app", reason_code="defective"),
    ]
    for request in again:
        answer = await refunds_v2.eligibility(request)
        assert answer.refused_at_request and answer.held_by == [first.refund_id]
        with pytest.raises(InvalidRefundRequest) as refused:
            await refunds_v2.request(request)
        assert str(refused.value) == held
    # More units than the order has: told that the others were refunded too (a trial read
    # only "order … has 2").
    five = make_request(order, amount=None, lines=[{"sku": "CABLE", "quantity": 5}])
    too_many = (
        f"cannot refund 5 x CABLE: order {order['order_id']} has 2; 2 of them are already"
        f" held or refunded by {first.refund_id}: 0 left"
    )
    with pytest.raises(InvalidRefundRequest) as refused:
        await refunds_v2.request(five)
    assert str(refused.value) == too_many
    assert (await refunds_v2.eligibility(five)).summary == f"Not eligible: {too_many}."
    assert await paid(sandbox, order["order_id"]) == 3000

    # The TV is still refundable, and the order's ledger shows who refunded the cables.
    tv = make_request(order, amount=None, lines=[{"sku": "TV-55", "quantity": 1}])
    assert (await refunds_v2.eligibility(tv)).eligible
    ledger = await refunds_v2.order_ledger(order["order_id"])
    assert ledger is not None and ledger.refunded == 3000
    cable = next(line for line in ledger.lines if line.sku == "CABLE")
    assert (cable.refunded_quantity, cable.refunded_amount, cable.refunds) == (
        2,
        3000,
        [first.refund_id],
    )
    shown = render.status(await refunds_v2.status(first.refund_id), ledger)
    assert "order ledger" in shown and f"by {first.refund_id}" in shown


async def test_three_channels_at_once_get_one_refund_and_two_refusals_naming_it(
    refunds_v2: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(lines=TV_AND_CABLES)
    asks = [
        cables(order, channel="web", reason_code="damaged"),
        cables(order, channel="support", refund_key=unique_key("ticket"), reason_code="damaged"),
        cables(order, channel="app", reason_code="defective"),
    ]
    answers = await asyncio.gather(*(refunds_v2.request(a) for a in asks), return_exceptions=True)
    started = [a for a in answers if isinstance(a, StatusView)]
    refused = [a for a in answers if isinstance(a, InvalidRefundRequest)]
    assert len(started) == 1 and len(refused) == 2, answers
    for error in refused:
        assert f"already held or refunded by {started[0].refund_id}" in str(error)
    await wait_for_state(refunds_v2, started[0].refund_id, "completed")
    assert await paid(sandbox, order["order_id"]) == 3000


async def test_the_same_amount_asked_again_under_another_key_waits_for_a_reviewer(
    refunds_v2: RefundClient, sandbox: Sandbox
) -> None:
    # The web form's Idempotency-Key, then support for the same customer with none (the
    # request's content is its key): two keys, one request. Amounts are not units, so only
    # this check stands between it and a second payment.
    customer = unique_key("cust")
    order = await sandbox.order(lines=TV_AND_CABLES, customer_id=customer)
    web = make_request(order, amount=500, requested_by=customer)
    first = await refunds_v2.request(web)
    await wait_for_state(refunds_v2, first.refund_id, "completed")
    content_key = default_refund_key(order["order_id"], 500, None, "damaged")
    support = make_request(
        order, amount=500, requested_by=customer, channel="support", refund_key=content_key
    )
    ahead = await refunds_v2.eligibility(support)
    said = (
        f"refund {first.refund_id} (paid) asked for the same 5.00 USD of order {order['order_id']}"
    )
    assert ahead.outcome == "needs_review", ahead
    assert (ahead.auto_approve_refused_because or "").startswith(said)
    second = await refunds_v2.request(support)
    assert second.refund_id != first.refund_id
    assert (second.state.value, second.awaiting.value) == ("pending_review", "reviewer")
    assert any(note.startswith(said[:1].upper() + said[1:]) for note in second.policy_notes)
    # A different reason is another request: the policy pays it by itself.
    other = await refunds_v2.request(make_request(order, amount=500, reason_code="defective"))
    await wait_for_state(refunds_v2, other.refund_id, "completed")
    assert await paid(sandbox, order["order_id"]) == 1000
    # Lines: one cable of two, asked twice under two keys. The ledger has a unit to spare,
    # so only this stands between the second and a payment.
    order = await sandbox.order(lines=TV_AND_CABLES)
    cable = [{"sku": "CABLE", "quantity": 1}]
    one = await refunds_v2.request(make_request(order, amount=None, lines=cable))
    await wait_for_state(refunds_v2, one.refund_id, "completed")
    again = await refunds_v2.request(make_request(order, amount=None, lines=cable))
    assert (again.state.value, again.awaiting.value) == ("pending_review", "reviewer")
    assert any(one.refund_id in note for note in again.policy_notes)
    assert await paid(sandbox, order["order_id"]) == 1500


async def test_a_gift_card_is_not_paid_for_changed_mind_by_amounts(
    refunds_v2: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(lines=GIFT_AND_PEN)
    order_id = order["order_id"]
    for amount in (5000, 4999, 4998, 4997, 106):
        request = make_request(order, amount=amount, reason_code="changed_mind")
        answer = await refunds_v2.eligibility(request)
        assert not answer.eligible and answer.refused_at_request
        with pytest.raises(InvalidRefundRequest) as refused:
            await refunds_v2.request(request)
        assert str(refused.value) == (
            f"only 1.00 USD of order {order_id} is still refundable for changed_mind:"
            " final-sale lines (GIFT) are refunded only when the seller is at fault"
        )
    pen = await refunds_v2.request(make_request(order, amount=100, reason_code="changed_mind"))
    await wait_for_state(refunds_v2, pen.refund_id, "completed")
    with pytest.raises(InvalidRefundRequest, match=f"held or refunded by {pen.refund_id}"):
        await refunds_v2.request(make_request(order, amount=1, reason_code="changed_mind"))
    assert await paid(sandbox, order_id) == 100


async def test_a_cancelled_refund_frees_its_units(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order = await sandbox.order(lines=TV_AND_CABLES)
    tv = [{"sku": "TV-55", "quantity": 1}]
    waiting = await refunds_v2.request(
        make_request(order, amount=None, lines=tv, reason_code="changed_mind")
    )
    assert waiting.state.value == "pending_review"  # 255.00 is above the auto-approve limit
    with pytest.raises(InvalidRefundRequest, match=f"1 x TV-55 .* by {waiting.refund_id}"):
        await refunds_v2.request(make_request(order, amount=None, lines=tv))
    await refunds_v2.cancel(waiting.refund_id, "cust_42", "found it")
    await wait_for_state(refunds_v2, waiting.refund_id, "cancelled")
    await eventually(
        lambda: db.fetchval(
            "SELECT state FROM refundflow.reservations WHERE refund_id = $1", waiting.refund_id
        ),
        lambda state: state == "released",
    )
    later = await refunds_v2.request(make_request(order, amount=None, lines=tv))
    assert later.state.value == "pending_review"


async def test_eligibility_of_a_request_already_made_names_its_refund(
    refunds_v2: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(lines=TV_AND_CABLES)
    asked = cables(order, reason_code="damaged")
    first = await refunds_v2.request(asked)
    await wait_for_state(refunds_v2, first.refund_id, "completed")
    again = await refunds_v2.eligibility(asked)
    assert (again.already_made, again.already_made_state) == (first.refund_id, "completed")
    shown = render.eligibility(again)
    assert shown.startswith(f"already asked: refund {first.refund_id} is completed;"), shown
    # What follows is the answer for asking again under another key: the cables are paid
    # (it said "Eligible" of them, "as if it had not been asked", a trial).
    assert "Asked again under another key:\nNot eligible" in shown, shown
    assert not again.eligible and first.refund_id in "\n".join(again.held_by), again
    other = await refunds_v2.eligibility(cables(order, reason_code="defective"))
    assert other.already_made is None and not other.eligible


async def test_the_ledger_shows_the_money_held_and_paid_for_a_line_not_its_worth(
    refunds_v2: RefundClient, sandbox: Sandbox
) -> None:
    order = await sandbox.order(lines=TV_AND_CABLES)
    tv = [{"sku": "TV-55", "quantity": 1}]
    waiting = await refunds_v2.request(
        make_request(order, amount=None, lines=tv, reason_code="changed_mind")
    )
    ledger = await refunds_v2.order_ledger(order["order_id"])
    assert ledger is not None
    line = next(line for line in ledger.lines if line.sku == "TV-55")
    # 300.00 of worth, 255.00 held after the restocking fee: the line says what is held.
    assert (line.value, line.held_quantity, line.held_amount) == (30000, 1, 25500)
    assert ledger.held == 25500

    await refunds_v2.approve(waiting.refund_id, "li", amount=150, role="lead")
    await wait_for_state(refunds_v2, waiting.refund_id, "completed")
    ledger = await refunds_v2.order_ledger(order["order_id"])
    assert ledger is not None and (ledger.held, ledger.refunded) == (0, 150)
    line = next(line for line in ledger.lines if line.sku == "TV-55")
    # The unit is closed (invariant 9), but 1.50 was paid for it, not its 300.00.
    assert (line.refunded_quantity, line.refunded_amount) == (1, 150)
    shown = render.order_ledger(ledger)
    assert any("TV-55" in row and "refunded 1 x, 1.50 USD" in row for row in shown), shown
    # The customer is told it was less than they asked for, and that the rest is not coming.
    done = await refunds_v2.status(waiting.refund_id)
    assert done.message.startswith(
        "Your refund of 1.50 USD has been issued to your original payment method. That is"
        " less than the 300.00 USD you asked for: the rest is not refunded."
    ), done.message
    tracked = await refunds_v2.track(waiting.refund_id)  # `track --json` says it too
    assert (tracked["amount"], tracked["asked_amount"]) == (150, 30000)


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


# --- the same ledger in reconciliation and the report -------------------------------------


async def test_money_around_the_ledger_is_flagged_and_counted_as_duplicate(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    order = await sandbox.order(lines=TV_AND_CABLES)
    first = await refunds_v2.request(cables(order))
    await wait_for_state(refunds_v2, first.refund_id, "completed")
    before = await build_report(db, since)
    assert before.duplicate_refunds == 0

    # Around refundflow: the same cables refunded again (ledger rows written by hand) and
    # the provider paying for it.
    bypass = unique_key("rf_bypass")
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO refundflow.reservations (refund_id, order_id, amount, state, basis,"
            " reason_code) VALUES ($1, $2, 3000, 'consumed', 'lines', 'defective')",
            bypass,
            order["order_id"],
        )
        await conn.execute(
            "INSERT INTO refundflow.reservation_lines (refund_id, order_id, sku, quantity,"
            " amount) VALUES ($1, $2, 'CABLE', 2, 3000)",
            bypass,
            order["order_id"],
        )
        await conn.execute(
            "INSERT INTO sandbox.refunds (provider_refund_id, idempotency_key, request_hash,"
            " payment_reference, order_id, amount, currency, status, metadata)"
            " SELECT 're_around' || substr(md5(random()::text), 1, 8), 'manual', 'x',"
            " payment_reference, order_id, 4000, currency, 'succeeded', '{}'::jsonb"
            " FROM sandbox.refunds WHERE metadata->>'refund_id' = $1",
            first.refund_id,
        )
    report = await refunds_v2.reconcile(ReconcileInput(grace_seconds=0, heal=False))
    found = await (await refunds_v2.store()).findings(run_id=report.run_id, limit=10_000)
    mine = {f.kind: f.details for f in found if f.order_id == order["order_id"]}
    assert mine["units_refunded_twice"]["refunds"] == [first.refund_id, bypass]
    assert mine["provider_money_above_ledger"]["provider_paid"] == 3000 + 4000
    assert mine["provider_money_above_ledger"]["ledger"] == 6000

    # The report counts the refund that refunded the cables again, and the order the
    # provider paid beyond the ledger for.
    after = await build_report(db, since)
    assert after.duplicate_refunds == 2


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


async def test_money_paid_around_refundflow_stays_flagged_while_a_refused_refund_holds(
    refunds: RefundClient, sandbox: Sandbox, http: aiohttp.ClientSession, faults: SandboxAdmin
) -> None:
    """A trial: 45.00 of an 80.00 order paid, 10.00 refunded at the provider's dashboard (no
    refund id), then a 35.00 refund the provider refused (only 25.00 left there). Its hold
    made the ledger 80.00, above the 55.00 the provider paid, and the finding vanished,
    though 10.00 had gone out around refundflow. A hold accounts only for what the
    provider paid for its own refund."""
    order = await sandbox.order(amount=8000)
    first = await refunds.request(make_request(order, amount=4500))
    await wait_for_state(refunds, first.refund_id, "completed")
    dashboard = {
        "payment_reference": order["payment_reference"],
        "amount": 1000,
        "currency": "USD",
        "metadata": {},
    }
    headers = {"Idempotency-Key": unique_key("dashboard")}
    async with http.post(
        f"{sandbox.base}/payments/v1/refunds", json=dashboard, headers=headers
    ) as made:
        assert made.status == 201, await made.text()
        dashboard_refund = (await made.json())["id"]
    refused = await refunds.request(make_request(order, amount=3500))
    await eventually(
        lambda: refunds.status(refused.refund_id),
        lambda view: view.awaiting is Awaiting.OPERATOR,
    )
    # No reconciliation has run, so no finding: the workflow asks the provider itself.
    with pytest.raises(RefundActionRefused) as fresh:
        await refunds.operator_paid_elsewhere(refused.refund_id, "omar", "store credit SC-77")
    assert (
        f"order {order['order_id']} captured 80.00 USD; 55.00 USD of it is paid or held for"
        " other refunds, 10.00 USD of that paid or payable by the provider for no refund of"
        " refundflow's (made at its dashboard?); 25.00 USD is left, less than this refund's"
        " 35.00 USD"
    ) in str(fresh.value)
    assert (await refunds.status(refused.refund_id)).awaiting is Awaiting.OPERATOR
    report = await refunds.reconcile(ReconcileInput(grace_seconds=0, heal=False))
    found = await (await refunds.store()).findings(run_id=report.run_id, limit=10_000)
    mine = [f for f in found if f.order_id == order["order_id"]]
    assert [f.kind for f in mine] == ["provider_money_above_ledger"], mine
    assert mine[0].details["provider_paid"] == 5500
    assert (mine[0].details["accounted_for"], mine[0].details["ledger"]) == (4500, 8000)
    shown = render_findings.findings(mine)
    # Trial: "ledger 100.00; accounted_for 0.00; provider_paid 100.00" read as nothing
    # above the ledger; what is not accounted for is said.
    assert "ledger 80.00 USD; unaccounted 10.00 USD; accounted_for 45.00 USD" in shown, shown
    # The refused refund's status, where an operator decides, notes the order's finding.
    context = await review_context(refunds, await refunds.status(refused.refund_id))
    assert [f.kind for f in context.open_findings] == ["provider_money_above_ledger"]
    note = render_findings.open_finding(context.open_findings[0])
    assert f"provider_money_above_ledger for order {order['order_id']}" in note
    assert f"anomalies --order {order['order_id']}" in note
    # Paying the refused refund elsewhere would take the order's payouts to 90.00 of 80.00:
    # refused while the finding stands, unless the operator says that money is not this.
    with pytest.raises(RefundActionRefused) as over:
        await refunds.operator_paid_elsewhere(refused.refund_id, "omar", "store credit SC-77")
    said = str(over.value)
    assert f"the provider has paid 55.00 USD of order {order['order_id']}" in said
    assert "this refund's 35.00 USD elsewhere too makes 90.00 USD of the 80.00 USD" in said
    assert "--despite-findings" in said
    assert (await refunds.status(refused.refund_id)).state is RefundState.REFUNDING
    # The override passes the finding, not the workflow's own count: 90.00 is still refused.
    with pytest.raises(RefundActionRefused) as still:
        await refunds.operator_paid_elsewhere(
            refused.refund_id, "omar", "store credit SC-77", despite_findings=True
        )
    assert "25.00 USD is left, less than this refund's 35.00 USD" in str(still.value)
    # The bank returns the dashboard's 10.00: the finding is stale until the next run, the
    # edge still refuses by it, and the override is what a person uses for that.
    await faults.reverse(dashboard_refund)
    await eventually(lambda: _provider_status(http, sandbox, dashboard_refund), "failed".__eq__)
    with pytest.raises(RefundActionRefused) as stale:
        await refunds.operator_paid_elsewhere(refused.refund_id, "omar", "store credit SC-77")
    assert "the provider has paid 55.00 USD" in str(stale.value)  # the finding's, at the edge
    done = await refunds.operator_paid_elsewhere(
        refused.refund_id, "omar", "store credit SC-77", despite_findings=True
    )
    assert done.state is RefundState.COMPLETED
    assert "recorded despite an open provider_money_above_ledger finding" in (
        done.timeline[-2].reason
    ), done.timeline[-2:]
    # Asked again once closed: the refund says it is closed, not the finding's sums (which
    # counted its own money twice, and told the operator to cancel it: a trial).
    with pytest.raises(RefundActionRefused) as closed:
        await refunds.operator_paid_elsewhere(refused.refund_id, "omar", "store credit SC-77")
    assert "provider has paid" not in str(closed.value)
    # How it closed, so the operator knows nobody needs to act (a trial read a bare "closed").
    assert str(closed.value) == (
        f"refused: refund {refused.refund_id} is closed, completed: nothing is left to do on it"
    )


async def _provider_status(
    http: aiohttp.ClientSession, sandbox: Sandbox, provider_refund_id: str
) -> str:
    """The provider's status of one of its refunds (a reversal lands a moment later)."""
    async with http.get(f"{sandbox.base}/payments/v1/refunds/{provider_refund_id}") as got:
        status: str = (await got.json())["status"]
        return status


async def test_paid_elsewhere_counts_another_refund_paid_both_elsewhere_and_by_the_provider(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    """A review: 100.00 captured; refund Y's 40.00 recorded as paid elsewhere, then paid by
    the provider too (at its dashboard, with Y's id): 80.00 out. A second refused refund's
    45.00 paid elsewhere would make 125.00: the workflow refuses it, with no finding yet."""
    order = await sandbox.order(amount=10000)
    await faults.set_faults({"payment.refuse": "expired_card"})
    refused = []
    for amount in (4000, 4500):  # not the same amount twice: that goes to a reviewer
        started = await refunds.request(make_request(order, amount=amount))
        refused.append(started.refund_id)
        await eventually(
            partial(refunds.status, started.refund_id),
            lambda view: view.awaiting is Awaiting.OPERATOR,
        )
    await faults.clear_faults()
    first, second = refused
    done = await refunds.operator_paid_elsewhere(first, "omar", "store credit SC-1")
    assert done.state is RefundState.COMPLETED
    await sandbox.provider_refund(order, first, 4000)
    with pytest.raises(RefundActionRefused) as over:
        await refunds.operator_paid_elsewhere(second, "omar", "store credit SC-2")
    assert (
        f"order {order['order_id']} captured 100.00 USD; 80.00 USD of it is paid or held for"
        " other refunds; 20.00 USD is left, less than this refund's 45.00 USD"
    ) in str(over.value)
    assert (await refunds.status(second)).awaiting is Awaiting.OPERATOR


async def test_no_provider_payment_takes_an_order_with_money_paid_elsewhere_above_its_capture(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, http: aiohttp.ClientSession
) -> None:
    """A trial: 100.00 captured; 60.00 recorded as paid elsewhere; 40.00 refunded at the
    provider's dashboard (which allowed it: it knew of 0.00 out); then a 40.00 request was
    auto-approved and paid by the provider: 140.00 out. The provider cannot know of money
    paid outside it, so nothing is sent to it: an operator decides. (45.00 here: 60.00
    would go to a reviewer first.)"""
    order = await sandbox.order(amount=10000)
    first = await _refused_then_paid_elsewhere(refunds, faults, order, 4500)
    dashboard = {"payment_reference": order["payment_reference"], "amount": 4000,
                 "currency": "USD", "metadata": {}}  # fmt: skip
    headers = {"Idempotency-Key": unique_key("dashboard")}
    async with http.post(f"{sandbox.base}/payments/v1/refunds", json=dashboard, headers=headers):
        pass
    later = await refunds.request(make_request(order, amount=4000))
    stopped = await eventually(
        partial(refunds.status, later.refund_id), lambda v: v.awaiting is Awaiting.OPERATOR
    )
    assert (stopped.provider_failure or "").startswith(
        f"not sent to the provider: order {order['order_id']} captured 100.00 USD; 85.00 USD of"
        f" it is paid or held for other refunds, of that 45.00 USD paid elsewhere"
        f" ({first.refund_id}) and 40.00 USD paid or payable by the provider, so this refund's"
        " 40.00 USD would make 125.00 USD"
    ), stopped.provider_failure
    provider = await sandbox.refunds(order["order_id"])
    assert [r["amount"] for r in provider if r["status"] != "failed"] == [4000]  # the dashboard's
    # An operator's retry meets the same count: still nothing sent.
    retried = await refunds.operator_retry(later.refund_id, "omar")
    assert (
        retried.awaiting is Awaiting.OPERATOR and len(await sandbox.refunds(order["order_id"])) == 1
    )
    cancelled = await refunds.operator_cancel(later.refund_id, "omar", "paid at the dashboard")
    assert cancelled.state is RefundState.CANCELLED
    # Within the capture it is paid: 45.00 elsewhere, 10.00 at the dashboard, then 40.00.
    roomy = await sandbox.order(amount=10000)
    await _refused_then_paid_elsewhere(refunds, faults, roomy, 4500)
    await sandbox.provider_refund(roomy, "rf_" + "f" * 24, 1000)  # not one of ours
    paid = await refunds.request(make_request(roomy, amount=4000))
    assert (await wait_for_state(refunds, paid.refund_id, "completed")).provider_failure is None


async def _refused_then_paid_elsewhere(
    refunds: RefundClient, faults: SandboxAdmin, order: dict[str, Any], amount: int
) -> StatusView:
    """A refund of `amount` the provider refuses, then recorded as paid elsewhere."""
    await faults.set_faults({"payment.refuse": "expired_card"})
    refused = await refunds.request(make_request(order, amount=amount))
    await eventually(
        partial(refunds.status, refused.refund_id), lambda v: v.awaiting is Awaiting.OPERATOR
    )
    await faults.clear_faults()
    return await refunds.operator_paid_elsewhere(refused.refund_id, "omar", "SEPA TX-3")
