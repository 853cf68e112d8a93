"""HMAC signatures on HTTP deliveries, in the scheme Stripe uses:

    <Header>: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>[,v1=...]

Used for the payment provider's webhooks to us (the sandbox signs, our receiver verifies)
and for our event deliveries to subscribers (we sign, the subscriber verifies: see the
receiver example in examples/subscriber_receiver.py). While a subscriber's secret is being
rotated, a delivery carries one v1 per valid secret (the new one first); a receiver accepts
the delivery when any v1 matches its secret, so either side can switch at its own pace.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

TOLERANCE_SECONDS = 300


class InvalidSignature(Exception):
    pass


def _digest(secret: str, timestamp: int, raw: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()


def sign(secret: str | Sequence[str], body: bytes | str, timestamp: int | None = None) -> str:
    """The signature header for `body`: one v1 per secret, in the order given."""
    raw = body.encode() if isinstance(body, str) else body
    ts = int(time.time()) if timestamp is None else timestamp
    keys = [secret] if isinstance(secret, str) else list(secret)
    return ",".join([f"t={ts}", *(f"v1={_digest(key, ts, raw)}" for key in keys)])


def verify(secret: str, header: str | None, body: bytes, *, now: float | None = None) -> None:
    """Raise InvalidSignature unless one of `header`'s v1 values signs `body` with `secret`,
    recently."""
    if not header:
        raise InvalidSignature("missing signature header")
    pairs = [p.split("=", 1) for p in header.split(",") if "=" in p]
    given = [value for key, value in pairs if key == "v1"]
    try:
        (timestamp,) = [int(value) for key, value in pairs if key == "t"]
    except ValueError:
        raise InvalidSignature("malformed signature header") from None
    if not given:
        raise InvalidSignature("malformed signature header")
    current = time.time() if now is None else now
    if abs(current - timestamp) > TOLERANCE_SECONDS:
        raise InvalidSignature(f"timestamp outside the {TOLERANCE_SECONDS} s tolerance")
    expected = _digest(secret, timestamp, body)
    # Compare with every v1 (no early exit), so timing says nothing about which one matched.
    if not sum(hmac.compare_digest(expected, candidate) for candidate in given):
        raise InvalidSignature("signature does not match")
