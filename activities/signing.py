"""HMAC signatures on HTTP deliveries, in the scheme Stripe uses:

    <Header>: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

Used for the payment provider's webhooks to us (the sandbox signs, our receiver verifies)
and for our event deliveries to subscribers (we sign, the subscriber verifies: see the
receiver example in examples/subscriber_receiver.py).
"""

from __future__ import annotations

import hashlib
import hmac
import time

TOLERANCE_SECONDS = 300


class InvalidSignature(Exception):
    pass


def sign(secret: str, body: bytes | str, timestamp: int | None = None) -> str:
    raw = body.encode() if isinstance(body, str) else body
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + raw, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def verify(secret: str, header: str | None, body: bytes, *, now: float | None = None) -> None:
    """Raise InvalidSignature unless `header` signs `body` with `secret`, recently."""
    if not header:
        raise InvalidSignature("missing signature header")
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise InvalidSignature("malformed signature header") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > TOLERANCE_SECONDS:
        raise InvalidSignature(f"timestamp outside the {TOLERANCE_SECONDS} s tolerance")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest(), given):
        raise InvalidSignature("signature does not match")
