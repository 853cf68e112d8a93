"""The reservation's transaction (`PostgresRefundStore.reserve`): the order's row lock, the
ledger's and the budgets' final word under it, and the hold written, in as few statements
as the locks allow.

Why so few: the edge reserves before a refund is acknowledged, so every statement here is a
round trip the caller waits for, and under load each one waits for the database to be
scheduled too. So: BEGIN; the order's lock; the customer's lock (only when a per-customer
budget applies); one read of everything the decision needs; one write of the hold; COMMIT.
The customer's lock is taken before the read knows whether this refund already holds (a
retry, or the workflow finding the edge's reservation): a second short wait per refund,
cheaper than a round trip to find out first.

Why the read comes after the locks, as its own statement: under READ COMMITTED each
statement sees what was committed when it began, so a read issued after a lock was granted
sees everything the previous holder of that lock wrote. A read in the same statement as the
lock would see the order as it was before the wait: a hold taken meanwhile would be missed.
The rules themselves are pure (workflows/ledger.py, workflows/budgets.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from activities import budgets, order_ledger
from workflows.budgets import BudgetUse, budget_refusal, customer_key
from workflows.ledger import Hold, LineHold, decide, value_asked
from workflows.models import OrderLine, ReserveInput, ReserveResult
from workflows.money_around import MoneyAround, money_around_refusal
from workflows.second_asks import asked_again, cut_by_a_reviewer

# Taking the order's row lock whether or not the order is known yet: an existing row is
# locked by the conflict (ON CONFLICT DO UPDATE locks the row even when its WHERE updates
# nothing), a new one by being ours until we commit. The first snapshot stands. The lock is
# FOR NO KEY UPDATE (the key is not in the SET), weaker than FOR UPDATE, which was used
# before: it still excludes every other reservation of the order, which is all it is for.
_LOCK_ORDER = """
    INSERT INTO refundflow.order_ledger (order_id, currency, captured_amount)
    VALUES ($1, $2, $3)
    ON CONFLICT (order_id) DO UPDATE SET captured_amount = refundflow.order_ledger.captured_amount
    WHERE false
"""

_LOCK_CUSTOMER = "SELECT pg_advisory_xact_lock($1, hashtext($2))"


# $1 order, $2 customer, $3 currency, $4 budget window (days), $5 this refund: the budgets'
# use is activities/budgets.USE itself (same placeholders), read with the rest; its sums are
# read even when the policy has no budgets (a few index lookups), then not used.
def _read_sql(with_around: bool) -> str:
    """The read; `with_around`: also the order's open findings of money refunded around
    refundflow, which only the hold decided under the locks needs (`held_already` reads a
    first answer)."""
    around = f",\n      {order_ledger.money_around_json('$1')} AS around" if with_around else ""
    return f"""
    SELECT ledger.captured_amount, used.on_order, used.by_customer,
      {order_ledger.lines_json("$1")} AS order_lines,
      (SELECT json_build_object('amount', amount, 'state', state,
                 'auto_approve_refused', auto_approve_refused,
                 'requested_amount', requested_amount, 'basis', basis, 'reason_code', reason_code,
                 'lines', (SELECT json_agg(json_build_array(l.sku, l.quantity))
                           FROM refundflow.reservation_lines l WHERE l.refund_id = $5))::text
       FROM refundflow.reservations WHERE refund_id = $5) AS mine,
      {order_ledger.holds_json("$1", "$5")} AS others{around}
    FROM refundflow.order_ledger ledger CROSS JOIN ({budgets.USE}) used
    WHERE ledger.order_id = $1
"""


_READ = _read_sql(with_around=False)
_READ_TO_DECIDE = _read_sql(with_around=True)

_ORDER_LINES = """
    INSERT INTO refundflow.order_lines (order_id, position, sku, quantity, unit_price, category)
    SELECT $1, t.position, t.sku, t.quantity, t.unit_price, t.category
    FROM unnest($2::int[], $3::text[], $4::int[], $5::bigint[], $6::text[])
         AS t(position, sku, quantity, unit_price, category)
"""

# One statement: the order's lines (when this reservation is the first to bring them), the
# reservation, and what it holds of each line. The foreign keys are checked at its end.
_WRITE_HOLD = f"""
    WITH order_lines AS ({_ORDER_LINES}),
    reservation AS (
      INSERT INTO refundflow.reservations (refund_id, order_id, amount, basis, reason_code,
                                           requested_by, auto_approved, auto_approve_refused,
                                           requested_amount)
      VALUES ($7, $1, $8, $9, $10, $11, $12, $13, $17)
    )
    INSERT INTO refundflow.reservation_lines (refund_id, order_id, sku, quantity, amount)
    SELECT $7, $1, t.sku, t.quantity, t.amount
    FROM unnest($14::text[], $15::int[], $16::bigint[]) AS t(sku, quantity, amount)
