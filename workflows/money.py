"""Money: integer minor units plus an ISO 4217 currency. Never floats."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StrictInt

# ISO 4217 minor-unit exponents that are not 2. A wrong exponent misstates money by 10x or
# 100x, so the table is explicit (ISO 4217, amendment 2024), not guessed.
_ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()
)
_THREE_DECIMAL = frozenset("BHD IQD JOD KWD LYD OMR TND".split())
# The currencies refundflow accepts; an unknown code is a typo, not a new currency.
ISO_4217_CODES = (
    frozenset(
        "AED ARS AUD BDT BGN BRL CAD CHF CNY COP CZK DKK EGP EUR GBP GHS HKD HUF IDR ILS INR "
        "KES KZT MAD MXN MYR NGN NOK NZD PEN PHP PKR PLN QAR RON RSD SAR SEK SGD THB TRY TWD "
        "UAH USD ZAR".split()
    )
    | _ZERO_DECIMAL
    | _THREE_DECIMAL
)

MAX_MINOR_UNITS = 10**12
"""Upper bound for any amount: far above any real refund, far below int64 overflow."""


def check_currency(code: str) -> str:
    if code not in ISO_4217_CODES:
        raise ValueError(f"{code!r} is not an ISO 4217 currency code (such as USD or EUR)")
    return code


def _upper(value: Any) -> Any:
    """Currency codes are case-insensitive on the way in ("usd" is USD)."""
    return value.strip().upper() if isinstance(value, str) else value


Currency = Annotated[str, BeforeValidator(_upper), AfterValidator(check_currency)]


def exponent(currency: str) -> int:
    """Digits after the decimal point in `currency`'s minor unit."""
    if currency in _ZERO_DECIMAL:
        return 0
    return 3 if currency in _THREE_DECIMAL else 2


class Money(BaseModel):
    """An amount in minor units (cents) of one currency."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: StrictInt
    currency: Currency

    def __str__(self) -> str:
        return format_minor(self.amount, self.currency)


def format_minor(amount: int, currency: str) -> str:
    """Human rendering: 12000 USD -> '120.00 USD', 500 JPY -> '500 JPY', 1500 BHD ->
    '1.500 BHD'."""
    digits = exponent(currency)
    if digits == 0:
        return f"{amount} {currency}"
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**digits)
    return f"{sign}{whole}.{fraction:0{digits}d} {currency}"
