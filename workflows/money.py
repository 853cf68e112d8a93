"""Money: integer minor units plus an ISO 4217 currency. Never floats."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StrictInt

# The currencies the sandbox and the policy know; an unknown code is a typo, not a new currency.
ISO_4217_CODES = frozenset(
    "AED AUD BRL CAD CHF CNY CZK DKK EUR GBP HKD HUF IDR ILS INR JPY KRW MXN MYR NOK NZD "
    "PHP PLN SEK SGD THB TRY TWD USD ZAR".split()
)

MAX_MINOR_UNITS = 10**12
"""Upper bound for any amount: far above any real refund, far below int64 overflow."""


def check_currency(code: str) -> str:
    if code not in ISO_4217_CODES:
        raise ValueError(f"unknown currency {code!r}: expected an ISO 4217 code such as USD or EUR")
    return code


Currency = Annotated[str, AfterValidator(check_currency)]


class Money(BaseModel):
    """An amount in minor units (cents) of one currency."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: StrictInt
    currency: Currency

    def __str__(self) -> str:
        return format_minor(self.amount, self.currency)


def format_minor(amount: int, currency: str) -> str:
    """Human rendering, e.g. 12000 USD -> '120.00 USD' (JPY and KRW have no minor unit)."""
    if currency in ("JPY", "KRW"):
        return f"{amount} {currency}"
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole}.{cents:02d} {currency}"
