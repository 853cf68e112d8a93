"""How the API words a request that does not validate (api/problems.py `one_line`): where,
and what to do, in one line a caller can act on."""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError

from api.problems import one_line


def said(*errors: dict[str, Any]) -> str:
    return one_line(RequestValidationError(list(errors)))


def test_json_positions_count_from_one() -> None:
    error = {"type": "json_invalid", "loc": ("body", 1), "msg": "JSON decode error",
             "ctx": {"error": "Expecting property name enclosed in double quotes"}}  # fmt: skip
    assert said(error) == (
        "the body is not valid JSON at character 2: Expecting property name enclosed in"
        " double quotes"
    )


def test_a_bad_refund_id_is_echoed_short_and_in_the_clis_words() -> None:
    long_id = "rf_" + "x" * 100
    error = {"type": "string_pattern_mismatch", "loc": ("path", "refund_id"), "input": long_id,
             "msg": "String should match pattern"}  # fmt: skip
    text = said(error)
    assert text == f"'{long_id[:39]}…' is not a refund id (they look like rf_ and 24 hex digits)"
    short = said({**error, "input": "rf_nope"})
    assert short == "'rf_nope' is not a refund id (they look like rf_ and 24 hex digits)"


def test_a_refund_id_in_capitals_is_told_how_it_is_written() -> None:
    error = {"type": "string_pattern_mismatch", "loc": ("path", "refund_id"),
             "input": "RF_A989" + "0" * 20, "msg": "String should match pattern"}  # fmt: skip
    assert said(error) == (
        f"'RF_A989{'0' * 20}' is not a refund id as written: write it rf_a989{'0' * 20}"
        " (lower case, no spaces)"
    )
    spaced = said({**error, "input": f" rf_a989{'0' * 20} "})
    assert spaced.startswith(f"' rf_a989{'0' * 20} ' is not a refund id as written: write it")


def test_a_missing_header_is_named_as_a_header() -> None:
    missing = {"type": "missing", "loc": ("header", "Idempotency-Key"), "msg": "Field required"}
    assert said(missing) == "the Idempotency-Key header is required"
    long = {"type": "string_too_long", "loc": ("header", "Idempotency-Key"),
            "msg": "String should have at most 64 characters",
            "ctx": {"max_length": 64}}  # fmt: skip
    assert said(long).startswith("Idempotency-Key: ")


def test_every_field_is_named_up_to_three_then_how_many_more() -> None:
    missing = [{"type": "missing", "loc": ("body", name), "msg": "Field required"}
               for name in ("order_id", "reason_code", "amount", "channel", "locale")]  # fmt: skip
    assert said(*missing[:2]) == "order_id: Field required; reason_code: Field required"
    assert said(*missing).endswith("amount: Field required (and 2 more)")


def test_our_own_validators_words_come_without_pydantics_prefix() -> None:
    error = {"type": "value_error", "loc": ("body", "reason"),
             "msg": "Value error, must say something: it is kept in the audit trail"}  # fmt: skip
    assert said(error) == "reason: must say something: it is kept in the audit trail"


def test_a_body_that_is_not_a_json_object_says_how_to_send_one() -> None:
    error = {"type": "model_attributes_type", "loc": ("body",), "msg": "Input should be ..."}
    assert said(error) == "the body must be a JSON object, sent as Content-Type: application/json"
    assert said({"type": "missing", "loc": ("body",), "msg": "Field required"}) == (
        "a JSON body is required (Content-Type: application/json)"
    )


def test_an_amount_beyond_any_order_is_told_so_not_pydantics_bound() -> None:
    """`--amount 99999999999999` read "must be less than or equal to 1000000000000" (a trial):
    a bound that reads like a limit to reach. The CLI and the API say the same."""
    from pydantic import ValidationError

    from client.render import validation_error
    from workflows.models import RefundRequest

    try:
        RefundRequest(
            refund_key="k", order_id="ord_1", amount=10**14, reason_code="damaged",
            channel="web", requested_by="cust_1",
        )  # fmt: skip
    except ValidationError as err:
        cli_words = validation_error(err)
        [error] = err.errors()
    else:
        raise AssertionError("an amount of 10**14 minor units was accepted")
    assert cli_words == (
        "amount is larger than any amount refundflow handles (at most 1000000000000 minor"
        " units, 10,000,000,000.00 in a currency with two decimals)"
    )
    assert said({**error, "loc": ("body", "amount")}).endswith(cli_words.removeprefix("amount"))
    quantity = {"type": "less_than_equal", "loc": ("body", "lines", 0, "quantity"),
                "msg": "Input should be less than or equal to 10000",
                "ctx": {"le": 10000}}  # fmt: skip
    assert said(quantity) == "lines.0.quantity: must be at most 10000"


def test_a_decimal_amount_is_told_in_minor_units() -> None:
    """A trial sent "amount": 10.5 and read only "must be a valid integer"."""
    decimal = {"type": "int_from_float", "loc": ("body", "amount"), "input": 10.5,
               "msg": "Input should be a valid integer"}  # fmt: skip
    assert said(decimal) == (
        "amount: must be a whole number of minor units of the currency (1050 for 10.50 in a"
        " currency with two decimals; never a decimal amount)"
    )
    quantity = {**decimal, "loc": ("body", "lines", 0, "quantity"), "input": 1.5}
    assert "minor units" not in said(quantity)
