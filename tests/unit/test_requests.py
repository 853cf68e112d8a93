"""Bad requests are refused at the edge with a clear message (before anything starts)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from client.render import validation_error
from workflows.models import OrderLine, OrderSnapshot, RefundRequest
from workflows.validation import RefundInputError, resolve_request

ORDER = OrderSnapshot(
    order_id="ord_1",
    currency="USD",
    lines=[
        OrderLine(sku="A", quantity=2, unit_price=1500, category="general"),
        OrderLine(sku="B", quantity=1, unit_price=7000, category="general"),
    ],
    captured_amount=10000,
    payment_reference="pay_1",
)


def request(**overrides: Any) -> RefundRequest:
    fields: dict[str, Any] = {
        "refund_key": "k1",
        "order_id": "ord_1",
        "amount": 1000,
        "reason_code": "damaged",
        "channel": "web",
        "requested_by": "cust_1",
    }
    fields.update(overrides)
    return RefundRequest(**fields)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"amount": 0}, "greater than 0"),
        ({"amount": -5}, "greater than 0"),
        ({"amount": 12.5}, "whole number of minor units"),
        ({"reason_code": "bored"}, "must be one of"),
        ({"channel": "fax"}, "must be one of"),
        ({"order_id": "x" * 65}, "too long"),
        ({"refund_key": "has space"}, "refund_key must be letters, digits and . _ : - only"),
        ({"note": "n" * 501}, "too long"),
        ({"note": "a\x1bb"}, "note must not contain control characters"),
        ({"currency": "XXX"}, "not an ISO 4217 currency"),
        ({"amount": None}, "either an amount or refund lines"),
        ({"lines": [{"sku": "A", "quantity": 1}]}, "either an amount or refund lines"),
    ],
)
def test_malformed_requests_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        request(**overrides)
    assert message in validation_error(caught.value)


def test_amount_above_captured_is_refused() -> None:
    with pytest.raises(
        RefundInputError, match=r"100\.01 USD is more than the 100\.00 USD captured"
    ):
        resolve_request(request(amount=10001), ORDER)


def test_wrong_currency_is_refused() -> None:
    with pytest.raises(RefundInputError, match="does not match"):
        resolve_request(request(currency="EUR"), ORDER)


def test_lines_resolve_to_their_price_and_are_checked() -> None:
    resolved = resolve_request(
        request(amount=None, lines=[{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}]),
        ORDER,
    )
    assert resolved.amount == 2 * 1500 + 7000
    with pytest.raises(RefundInputError, match="has 2"):
        resolve_request(request(amount=None, lines=[{"sku": "A", "quantity": 3}]), ORDER)
    with pytest.raises(RefundInputError, match=r"no line with sku Z \(its lines: A, B\)$"):
        resolve_request(request(amount=None, lines=[{"sku": "Z", "quantity": 1}]), ORDER)
    # Another case is a near miss, named (a trial typed the SKU as the label read).
    with pytest.raises(RefundInputError, match=r"no line with sku a \(did you mean A\?\)$"):
        resolve_request(request(amount=None, lines=[{"sku": "a", "quantity": 1}]), ORDER)
    # ... and without its punctuation (a trial typed TV55 for TV-55, told only the SKUs).
    tv = ORDER.model_copy(update={"lines": [ORDER.lines[0].model_copy(update={"sku": "TV-55"})]})
    with pytest.raises(RefundInputError, match=r"sku TV55 \(did you mean TV-55\?\)$"):
        resolve_request(request(amount=None, lines=[{"sku": "TV55", "quantity": 1}]), tv)


@pytest.mark.parametrize("who", ["jane.doe@example.com", "Jane Doe", "a\nb"])
def test_requester_must_be_an_opaque_id_not_personal_data(who: str) -> None:
    with pytest.raises(ValidationError, match="requested_by"):
        request(requested_by=who)
