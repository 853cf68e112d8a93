"""The receiver example in the README detects forged deliveries, and accepts ours.

The code is taken from the README itself (the python block defining `verify_event`), so
what a newcomer copies is what is tested. examples/subscriber_receiver.py must match it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from activities.signing import InvalidSignature, sign
from activities.signing import verify as verify_ours
from client.settings import PROJECT_ROOT

SECRET = "whsec_test"
EVENT = {"id": "rf_x:1", "type": "refund.completed", "refund_id": "rf_x", "seq": 1}


def readme_block() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    blocks: list[str] = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    (block,) = [b for b in blocks if "def verify_event" in b]
    return block


def readme_receiver() -> tuple[Callable[..., Any], type[Exception]]:
    """(verify_event, ForgedEvent) as defined by the README's example."""
    namespace: dict[str, Any] = {}
    exec(compile(readme_block(), "README.md", "exec"), namespace)
    return namespace["verify_event"], namespace["ForgedEvent"]


def test_example_file_carries_the_readme_code() -> None:
    example = (PROJECT_ROOT / "examples" / "subscriber_receiver.py").read_text()
    for line in readme_block().splitlines():
        assert line in example.splitlines(), line


def test_no_secret_accepts_nothing() -> None:
    """A receiver started without its secret must not take what anyone signs with ''."""
    verify, forged = readme_receiver()
    body = json.dumps(EVENT).encode()
    with pytest.raises(forged, match="no secret configured"):
        verify("", sign("", body), body)


def test_genuine_delivery_is_accepted() -> None:
    verify, _ = readme_receiver()
    body = json.dumps(EVENT).encode()
    assert verify(SECRET, sign(SECRET, body), body) == EVENT


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda body: (sign("wrong-secret", body), body), id="wrong secret"),
        pytest.param(lambda body: (f"t={int(time.time())},v1=\u00e9t\u00e9", body), id="non-ASCII"),
        pytest.param(
            lambda body: (sign(SECRET, body), body.replace(b"completed", b"cancelled")),
            id="tampered body",
        ),
        pytest.param(
            lambda body: (sign(SECRET, body, timestamp=int(time.time()) - 3600), body),
            id="replayed an hour later",
        ),
        pytest.param(lambda body: (None, body), id="unsigned"),
        pytest.param(lambda body: ("t=abc,v1=00", body), id="malformed header"),
    ],
)
def test_forged_delivery_is_detected(forge: Callable[[bytes], tuple[str | None, bytes]]) -> None:
    verify, forged = readme_receiver()
    header, body = forge(json.dumps(EVENT).encode())
    with pytest.raises(forged):
        verify(SECRET, header, body)


OLD_SECRET = "whsec_old"


def test_during_a_rotation_either_secret_accepts_a_doubly_signed_delivery() -> None:
    # What the dispatcher sends during an overlap: one v1 per valid secret, the new first.
    verify, forged = readme_receiver()
    body = json.dumps(EVENT).encode()
    header = sign([SECRET, OLD_SECRET], body)
    assert header.count(",v1=") == 2
    assert verify(SECRET, header, body) == EVENT  # a receiver already on the new secret
    assert verify(OLD_SECRET, header, body) == EVENT  # one still on the old
    with pytest.raises(forged):
        verify("whsec_neither", header, body)


@pytest.mark.parametrize("secret", [SECRET, OLD_SECRET])
def test_our_own_verifier_accepts_any_valid_v1_too(secret: str) -> None:
    # activities.signing.verify checks deliveries in the sandbox's customer inbox.
    body = json.dumps(EVENT).encode()
    verify_ours(secret, sign([SECRET, OLD_SECRET], body), body)
    with pytest.raises(InvalidSignature):
        verify_ours("whsec_neither", sign([SECRET, OLD_SECRET], body), body)
    with pytest.raises(InvalidSignature):  # two timestamps: which one was signed?
        verify_ours(secret, "t=1,t=2,v1=00", body)