"""


@dataclass
class Mine:
    """This refund's own reservation, when it has one already."""

    amount: int
    state: str
    auto_approve_refused: str | None
    # What it was made for (None: held before these were kept); they never change after.
    requested_amount: int | None = None
    basis: str | None = None
    reason_code: str | None = None
    lines: list[list[Any]] | None = None
    """[sku, units] it holds (a line request's units stay; an amount's split may shrink)."""


class HeldForAnotherRequest(Exception):
    """This refund id holds a reservation made for a different request: its key was used
    before for another request whose start failed after its hold (the id comes from the
    order and the key, and nothing started answers for the key)."""

    def __init__(self, message: str, remaining: int) -> None:
        super().__init__(message)
        self.remaining = remaining
        """What the order still has beside every hold, this one included."""


@dataclass
class Locked:
    """The order as the locks let this reservation see it."""

    captured: int
    order_lines: list[OrderLine]
    lines_recorded: bool
    """False: the order's lines are not recorded yet (this reservation brings them)."""
    mine: Mine | None
    others: list[Hold]
    use: BudgetUse | None
    around: list[MoneyAround]
    """Open findings of money refunded on the order around refundflow."""


async def reserve(conn: asyncpg.Connection, request: ReserveInput) -> ReserveResult:
    """The workflow's reservation (PostgresRefundStore.reserve has the contract): the edge's
    hold when it made one (read without the locks), else `hold` in its own transaction. A
    hold made for another request declines this one, and it holds nothing."""
    try:
        first = await held_already(conn, request)
        if first is not None:
            return first
        async with conn.transaction():
            result, _ = await hold(conn, request)
            return result
    except HeldForAnotherRequest as err:
        return ReserveResult(reserved=False, remaining=err.remaining, refused_because=str(err))


async def hold(conn: asyncpg.Connection, request: ReserveInput) -> tuple[ReserveResult, bool]:
    """Hold `request`'s money and lines against its order, inside the caller's transaction
    (PostgresRefundStore.reserve has the contract). Idempotent per refund. Also whether the
    refund held before this call (a retry, or a request racing this one): under the order's
    lock, exactly one request makes the hold. Not in ReserveResult: that is the workflow's
    contract, which older workers must still read."""
    locked = await _lock_and_read(conn, request)
    # The order as first recorded decides, whatever a later snapshot says.
    known = request.model_copy(
        update={"captured_amount": locked.captured, "order_lines": locked.order_lines}
    )
    if locked.mine is not None:  # a retry, or the edge reserved it first: its answer stands
        _refuse_another_request(request, locked)
        await _record_order_lines(conn, known, locked)
        return _first_answer(locked, locked.mine), True
    verdict = decide(known, locked.others)
    if not verdict.allowed:
        await _record_order_lines(conn, known, locked)
        refused = verdict.refused_because
        return ReserveResult(
            reserved=False, remaining=verdict.remaining, refused_because=refused
        ), False
    withheld = _withheld(known, locked)
    await _write_hold(conn, known, verdict.lines, withheld, locked.lines_recorded)
    return ReserveResult(
        reserved=True, remaining=verdict.remaining, auto_approve_refused_because=withheld
    ), False


def _first_answer(locked: Locked, mine: Mine) -> ReserveResult:
    """A refund that already reserved (or was released): the answer it got, as it stands."""
    ok = mine.state != "released"
    held = sum(h.amount for h in locked.others)
    return ReserveResult(
        reserved=ok,
        remaining=locked.captured - held - (mine.amount if ok else 0),
        auto_approve_refused_because=mine.auto_approve_refused if ok else None,
    )


async def _record_order_lines(
    conn: asyncpg.Connection, known: ReserveInput, locked: Locked
) -> None:
    """The order's lines, when this request is the first to bring them: the first snapshot
    stands, whatever the answer (a hold writes them with itself, `_write_hold`)."""
    if not locked.lines_recorded:
        await conn.execute(_ORDER_LINES, known.order_id, *_line_columns(known.order_lines))


async def _lock_and_read(conn: asyncpg.Connection, request: ReserveInput) -> Locked:
    """The order's lock, the customer's when a per-customer budget applies (always after
    the order's, never before: two reservations cannot wait for each other), then one read
    of the order's ledger, this refund's own hold and the budgets' use."""
    await conn.execute(_LOCK_ORDER, request.order_id, request.currency, request.captured_amount)
    # The budgets have a say only on a refund the policy would approve by itself.
    budget = request.budget if request.auto_approve else None
    customer = customer_key(request.requested_by) if request.requested_by else None
    if budget is not None and budget.per_customer is not None and customer is not None:
        await conn.execute(_LOCK_CUSTOMER, budgets.CUSTOMER_LOCK, customer)
    window = budget.window_days if budget is not None else 0
    row = await conn.fetchrow(
        _READ_TO_DECIDE, request.order_id, customer, request.currency, window, request.refund_id
    )
    return _as_read(row, request, counts_budgets=budget is not None)


