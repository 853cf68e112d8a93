"""One validation error (pydantic's) in words a person can act on: what the CLI prints and
what the API's problem documents say, instead of pydantic's own text ("String should match
pattern '^[^\\x00-\\x08\\x0b-\\x1f]+$'")."""

from __future__ import annotations

from typing import Any

from workflows.money import MAX_MINOR_UNITS
from workflows.vocabulary import IDENTIFIER_PATTERN

_NOT_AN_INTEGER = frozenset({"int_from_float", "int_parsing", "int_type"})
_MONEY_FIELDS = frozenset({"amount", "unit_price", "captured_amount"})

# The patterns our contracts use, by what they ask for (workflows.vocabulary).
_PATTERNS = {
    IDENTIFIER_PATTERN: "must be letters, digits and . _ : - only (no spaces)",
    r"^[^\x00-\x08\x0b-\x1f]+$": "must not contain control characters (such as ESC or NUL)",
}


def plain(error: Any) -> str:
    """What is wrong with one value, without where it is."""
    kind, ctx = error.get("type"), error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return _PATTERNS.get(ctx.get("pattern", ""), "is not in the expected form")
    if kind == "string_too_long":
        return f"is too long (at most {ctx['max_length']} characters)"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "greater_than":
        return f"must be greater than {ctx['gt']}"
    if kind == "less_than_equal" and ctx.get("le") == MAX_MINOR_UNITS:
        # An amount (or a price) no order captures: pydantic's own words read as a limit
        # someone might want to reach.
        return (
            f"is larger than any amount refundflow handles (at most {MAX_MINOR_UNITS}"
            " minor units, 10,000,000,000.00 in a currency with two decimals)"
        )
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    loc = error.get("loc") or ("",)
    if kind in _NOT_AN_INTEGER and loc[-1] in _MONEY_FIELDS:
        # A trial sent "amount": 10.5 and read only "must be a valid integer".
        return (
            "must be a whole number of minor units of the currency (1050 for 10.50 in a"
            " currency with two decimals; never a decimal amount)"
        )
    message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    return message.replace("Input should be", "must be")
