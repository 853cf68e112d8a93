"""A request another refund of the order already makes: the same value for the same reason
under another key waits for a reviewer (workflows.second_asks.asked_again)."""

from __future__ import annotations

from workflows.ledger import Hold, LineHold
from workflows.models import OrderLine, ReserveInput
from workflows.second_asks import asked_again, cut_by_a_reviewer

CABLE = OrderLine(sku="CABLE", quantity=1, unit_price=500, category="general")


def ask(amount: int = 500, reason: str = "damaged", **fields: object) -> ReserveInput:
    values: dict[str, object] = {
        "refund_id": "rf_new", "order_id": "ord_1", "amount": amount, "currency": "USD",
        "captured_amount": 10_000, "reason_code": reason,
    }  # fmt: skip
    return ReserveInput.model_validate({**values, **fields})


def hold(amount: int = 500, reason: str | None = "damaged", **fields: object) -> Hold:
    values: dict[str, object] = {
        "refund_id": "rf_old", "amount": amount, "basis": "amount", "reason_code": reason,
        "requested_amount": amount,
    }  # fmt: skip
    return Hold.model_validate({**values, **fields})


def test_the_same_amount_for_the_same_reason_is_asked_again_and_named() -> None:
    assert asked_again(ask(), [hold()]) == (
        "refund rf_old (open) asked for the same 5.00 USD of order ord_1 for damaged under"
        " another key (the same request twice?): a reviewer decides"
    )
    paid = asked_again(ask(), [hold(state="consumed")])
    assert paid is not None and paid.startswith("refund rf_old (paid) asked for the same")


def test_values_compare_as_asked_before_fees_and_approvals_for_less() -> None:
    # The first was approved for 2.00 of the 5.00 asked, and paid: asked again, still the same.
    assert asked_again(ask(), [hold(amount=200, requested_amount=500, state="consumed")])
    # A fee kept back: 4.50 held of 5.00 asked; asked again with the same fee.
    assert asked_again(ask(amount=450, requested_amount=500), [hold(450, requested_amount=500)])
    # Recorded before the value was kept: compared by what it holds.
    assert asked_again(ask(), [hold(requested_amount=None)])


def test_lines_and_amounts_asked_again_in_any_order() -> None:
    by_lines = ask(lines=[CABLE.model_dump()], order_lines=[CABLE.model_dump()])
    assert asked_again(by_lines, [hold()]) is not None
    line_hold = hold(basis="lines", lines=[LineHold(sku="CABLE", quantity=1, amount=500)])
    assert asked_again(ask(), [line_hold]) is not None
    # Lines after lines: the same units for the same reason (an order may have units to
    # spare: one cable of three), not merely the same value.
    assert asked_again(by_lines, [line_hold]) is not None
    sock = LineHold(sku="SOCK", quantity=1, amount=500)
    assert asked_again(by_lines, [hold(basis="lines", lines=[sock])]) is None
    two = LineHold(sku="CABLE", quantity=2, amount=1000)
    assert asked_again(by_lines, [hold(1000, basis="lines", lines=[two])]) is None


def test_another_value_or_reason_is_another_request() -> None:
    assert asked_again(ask(amount=501), [hold()]) is None
    assert asked_again(ask(reason="defective"), [hold()]) is None
    assert asked_again(ask(), [hold(basis=None, reason=None)]) is None  # before the ledger
    assert asked_again(ask(), []) is None


def test_after_a_reviewer_cut_any_later_request_of_the_order_goes_to_a_reviewer() -> None:
    cut = hold(amount=5000, requested_amount=9000, state="consumed", approved_less=True)
    for later in (ask(4000), ask(700, reason="changed_mind"), ask(500, lines=[CABLE])):
        assert cut_by_a_reviewer(later, [cut]) == (
            "refund rf_old of order ord_1 was approved by a reviewer for less than it"
            " asked: a reviewer decides any further refund of the order"
        )
    # A fee kept back is not a reviewer's cut; nor is an open refund not yet paid.
    fee_kept = hold(amount=4500, requested_amount=5000, state="consumed")
    assert cut_by_a_reviewer(ask(4000), [fee_kept, hold(amount=9000)]) is None
