"""The order ledger's rule (invariant 9), pure: what every refund of an order holds, per order
line, and whether one more request fits. No I/O: the store runs `decide` under the order's
row lock (the final word) and the edge and `eligibility` run `claim` before anything starts,
on the same holds, so a refusal reads the same wherever it is made.

- A line refund holds units of its lines, and their whole value (fees included: the units
  are gone, so the value a fee kept back is not reachable by a later amount-only refund).
- An amount-only refund on an order with lines holds value (what was asked for, fees
  included, for the same reason), allocated over the lines by `allocate`: in proportion to
  what each line still has, so it never takes more from a line than is left on it. The part
  of the capture no line accounts for (shipping, ...) is one more bucket, `NOT_A_LINE`.
- Final-sale lines are out of reach of an amount-only refund whose reason is not the
  seller's fault: such a refund is allocated over the other lines only.
- Held and refunded count alike; a cancelled refund's units are free again (its reservation
  is released and no longer a hold).
- The order total is checked too (money, after fees): the sum of holds never exceeds the
  capture. A refund started before the ledger (no reason code) is checked on it alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from workflows.models import (
    AutoApproveBudget,
    OrderLine,
    OrderSnapshot,
    ReserveInput,
    ResolvedRefund,
)
from workflows.money import format_minor
from workflows.validation import RefundInputError, TooManyUnits

NOT_A_LINE = "_order"
"""The ledger's name for the part of the capture that no order line accounts for. Not a
valid SKU (SKUs start with a letter or digit), so it never collides with one."""
MAX_NAMED = 3
"""A refusal names at most this many refunds (and says how many more)."""


class _Pure(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LineHold(_Pure):
    """What one refund holds of one order line."""

    sku: str
    quantity: int = 0
    """Units (0 for an amount-only refund's share)."""
    amount: int
    """Value of the line held, in minor units."""


class Hold(_Pure):
    """One refund's reservation on the order (held, or consumed once paid)."""

    refund_id: str
    state: Literal["held", "consumed"] = "held"
    amount: int
    """Money held against the capture (what the refund pays, after fees)."""
    lines: list[LineHold] = []
    """Empty for refunds started before the ledger and for orders without lines."""
    basis: Literal["lines", "amount"] | None = None
    """What the refund asked for: lines, or an amount (None: reserved before the ledger)."""
    reason_code: str | None = None
    requested_amount: int | None = None
    """The value it asked for, before fees, as asked (`amount` is after fees, and becomes what
    was paid); None for holds recorded before it was kept."""
    approved_less: bool = False
    """A reviewer approved its refund (by amount or lines) for less than it held: set at the
    approval (activities/order_ledger.follow_refund), kept once paid."""


class Claim(_Pure):
    """What a request would hold of the order's lines, or why it cannot."""

    lines: list[LineHold] = []
    refused_because: str | None = None
    held_by: list[str] = []
    """The refunds holding what this request asked for, when refused."""


class Verdict(_Pure):
    """The store's answer: the claim checked against the lines and the order total."""

    allowed: bool
    remaining: int
    """Money still refundable on the order, after this request when allowed."""
    lines: list[LineHold] = []
    refused_because: str | None = None


def allocate(amount: int, buckets: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Split `amount` over `buckets` (name, capacity) in proportion to their capacities.

    Integer minor units, largest remainder: each bucket first gets the floor of its exact
    share; the units left over (fewer than the number of buckets) go one each to the
    buckets with the largest fractional parts, ties to the earlier bucket. So the shares
    add up to `amount` exactly, each differs from its exact share by less than one minor
    unit, no share exceeds its capacity, and the same input always gives the same split.
    ValueError when `amount` is negative or more than the capacities add up to.
    """
    total = sum(capacity for _, capacity in buckets)
    if amount < 0 or any(capacity < 0 for _, capacity in buckets) or amount > total:
        raise ValueError(f"cannot allocate {amount} over capacities adding up to {total}")
    if amount == 0:
        return [(name, 0) for name, _ in buckets]
    shares = [amount * capacity // total for _, capacity in buckets]
    remainders = [amount * capacity % total for _, capacity in buckets]
    left_over = amount - sum(shares)
    # Sorted by the largest remainder first, then by position: deterministic ties.
    for index in sorted(range(len(buckets)), key=lambda i: (-remainders[i], i))[:left_over]:
        shares[index] += 1
    return [(name, share) for (name, _), share in zip(buckets, shares, strict=True)]


def reserve_input(
    refund_id: str,
    order: OrderSnapshot,
    resolved: ResolvedRefund,
    amount: int,
    reason_code: str,
    *,
    final_sale_categories: Iterable[str],
    seller_fault: bool,
    requested_by: str | None = None,
    auto_approve: bool = False,
    budget: AutoApproveBudget | None = None,
) -> ReserveInput:
    """The reservation a refund makes: the same from the edge and from the workflow."""
    return ReserveInput(
        refund_id=refund_id,
        order_id=order.order_id,
        amount=amount,
        requested_amount=resolved.amount,
        currency=resolved.currency,
        captured_amount=order.captured_amount,
        lines=resolved.lines,
        order_lines=order.lines,
        reason_code=reason_code,
        final_sale_categories=sorted(set(final_sale_categories)),
        seller_fault=seller_fault,
        requested_by=requested_by,
        auto_approve=auto_approve,
        budget=budget,
        allocation=resolved.allocation,
    )


def decide(request: ReserveInput, holds: Sequence[Hold]) -> Verdict:
    """The ledger's final word on `request`, given every other refund's hold on the order."""
    left = request.captured_amount - sum(h.amount for h in holds)
    claim_ = claim(request, holds)
    refusal = claim_.refused_because or total_refusal(request, holds)
    if refusal is not None:
        return Verdict(allowed=False, remaining=reach(request, holds)[0], refused_because=refusal)
    return Verdict(allowed=True, remaining=left - request.amount, lines=claim_.lines)


def total_refusal(request: ReserveInput, holds: Sequence[Hold]) -> str | None:
    """Today's order-total rule: holds plus this request never exceed the capture."""
    left = request.captured_amount - sum(h.amount for h in holds)
    if request.amount <= left:
        return None
    money = format_minor(max(left, 0), request.currency)
    holders = [h.refund_id for h in holds if h.amount > 0]
    return f"only {money} of order {request.order_id} is still refundable" + _by(
        holders, "the rest is"
    )


def claim(request: ReserveInput, holds: Sequence[Hold]) -> Claim:
    """What `request` would hold of the order's lines; refused when units it asks for are
    held or refunded, or when its amount is more than the lines it may reach still have."""
    if request.reason_code is None or not request.order_lines:
        return Claim()  # before the ledger, or an order without lines: the total decides
    if request.lines:
        return _claim_units(request, holds)
    return _claim_amount(request, holds)


def _claim_units(request: ReserveInput, holds: Sequence[Hold]) -> Claim:
    refusals: list[str] = []
    held_by: list[str] = []
    for wanted in request.lines:
        refusal, holders = _units_refusal(request, holds, wanted)
        if refusal is not None:
            refusals.append(refusal)
            held_by += [h for h in holders if h not in held_by]
    if refusals:
        return Claim(refused_because="; ".join(refusals), held_by=held_by)
    return Claim(
        lines=[
            LineHold(sku=w.sku, quantity=w.quantity, amount=w.quantity * w.unit_price)
            for w in request.lines
        ]
    )


def _units_refusal(
    request: ReserveInput, holds: Sequence[Hold], wanted: OrderLine
) -> tuple[str | None, list[str]]:
    """Why `wanted` cannot be held (None when it can), and who holds what it asks for."""
    line = next((o for o in request.order_lines if o.sku == wanted.sku), None)
    order_id, money = request.order_id, request.currency
    if line is None or wanted.quantity > line.quantity:
        return f"order {order_id} has {line.quantity if line else 0} x {wanted.sku}", []
    units, value, holders = _held_on(holds, wanted.sku)
    if units + wanted.quantity > line.quantity:
        verb = "is" if units == 1 else "are"
        return (
            f"{units} x {wanted.sku} of order {order_id} {verb} already held or refunded"
            f"{_by(holders)}; {line.quantity - units} of {line.quantity} left",
            holders,
        )
    worth = line.quantity * line.unit_price
    asked = wanted.quantity * wanted.unit_price
    if value + asked > worth:
        # Units are free, but amount-only refunds took part of the line's value. An amount
        # is advised only where the line has some left (a trial was sent to ask for one
        # when nothing was, to be refused in its turn).
        advice = (
            ": ask for an amount instead (the order's lines share it by what each has left)"
            if worth > value
            else ""
        )
        return (
            f"{format_minor(value, money)} of {wanted.sku} (order {order_id}) is already held"
            f" or refunded{_by(holders)}; {format_minor(worth - value, money)} of its"
            f" {format_minor(worth, money)} left, {wanted.quantity} x {wanted.sku} is"
            f" {format_minor(asked, money)}{advice}",
            holders,
        )
    return None, []


def _claim_amount(request: ReserveInput, holds: Sequence[Hold]) -> Claim:
    buckets, excluded = _reachable(request, holds)
    reach = sum(capacity for _, capacity in buckets)
    left = request.captured_amount - sum(h.amount for h in holds)
    value = value_asked(request)
    # When the order total refuses it anyway and binds at least as tight, the total's own
    # refusal says it: the answer does not say the same thing twice.
    total_says_it = request.amount > left and reach >= left
    if value > reach and not total_says_it:
        money = format_minor(max(reach, 0), request.currency)
        why = f"only {money} of order {request.order_id} is still refundable"
        if excluded:
            why += (
                f" for {request.reason_code}: final-sale lines ({', '.join(excluded)}) are"
                " refunded only when the seller is at fault"
            )
        holders = _holders(holds, {name for name, _ in buckets})
        return Claim(refused_because=why + _by(holders, "the rest is"), held_by=holders)
    if value > reach:
        return Claim()  # refused by the order total (`decide` checks it)
    if request.allocation is not None:  # split at the edge, its fees taken on that split
        return _claim_as_split(request, buckets, holds)
    shares = allocate(value, buckets)
    return Claim(lines=[LineHold(sku=name, amount=share) for name, share in shares if share])


def _claim_as_split(
    request: ReserveInput, buckets: Sequence[tuple[str, int]], holds: Sequence[Hold]
) -> Claim:
    """The split the request was asked (and its fees taken) on, if each share still fits
    what its line has: another refund may have taken some since it was split."""
    split = request.allocation or []
    room = dict(buckets)
    if sum(s.amount for s in split) == value_asked(request) and all(
        s.amount <= room.get(s.sku, 0) for s in split
    ):
        return Claim(lines=[LineHold(sku=s.sku, amount=s.amount) for s in split])
    holders = _holders(holds, {s.sku for s in split})
    why = f"the refunds of order {request.order_id} changed while this request was checked"
    return Claim(
        refused_because=f"{why}: ask again" + _by(holders, "the lines are"), held_by=holders
    )


def units_of(lines: Sequence[OrderLine] | Sequence[LineHold]) -> list[tuple[str, int]]:
    """The units a request or a hold names, line by line (sorted; none for an amount)."""
    return sorted((line.sku, line.quantity) for line in lines if line.quantity)


def value_asked(request: ReserveInput) -> int:
    """The value a request takes from the order's lines: what was asked for, fees included
    (a fee is kept back from the money, not handed back to the lines)."""
    return request.requested_amount or request.amount


def _reachable(
    request: ReserveInput, holds: Sequence[Hold], final_sale_apart: bool = True
) -> tuple[list[tuple[str, int]], list[str]]:
    """The buckets an amount-only request may take from, with what each still has; and the
    final-sale lines left out of its reach (`final_sale_apart`: a line request names its
    lines, and the final-sale rule answers for them)."""
    final_sale = set(request.final_sale_categories) if final_sale_apart else set()
    buckets: list[tuple[str, int]] = []
    excluded: list[str] = []
    for line in request.order_lines:
        if line.category in final_sale and not request.seller_fault:
            excluded.append(line.sku)
            continue
        _, value, _ = _held_on(holds, line.sku)
        buckets.append((line.sku, max(line.quantity * line.unit_price - value, 0)))
    lines_worth = sum(line.quantity * line.unit_price for line in request.order_lines)
    not_a_line = request.captured_amount - lines_worth
    if not_a_line > 0:
        _, value, _ = _held_on(holds, NOT_A_LINE)
        buckets.append((NOT_A_LINE, max(not_a_line - value, 0)))
    return buckets, excluded


def reach(request: ReserveInput, holds: Sequence[Hold]) -> tuple[int, list[str]]:
    """What a request like this one could still get now, and the final-sale lines out of
    its reach (an amount-only request whose reason is not the seller's fault): the order
    total, and on an order with lines no more than its lines still have. Line requests too:
    a unit refunded for less than its value (a reviewer approved less) is closed whole, so
    the money it did not take is out of every request's reach (invariant 9)."""
    left = request.captured_amount - sum(h.amount for h in holds)
    if request.reason_code is None or not request.order_lines:
        return max(left, 0), []
    buckets, excluded = _reachable(request, holds, final_sale_apart=not request.lines)
    return max(min(left, sum(capacity for _, capacity in buckets)), 0), excluded


def told_with_holds(err: RefundInputError, holds: Sequence[Hold]) -> str:
    """A request's refusal; for more units of a line than the order has, with what other
    refunds already hold or refunded of it ('; 1 of them is already held or refunded (by
    rf_…): 1 left'): a trial read only "order … has 2" when one of the two was refunded."""
    if not isinstance(err, TooManyUnits):
        return str(err)
    units, _, holders = _held_on(holds, err.sku)
    if not units:
        return str(err)
    verb = "is" if units == 1 else "are"
    left = max(err.ordered - units, 0)
    return f"{err}; {units} of them {verb} already held or refunded{_by(holders)}: {left} left"


def _held_on(holds: Sequence[Hold], sku: str) -> tuple[int, int, list[str]]:
    """Units and value of `sku` held by `holds`, and the refunds holding them (in order)."""
    units = value = 0
    holders: list[str] = []
    for hold in holds:
        for line in hold.lines:
            if line.sku == sku and (line.quantity or line.amount):
                units += line.quantity
                value += line.amount
                if hold.refund_id not in holders:
                    holders.append(hold.refund_id)
    return units, value, holders


def _holders(holds: Sequence[Hold], skus: set[str]) -> list[str]:
    """The refunds holding any value of the buckets `skus`, in order."""
    return [h.refund_id for h in holds if any(x.sku in skus and x.amount for x in h.lines)]


def _by(refund_ids: Sequence[str], lead: str = "") -> str:
    """' by rf_a, rf_b' (at most MAX_NAMED named, then how many more); '' for none."""
    if not refund_ids:
        return ""
    named = ", ".join(refund_ids[:MAX_NAMED])
    more = len(refund_ids) - MAX_NAMED
    if more > 0:
        named += f" and {more} more"
    return f"; {lead} held or refunded by {named}" if lead else f" by {named}"