def _as_read(row: asyncpg.Record, request: ReserveInput, counts_budgets: bool) -> Locked:
    recorded = order_ledger.LINES.validate_json(row["order_lines"])
    mine = json.loads(row["mine"]) if row["mine"] is not None else None
    return Locked(
        captured=row["captured_amount"],
        order_lines=recorded or list(request.order_lines),
        lines_recorded=bool(recorded) or not request.order_lines,
        mine=Mine(**mine) if mine is not None else None,
        others=order_ledger.HOLDS.validate_json(row["others"]),
        use=BudgetUse(order=row["on_order"], customer=row["by_customer"])
        if counts_budgets
        else None,
        around=order_ledger.AROUND.validate_json(row.get("around") or "[]"),
    )


async def held_already(conn: asyncpg.Connection, request: ReserveInput) -> ReserveResult | None:
    """The first answer of a refund that holds (or held) already, read without a lock or a
    transaction; None: it has no reservation yet, and only `hold` under the locks decides.

    Why: a refund started through RefundClient was held at the edge, so the workflow's
    reservation only ever finds that hold. Its answer is final once written (the first
    answer stands), so reading it needs no lock: one statement instead of BEGIN, the
    locks, the read and COMMIT, for every such refund. The lines it held were recorded with
    it. `remaining` is what the others held as this read saw them, as under the lock."""
    row = await conn.fetchrow(_READ, request.order_id, None, request.currency, 0, request.refund_id)
    if row is None or row["mine"] is None:
        return None
    read = _as_read(row, request, counts_budgets=False)
    assert read.mine is not None
    _refuse_another_request(request, read)
    return _first_answer(read, read.mine)


def _refuse_another_request(request: ReserveInput, locked: Locked) -> None:
    """HeldForAnotherRequest when this refund's hold was made for a request other than
    `request`.

    Why: the first answer stands for a retry of the same request, never for another one. A
    review found the key sent again with another request after a failed start: the second
    request was answered with the first one's hold and paid on it (one kettle refunded
    twice, and the toaster it held recorded as refunded)."""
    mine = locked.mine
    assert mine is not None
    basis = None if request.reason_code is None else ("lines" if request.lines else "amount")
    asked = sorted([line.sku, line.quantity] for line in request.lines)
    differs = [
        what
        for what, stored, now in (
            ("reason", mine.reason_code, request.reason_code),
            ("value asked", mine.requested_amount, value_asked(request)),
            ("lines or amount", mine.basis, basis),
        )
        if stored is not None and stored != now
    ]
    if mine.basis == "lines" and mine.lines and sorted(mine.lines) != asked:
        differs.append("lines")
    if differs:
        raise HeldForAnotherRequest(
            f"refund {request.refund_id} holds a reservation made for a different request"
            f" on order {request.order_id} (its {', '.join(differs)})",
            locked.captured - sum(h.amount for h in locked.others) - mine.amount,
        )


def _withheld(request: ReserveInput, locked: Locked) -> str | None:
    """Why the refund waits for a reviewer although its policy would approve it by itself:
    a budget is spent, another refund of the order asks for just this, or a reviewer
    approved one of its refunds for less than asked, or money was refunded on the order
    around refundflow (None: none of these)."""
    if not request.auto_approve:
        return None
    return (
        _budget_refusal(request, locked.use)
        or asked_again(request, locked.others)
        or cut_by_a_reviewer(request, locked.others)
        or money_around_refusal(request.order_id, locked.around)
    )


def _budget_refusal(request: ReserveInput, use: BudgetUse | None) -> str | None:
    """Why the budgets withhold the auto-approval `request` asks for (None: they allow it,
    or it asks for none, or its policy has no budgets)."""
    if use is None or request.budget is None:
        return None
    return budget_refusal(
        request.amount,
        request.budget,
        use,
        order_id=request.order_id,
        customer=customer_key(request.requested_by) if request.requested_by else None,
        currency=request.currency,
    )


Columns = tuple[list[int], list[str], list[int], list[int], list[str]]


def _line_columns(lines: list[OrderLine]) -> Columns:
    """The order's lines as the columns `unnest` takes, in the order's own order."""
    return (
        list(range(len(lines))),
        [line.sku for line in lines],
        [line.quantity for line in lines],
        [line.unit_price for line in lines],
        [line.category for line in lines],
    )


async def _write_hold(
    conn: asyncpg.Connection,
    request: ReserveInput,
    lines: list[LineHold],
    auto_approve_refused: str | None,
    lines_recorded: bool,
) -> None:
    """The reservation and what it holds of each line; who asked, and whether it is
    auto-approved (the policy would, and no budget withheld it), so later requests count
    it against the budgets; the order's lines too when this reservation brings them."""
    basis = None if request.reason_code is None else ("lines" if request.lines else "amount")
    order_lines = [] if lines_recorded else request.order_lines
    await conn.execute(
        _WRITE_HOLD,
        request.order_id,
        *_line_columns(order_lines),
        request.refund_id,
        request.amount,
        basis,
        request.reason_code,
        customer_key(request.requested_by) if request.requested_by else None,
        request.auto_approve and auto_approve_refused is None,
        auto_approve_refused,
        [x.sku for x in lines],
        [x.quantity for x in lines],
        [x.amount for x in lines],
        value_asked(request),
    )
