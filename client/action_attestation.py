"""Who acts on a refund is vouched for by the API, not claimed by whoever reaches Temporal.

The API verifies a person's token and then acts for them through a workflow update whose
input names them (reviewer, operator, actor). Temporal does not know who sent an update: an
operator with the Web UI or the Temporal CLI could send `approve` naming anyone, past the
four-eyes rule (invariant 10). So the API signs each person's action with an Ed25519 key
only it holds, and the worker's update validators refuse an action without a valid
signature from a key it trusts (worker.vouched_actions). The worker holds only public keys:
it can check a signature, never make one.

What is signed: the refund (the workflow id), the kind of action (its input type), every
field of the input, and when it was signed. An action signed for one refund does not apply
to another, a changed field breaks the signature, and a signature older than
`MAX_AGE` (or from too far ahead) is refused, so a captured update cannot be sent again later.

The attestation: `v1.<unix seconds>.<base64url signature>`. Keys: base64url of the raw 32
bytes (`refundflow action-key` makes a pair).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from datetime import timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel

from client.settings import ConfigurationError, Settings

VERSION = "v1"
MAX_AGE = timedelta(minutes=5)
"""How far a signature's time may be from the worker's clock, either way (clock skew)."""
THROUGH_THE_API = "actions by people come through the refundflow API, which vouches for who acts"


class NotVouched(ValueError):
    """An action without a valid attestation: refused, nothing changed."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _message(refund_id: str, action: BaseModel, signed_at: int) -> bytes:
    fields = action.model_dump(mode="json", exclude={"attestation"})
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    kind = type(action).__name__
    return f"refundflow-action-{VERSION}\n{refund_id}\n{kind}\n{signed_at}\n{body}".encode()


class ActionSigner:
    """The API's side: signs the actions of the people it verified."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key

    @classmethod
    def from_text(cls, text: str) -> ActionSigner:
        """From REFUNDFLOW_ACTION_SIGNING_KEY: base64url of the 32-byte private key."""
        try:
            raw = _unb64(text.strip())
            return cls(Ed25519PrivateKey.from_private_bytes(raw))
        except ValueError:
            raise ConfigurationError(
                "REFUNDFLOW_ACTION_SIGNING_KEY is not a signing key (base64url of 32 bytes;"
                " `refundflow action-key` makes one)"
            ) from None

    @classmethod
    def new(cls) -> ActionSigner:
        return cls(Ed25519PrivateKey.generate())

    def private_text(self) -> str:
        from cryptography.hazmat.primitives import serialization as s

        raw = self._key.private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw, s.NoEncryption())
        return _b64(raw)

    def public_text(self) -> str:
        return public_text(self._key.public_key())

    def attest(self, refund_id: str, action: BaseModel) -> str:
        signed_at = int(time.time())
        signature = self._key.sign(_message(refund_id, action, signed_at))
        return f"{VERSION}.{signed_at}.{_b64(signature)}"


def signer_for(settings: Settings) -> ActionSigner | None:
    """The signer a client built from `settings` acts with (None: no key, signs nothing)."""
    key: str = settings.action_signing_key
    return ActionSigner.from_text(key) if key else None


def public_text(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization as s

    return _b64(key.public_bytes(s.Encoding.Raw, s.PublicFormat.Raw))


def public_keys(text: str) -> list[Ed25519PublicKey]:
    """REFUNDFLOW_ACTION_VERIFY_KEYS: base64url public keys, comma-separated (more than one
    while a signing key is rotated)."""
    keys = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            keys.append(Ed25519PublicKey.from_public_bytes(_unb64(part)))
        except ValueError:
            raise ConfigurationError(
                f"REFUNDFLOW_ACTION_VERIFY_KEYS: {part[:12]}… is not a public key (base64url"
                " of 32 bytes; `refundflow action-key` makes a pair)"
            ) from None
    return keys


def check(keys: Sequence[Ed25519PublicKey], refund_id: str, action: BaseModel, now: float) -> None:
    """Refuse (NotVouched) an action the API did not sign for this refund, as it is, lately.
    `now`: this machine's clock (unix seconds), not the workflow's, which time skipping
    moves; the check runs in an update's validator, which replay never runs again."""
    attestation = getattr(action, "attestation", None)
    if not attestation:
        raise NotVouched(f"{THROUGH_THE_API}; this one came to Temporal directly")
    version, _, rest = attestation.partition(".")
    signed_at_text, _, signature_text = rest.partition(".")
    if version != VERSION or not (signed_at_text.isascii() and signed_at_text.isdigit()):
        raise NotVouched(f"{THROUGH_THE_API}; its attestation is not one")
    signed_at = int(signed_at_text)
    if abs(now - signed_at) > MAX_AGE.total_seconds():
        raise NotVouched(
            f"{THROUGH_THE_API}; this one was signed {_age(now, signed_at)}: send the action again"
        )
    message = _message(refund_id, action, signed_at)
    for key in keys:
        try:
            key.verify(_unb64(signature_text), message)
            return
        except (InvalidSignature, ValueError):
            continue
    raise NotVouched(
        f"{THROUGH_THE_API}; its signature does not match this refund and action"
        " (or a key this worker trusts)"
    )


def _age(now: float, signed_at: int) -> str:
    seconds = int(now) - signed_at
    return f"{seconds} s ago" if seconds >= 0 else f"{-seconds} s ahead of this worker's clock"
