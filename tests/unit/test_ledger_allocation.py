"""The order ledger's rule (workflows/ledger.py), pure: allocation by value, units held or
refunded once, final-sale value out of reach of a non-fault amount, the order total."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows.ledger import (
    NOT_A_LINE,
    Hold,
    LineHold,
    Verdict,
    allocate,
    decide,
    value_asked,
)
from workflows.models import OrderLine, ReserveInput

TV = OrderLine(sku="TV-55", quantity=1, unit_price=30000, category="electronics")
CABLE = OrderLine(sku="CABLE", quantity=2, unit_price=1500, category="general")
GIFT = OrderLine(sku="GIFT", quantity=1, unit_price=20000, category="gift_card")
PEN = OrderLine(sku="PEN", quantity=1, unit_price=100, category="general")
FINAL_SALE = ["final_sale", "gift_card"]


def ask(
    refund_id: str,
    order_lines: list[OrderLine],
    *,
    amount: int,
    lines: list[OrderLine] | None = None,
    reason: str | None = "damaged",
    fault: bool = True,
    captured: int | None = None,
    requested: int | None = None,
) -> ReserveInput:
    return ReserveInput(
        refund_id=refund_id,
        order_id="ord_1",
        amount=amount,
        requested_amount=requested,
        currency="USD",
        captured_amount=captured or sum(x.quantity * x.unit_price for x in order_lines),
        lines=lines or [],
        order_lines=order_lines,
        reason_code=reason,
        final_sale_categories=FINAL_SALE,
        seller_fault=fault,
    )


def take(holds: list[Hold], request: ReserveInput) -> Verdict:
    """Decide `request`; when allowed, it becomes a hold like the store writes it."""
    verdict = decide(request, holds)
    if verdict.allowed:
        holds.append(Hold(refund_id=request.refund_id, amount=request.amount, lines=verdict.lines))
        if request.order_lines and not request.lines:  # an amount holds all the value it asked
            assert sum(x.amount for x in verdict.lines) == value_asked(request)
    return verdict


# --- allocate ---------------------------------------------------------------------------


def test_allocation_rounds_by_largest_remainder_ties_to_the_earlier_line() -> None:
    assert allocate(100, [("A", 50), ("B", 50), ("C", 50)]) == [("A", 34), ("B", 33), ("C", 33)]
    assert allocate(2, [("A", 50), ("B", 50), ("C", 50)]) == [("A", 1), ("B", 1), ("C", 0)]
    assert allocate(5, [("A", 3000), ("B", 30000)]) == [("A", 0), ("B", 5)]
    assert allocate(16500, [("TV", 30000), ("CABLE", 3000)]) == [("TV", 15000), ("CABLE", 1500)]
    assert allocate(0, [("A", 5)]) == [("A", 0)]


def test_allocation_refuses_more_than_the_capacity() -> None:
    with pytest.raises(ValueError, match="cannot allocate 11"):
        allocate(11, [("A", 5), ("B", 5)])
    with pytest.raises(ValueError):
        allocate(-1, [("A", 5)])


capacities = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=8)


@given(data=st.data(), caps=capacities)
def test_allocation_is_exact_bounded_and_proportional(data: st.DataObject, caps: list[int]) -> None:
    total = sum(caps)
    amount = data.draw(st.integers(min_value=0, max_value=total))
    buckets = [(f"L{n}", cap) for n, cap in enumerate(caps)]
    shares = allocate(amount, buckets)
    assert [name for name, _ in shares] == [name for name, _ in buckets]
    assert sum(share for _, share in shares) == amount
    for (_, share), cap in zip(shares, caps, strict=True):
        assert 0 <= share <= cap
        if total:
            assert abs(Fraction(share) - Fraction(amount * cap, total)) < 1
    assert allocate(amount, buckets) == shares  # deterministic


# --- units ------------------------------------------------------------------------------


def test_the_same_cables_are_held_once_whatever_the_key_channel_or_reason() -> None:
    order = [TV, CABLE]
    holds: list[Hold] = []
    cables = [CABLE.model_copy(update={"quantity": 2})]
    first = take(holds, ask("rf_web", order, amount=3000, lines=cables))
    assert first.allowed and first.lines == [LineHold(sku="CABLE", quantity=2, amount=3000)]
    for other, reason in (("rf_support", "damaged"), ("rf_app", "defective")):
        refused = take(holds, ask(other, order, amount=3000, lines=cables, reason=reason))
        assert not refused.allowed
        assert refused.refused_because == (
            "2 x CABLE of order ord_1 are already held or refunded by rf_web; 0 of 2 left"
        )
    one = [CABLE.model_copy(update={"quantity": 1})]
    assert not take(holds, ask("rf_one", order, amount=1500, lines=one)).allowed
    # The TV is still free, and the order total still has room for it.
    assert take(holds, ask("rf_tv", order, amount=30000, lines=[TV])).allowed


def test_a_cancelled_refund_frees_its_units() -> None:
    order = [TV, CABLE]
    cables = [CABLE.model_copy(update={"quantity": 2})]
    holds: list[Hold] = []
    take(holds, ask("rf_a", order, amount=3000, lines=cables))
    holds.clear()  # released: the store no longer counts it as a hold
    assert take(holds, ask("rf_b", order, amount=3000, lines=cables)).allowed


def test_a_line_refund_with_a_fee_holds_the_whole_value_of_its_units() -> None:
    order = [TV]
    holds: list[Hold] = []
    tv = take(holds, ask("rf_tv", order, amount=25500, lines=[TV], reason="changed_mind"))
    assert tv.allowed
    assert holds[0].lines == [LineHold(sku="TV-55", quantity=1, amount=30000)]
    # The 45.00 fee kept back is not reachable by an amount afterwards.
    later = take(holds, ask("rf_fee", order, amount=4500, reason="changed_mind"))
    assert not later.allowed
    assert later.refused_because == (
        "only 0.00 USD of order ord_1 is still refundable; the rest is held or refunded by rf_tv"
    )


def test_units_already_paid_for_by_an_amount_are_not_refunded_again() -> None:
    order = [CABLE]
    holds: list[Hold] = []
    assert take(holds, ask("rf_amount", order, amount=2000)).allowed
    one = [CABLE.model_copy(update={"quantity": 1})]
    refused = take(holds, ask("rf_line", order, amount=1500, lines=one))
    assert refused.refused_because == (
        "20.00 USD of CABLE (order ord_1) is already held or refunded by rf_amount;"
        " 10.00 USD of its 30.00 USD left, 1 x CABLE is 15.00 USD: ask for an amount instead"
        " (the order's lines share it by what each has left)"
    )
    # Nothing of the line left: no amount to advise (a trial asked for one, to be refused).
    assert take(holds, ask("rf_rest", order, amount=1000)).allowed
    refused = take(holds, ask("rf_line", order, amount=1500, lines=one))
    assert refused.refused_because == (
        "30.00 USD of CABLE (order ord_1) is already held or refunded by rf_amount, rf_rest;"
        " 0.00 USD of its 30.00 USD left, 1 x CABLE is 15.00 USD"
    )


# --- amounts and final sale -------------------------------------------------------------


def test_final_sale_value_is_out_of_reach_of_a_non_fault_amount() -> None:
    order = [GIFT, PEN]
    holds: list[Hold] = []
    for n, amount in enumerate((5000, 4999, 4998, 4997, 106)):
        verdict = take(
            holds, ask(f"rf_{n}", order, amount=amount, reason="changed_mind", fault=False)
        )
        assert not verdict.allowed
        assert verdict.remaining == 100
        assert verdict.refused_because == (
            "only 1.00 USD of order ord_1 is still refundable for changed_mind: final-sale"
            " lines (GIFT) are refunded only when the seller is at fault"
        )
    pen = take(holds, ask("rf_pen", order, amount=100, reason="changed_mind", fault=False))
    assert pen.allowed and pen.lines == [LineHold(sku="PEN", amount=100)]
    again = take(holds, ask("rf_more", order, amount=1, reason="changed_mind", fault=False))
    assert again.refused_because is not None and again.refused_because.endswith(
        "; the rest is held or refunded by rf_pen"
    )
    # The seller's fault reaches the gift card.
    assert take(holds, ask("rf_broken", order, amount=20000)).allowed


def test_an_amount_is_allocated_by_value_and_the_part_that_is_not_a_line_too() -> None:
    order = [TV, CABLE]
    verdict = decide(ask("rf_a", order, amount=3600, captured=34000), [])
    # 33000 in lines and 1000 of shipping: 3600 split 30000 : 3000 : 1000.
    assert verdict.lines == [
        LineHold(sku="TV-55", amount=3176),
        LineHold(sku="CABLE", amount=318),
        LineHold(sku=NOT_A_LINE, amount=106),
    ]
    assert sum(x.amount for x in verdict.lines) == 3600


def test_an_amount_takes_its_value_before_fees_from_the_lines() -> None:
    order = [TV]
    verdict = decide(ask("rf_a", order, amount=25500, requested=30000, reason="changed_mind"), [])
    assert verdict.lines == [LineHold(sku="TV-55", amount=30000)]


def test_a_fee_kept_back_does_not_let_an_amount_take_more_than_the_lines_have() -> None:
    order = [TV, CABLE]
    holds: list[Hold] = []
    take(holds, ask("rf_cables", order, amount=3000, lines=[CABLE]))
    # 330.00 asked, 45.00 fee: the money (285.00) fits the total, the value does not fit
    # the lines (300.00 left on the TV).
    whole = ask("rf_all", order, amount=28500, requested=33000, reason="changed_mind")
    verdict = take(holds, whole)
    assert verdict.refused_because == (
        "only 300.00 USD of order ord_1 is still refundable; the rest is held or refunded"
        " by rf_cables"
    )


def test_the_order_total_is_still_checked_and_names_the_holders() -> None:
    order = [CABLE]
    holds = [Hold(refund_id="rf_old", amount=2500)]  # reserved before the ledger: no lines
    verdict = decide(ask("rf_new", order, amount=1000), holds)
    assert verdict.refused_because == (
        "only 5.00 USD of order ord_1 is still refundable; the rest is held or refunded by rf_old"
    )
    assert verdict.remaining == 500


def test_a_refund_started_before_the_ledger_is_checked_on_the_total_only() -> None:
    order = [CABLE]
    cables = [CABLE.model_copy(update={"quantity": 2})]
    holds = [
        Hold(refund_id="rf_a", amount=3000, lines=[LineHold(sku="CABLE", quantity=2, amount=3000)])
    ]
    legacy = ask("rf_b", order, amount=100, lines=cables, reason=None, captured=10000)
    assert decide(legacy, holds).allowed


# --- any sequence -----------------------------------------------------------------------

orders = st.lists(
    st.builds(
        OrderLine,
        sku=st.sampled_from(["A", "B", "C", "D"]),
        quantity=st.integers(min_value=1, max_value=3),
        unit_price=st.sampled_from([0, 1, 99, 1500, 20000]),
        category=st.sampled_from(["general", "electronics", "gift_card"]),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda line: line.sku,
)


@given(order=orders, extra=st.integers(0, 500), data=st.data())
def test_no_sequence_of_requests_beats_the_ledger(
    order: list[OrderLine], extra: int, data: st.DataObject
) -> None:
    """Lines or amounts, fault or not, in any order: no unit held twice, no line beyond its
    worth, the order never beyond its capture, final-sale value never reached by an amount
    asked for a reason that is not the seller's fault."""
    captured = sum(x.quantity * x.unit_price for x in order) + extra
    holds: list[Hold] = []
    non_fault_amounts: set[str] = set()
    for n in range(data.draw(st.integers(1, 12))):
        refund_id, fault = f"rf_{n}", data.draw(st.booleans())
        if data.draw(st.booleans()):
            line = data.draw(st.sampled_from(order))
            asked = [line.model_copy(update={"quantity": data.draw(st.integers(1, line.quantity))})]
            value = asked[0].quantity * line.unit_price
            if value == 0:
                continue
            request = ask(refund_id, order, amount=value, lines=asked, captured=captured)
        else:
            wanted = data.draw(st.integers(1, max(captured, 1) + 10))
            fee = data.draw(st.integers(0, (wanted - 1) // 5))  # kept back from the money
            reason = "damaged" if fault else "changed_mind"
            request = ask(
                refund_id,
                order,
                amount=wanted - fee,
                requested=wanted,
                reason=reason,
                fault=fault,
                captured=captured,
            )
            if not fault:
                non_fault_amounts.add(refund_id)
        take(holds, request)
    assert sum(h.amount for h in holds) <= captured
    for line in order:
        on_line = [x for h in holds for x in h.lines if x.sku == line.sku]
        assert sum(x.quantity for x in on_line) <= line.quantity
        assert sum(x.amount for x in on_line) <= line.quantity * line.unit_price
    final_sale = {x.sku for x in order if x.category == "gift_card"}
    for hold in holds:
        if hold.refund_id in non_fault_amounts:
            assert not [x for x in hold.lines if x.sku in final_sale and x.amount]


def test_a_split_made_at_the_edge_is_held_as_made_or_refused_once_it_no_longer_fits() -> None:
    """The split its fees were taken on (workflows/allocation.py), checked under the lock:
    held exactly, or refused when another refund took from its lines meanwhile."""
    from workflows.models import ValueShare

    holds: list[Hold] = []
    split = [ValueShare(sku="TV-55", amount=2727), ValueShare(sku="CABLE", amount=273)]
    asked = ask("rf_a", [TV, CABLE], amount=2591, requested=3000).model_copy(
        update={"allocation": split}
    )
    assert [(h.sku, h.amount) for h in take(holds, asked).lines] == [
        ("TV-55", 2727),
        ("CABLE", 273),
    ]
    # The TV returned meanwhile by another request: the split no longer fits.
    tv = LineHold(sku="TV-55", quantity=1, amount=30000)
    later = decide(
        asked.model_copy(update={"refund_id": "rf_b"}),
        [Hold(refund_id="rf_tv", amount=25500, lines=[tv])],
    )
    assert not later.allowed
    assert later.refused_because == (
        "the refunds of order ord_1 changed while this request was checked: ask again;"
        " the lines are held or refunded by rf_tv"
    )
