"""The API's signature on a person's action (client/action_attestation.py): it holds only for
the refund, the action and the fields it was made for, lately, and from a trusted key."""

from __future__ import annotations

import time

import pytest

from client.action_attestation import ActionSigner, NotVouched, check, public_keys
from client.settings import ConfigurationError
from workflows.models import ApproveInput, RejectInput

RF = "rf_0123456789abcdef01234567"
APPROVAL = ApproveInput(reviewer="li", role="lead", amount=4200, issuer="https://idp")


def signed(signer: ActionSigner, refund_id: str, action: ApproveInput) -> ApproveInput:
    return action.model_copy(update={"attestation": signer.attest(refund_id, action)})


def test_a_signed_action_holds_for_its_refund_from_a_trusted_key() -> None:
    signer = ActionSigner.new()
    keys = public_keys(f"{ActionSigner.new().public_text()},{signer.public_text()}")
    check(keys, RF, signed(signer, RF, APPROVAL), time.time())  # any trusted key will do


@pytest.mark.parametrize(
    ("why", "says"),
    [
        ("unsigned", "came to Temporal directly"),
        ("another refund", "does not match"),
        ("another reviewer", "does not match"),
        ("another amount", "does not match"),
        ("another kind of action", "does not match"),
        ("an untrusted key", "does not match"),
        ("too old", "signed 301 s ago"),
        ("garbled", "is not one"),
        ("a digit int() reads and the check must not", "is not one"),
    ],
)
def test_anything_else_is_refused(why: str, says: str) -> None:
    signer = ActionSigner.new()
    keys = public_keys(signer.public_text())
    action, refund_id, now = signed(signer, RF, APPROVAL), RF, time.time()
    if why == "unsigned":
        action = APPROVAL
    elif why == "another refund":
        refund_id = "rf_" + "f" * 24
    elif why == "another reviewer":
        action = action.model_copy(update={"reviewer": "alice"})
    elif why == "another amount":
        action = action.model_copy(update={"amount": 420000})
    elif why == "another kind of action":  # the same fields, read as another update
        attestation = signer.attest(RF, RejectInput(reviewer="li", reason="no"))
        action = APPROVAL.model_copy(update={"attestation": attestation})
    elif why == "an untrusted key":
        action = signed(ActionSigner.new(), RF, APPROVAL)
    elif why == "too old":
        now += 301
    elif why == "garbled":
        action = action.model_copy(update={"attestation": "v1.x.y"})
    else:
        action = action.model_copy(update={"attestation": "v1.\u00b2.y"})
    with pytest.raises(NotVouched) as refused:
        check(keys, refund_id, action, now)
    assert str(refused.value).startswith("actions by people come through the refundflow API")
    assert says in str(refused.value)


def test_keys_that_are_not_keys_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="REFUNDFLOW_ACTION_VERIFY_KEYS"):
        public_keys("not-a-key")
    with pytest.raises(ConfigurationError, match="REFUNDFLOW_ACTION_SIGNING_KEY"):
        ActionSigner.from_text("short")
    signer = ActionSigner.new()
    again = ActionSigner.from_text(signer.private_text())
    assert again.public_text() == signer.public_text()


def test_the_attestation_is_left_out_of_an_unsigned_payload() -> None:
    """Workers of the release before it read actions without the field."""
    assert "attestation" not in APPROVAL.model_dump(mode="json")
