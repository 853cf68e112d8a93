"""A request another refund of the order already makes, by amount: the same amount for the
same reason under another key waits for a reviewer (workflows.ledger.asked_again)."""

from __future__ import annotations

from workflows.ledger import Hold, LineHold, asked_again
from workflows.models import OrderLine, ReserveInput


def ask(amount: int = 500, reason: str = "damaged", **fields: object) -> ReserveInput:
    values: dict[str, object] = {
        "refund_id": "rf_new", "order_id": "ord_1", "amount": amount, "currency": "USD",
        "captured_amount": 10_000, "reason_code": reason,
    }  # fmt: skip
    return ReserveInput.model_validate({**values, **fields})


def hold(amount: int = 500, reason: str | None = "damaged", **fields: object) -> Hold:
    values: dict[str, object] = {
        "refund_id": "rf_old", "amount": amount, "basis": "amount", "reason_code": reason,
    }  # fmt: skip
    return Hold.model_validate({**values, **fields})


def test_the_same_amount_for_the_same_reason_is_asked_again_and_named() -> None:
    assert asked_again(ask(), [hold()]) == (
        "refund rf_old already holds 5.00 USD of order ord_1 for damaged under another key"
        " (the same request twice?): a reviewer decides"
    )
    paid = asked_again(ask(), [hold(state="consumed")])
    assert paid is not None and paid.startswith("refund rf_old already refunded 5.00 USD")


def test_another_amount_reason_or_basis_is_another_request() -> None:
    assert asked_again(ask(amount=501), [hold()]) is None
    assert asked_again(ask(reason="defective"), [hold()]) is None
    lines = [LineHold(sku="CABLE", quantity=1, amount=500)]
    assert asked_again(ask(), [hold(basis="lines", lines=lines)]) is None
    assert asked_again(ask(), [hold(basis=None, reason=None)]) is None  # before the ledger
    # A line request: its units are held once by the ledger's own rule, not by this one.
    cable = OrderLine(sku="CABLE", quantity=1, unit_price=500, category="general")
    assert asked_again(ask(lines=[cable.model_dump()]), [hold()]) is None
    assert asked_again(ask(), []) is None
