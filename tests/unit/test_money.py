"""Money is rendered with its currency's own minor unit, and codes are read as people type
them; an unknown code is refused with one sentence."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from workflows.money import Money, format_minor


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (12000, "USD", "120.00 USD"),
        (5, "EUR", "0.05 EUR"),
        (-4201, "GBP", "-42.01 GBP"),
        (500, "JPY", "500 JPY"),
        (1500, "BHD", "1.500 BHD"),
        (7, "KWD", "0.007 KWD"),
    ],
)
def test_amounts_use_the_currencys_minor_unit(amount: int, currency: str, shown: str) -> None:
    assert format_minor(amount, currency) == shown


def test_codes_are_case_insensitive_and_unknown_ones_are_refused() -> None:
    assert Money(amount=1, currency=" usd").currency == "USD"
    assert Money(amount=1000, currency="bhd").currency == "BHD"
    with pytest.raises(ValidationError, match="'XYZ' is not an ISO 4217 currency code"):
        Money(amount=1, currency="XYZ")
