"""Encrypted payloads: an AES-GCM payload codec with key ids, and the keyring it uses.

Everything a workflow or activity takes or returns, every signal, update, query answer,
memo, summary and failure message passes through the data converter's codec before it
reaches Temporal, so history holds ciphertext only (search attributes and ids excepted:
Temporal indexes those, and they carry no personal data). Each encrypted payload names the
key that sealed it (`encryption-key-id`), so keys rotate: the first key of the ring seals,
every key of the ring opens. A payload that is not encrypted (written before encryption was
on, or by a client without the codec) passes through unchanged.

Keys come from configuration only, never from code: REFUNDFLOW_CODEC_KEYS
(`id:base64key,...`, the current one first) or REFUNDFLOW_CODEC_KEY_FILE (the same entries,
one per line). Workflows never import this module: the worker runs the codec outside the
workflow sandbox.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from client.codec_key_ids import KEY_ID, KEY_ID_RULE
from client.pydantic_conversion import refundflow_data_converter

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
KEY_BYTES = 32
"""AES-256: a key is 32 random bytes, base64 in configuration."""
NONCE_BYTES = 12
TAG_BYTES = 16  # AES-GCM's authentication tag, after the ciphertext


class CodecKeyError(Exception):
    """Codec keys that cannot work; one line naming the setting, never a key."""


class UndecryptablePayload(Exception):
    """An encrypted payload no key of the ring opens (unknown key id, or tampered)."""


@dataclass(frozen=True)
class Keyring:
    """The current key (seals) and older ones that still open what they sealed."""

    current: str
    """Id of the key new payloads are sealed with."""
    keys: dict[str, bytes] = field(repr=False)

    @classmethod
    def parse(cls, spec: str, source: str) -> Keyring:
        """`id:base64key` entries separated by commas or new lines, the current one first;
        `#` starts a comment. `source` names the setting in errors."""
        entries = [
            entry.strip()
            for line in spec.splitlines()
            for entry in line.split("#", 1)[0].split(",")
            if entry.strip()
        ]
        if not entries:
            raise CodecKeyError(f"{source} holds no key")
        keys: dict[str, bytes] = {}
        for number, entry in enumerate(entries, 1):
            key_id, key = _parse_entry(entry, number, source)
            if key_id in keys:
                raise CodecKeyError(f"{source}: key id {key_id!r} appears twice")
            keys[key_id] = key
        return cls(entries[0].partition(":")[0].strip(), keys)

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            known = ", ".join(sorted(self.keys))
            raise UndecryptablePayload(
                f"payload sealed with key {key_id!r}, which the keyring does not hold"
                f" (it holds {known}): add the old key back after the current one"
            ) from None


def _parse_entry(entry: str, number: int, source: str) -> tuple[str, bytes]:
    key_id, sep, encoded = entry.partition(":")
    key_id = key_id.strip()
    if not sep or not KEY_ID.match(key_id):
        raise CodecKeyError(
            f"{source}: entry {number} must be `id:base64key` with an id of letters, digits,"
            " `.`, `_` or `-`"
        )
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise CodecKeyError(f"{source}: key {key_id!r} is not base64") from None
    if len(key) != KEY_BYTES:
        raise CodecKeyError(
            f"{source}: key {key_id!r} is {len(key)} bytes; AES-256 needs {KEY_BYTES}"
        )
    return key_id, key


def new_key_entry(key_id: str) -> str:
    """A fresh `id:base64key` entry (32 random bytes)."""
    if not KEY_ID.match(key_id):
        raise CodecKeyError(f"key id {key_id!r}: {KEY_ID_RULE}")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


def load_keyring(keys: str, key_file: str) -> Keyring | None:
    """The keyring configuration names (REFUNDFLOW_CODEC_KEYS or _KEY_FILE), or None when
    neither is set: payloads then stay plaintext, as before encryption existed."""
    if keys and key_file:
        raise CodecKeyError("set REFUNDFLOW_CODEC_KEYS or REFUNDFLOW_CODEC_KEY_FILE, not both")
    if keys:
        return Keyring.parse(keys, "REFUNDFLOW_CODEC_KEYS")
    if not key_file:
        return None
    source = f"REFUNDFLOW_CODEC_KEY_FILE {key_file}"
    try:
        return Keyring.parse(Path(key_file).read_text(), source)
    except OSError as err:
        raise CodecKeyError(f"{source}: {err.strerror or err}") from None


def ensure_key_file(path: Path, key_id: str = "dev-1") -> Path:
    """A key file with one fresh key, made once, readable by its owner only (the dev stack's;
    kept with Temporal's state, which it must outlive)."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(
            "# refundflow payload keys: id:base64key, the current one first; older keys\n"
            "# after it keep opening what they sealed.\n" + new_key_entry(key_id) + "\n"
        )
    return path


def rotate_key_file(path: Path, key_id: str) -> Keyring:
    """Put a fresh key first in the key file (it seals from the next start of each process);
    the older keys stay after it and keep opening what they sealed."""
    source = f"key file {path}"
    try:
        old = path.read_text()
    except OSError as err:
        raise CodecKeyError(f"{source}: {err.strerror or err}") from None
    if key_id in Keyring.parse(old, source).keys:
        raise CodecKeyError(f"{source} already holds a key {key_id!r}")
    fresh = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(new_key_entry(key_id) + "\n" + old)
    os.replace(fresh, path)  # whole or not at all: a reader never sees half a ring
    return Keyring.parse(path.read_text(), source)


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each whole serialized payload (metadata included), with a fresh
    random nonce; the key id is authenticated with it, so relabelling a payload fails."""

    def __init__(self, keyring: Keyring) -> None:
        super().__init__()
        self.keyring = keyring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.seal(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.open(p) for p in payloads]

    def seal(self, payload: Payload) -> Payload:
        if is_encrypted(payload):
            return payload  # already sealed (a payload passed along as is): never twice
        key_id = self.keyring.current
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
            data=nonce + sealed,
        )

    def open(self, payload: Payload) -> Payload:
        if not is_encrypted(payload):
            return payload  # plaintext from before encryption, or a client without it
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        self.keyring.key(key_id)  # an unknown id says so, by name
        if len(payload.data) < NONCE_BYTES + TAG_BYTES:  # AESGCM would refuse the nonce
            raise UndecryptablePayload(
                f"payload marked sealed with key {key_id!r} is {len(payload.data)} bytes, too"
                " short to be sealed: cut off, or not one of ours"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = self._ciphers[key_id].decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            raise UndecryptablePayload(
                f"payload sealed with key {key_id!r} does not open: altered, or another key"
                " under that id"
            ) from None
        return Payload.FromString(plain)


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING


def data_converter(keyring: Keyring | None) -> DataConverter:
    """Pydantic conversion as always; with a keyring, the codec too, and failure messages
    and stack traces moved into an encoded attribute so the codec seals them as well."""
    if keyring is None:
        return refundflow_data_converter
    return dataclasses.replace(
        refundflow_data_converter,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def encryption_label(converter: DataConverter) -> str:
    """How payloads are stored, for logs: the current key's id, never a key."""
    codec = converter.payload_codec
    if isinstance(codec, EncryptionCodec):
        return f"encrypted (key {codec.keyring.current}, {len(codec.keyring.keys)} in the ring)"
    return "plaintext"


def payloads_in(message: Message, path: str = "") -> Iterator[tuple[str, Payload]]:
    """Every Payload anywhere in a protobuf message (a history event, say), with the path of
    fields that holds it: what a test reads, or `open_history` opens in place."""
    if isinstance(message, Payload):
        yield path, message
        return
    for described, value in message.ListFields():
        where = f"{path}.{described.name}"
        if described.message_type is None:
            continue
        if described.message_type.GetOptions().map_entry:
            for key, item in value.items():
                if isinstance(item, Message):
                    yield from payloads_in(item, f"{where}[{key}]")
        elif isinstance(value, Message):
            yield from payloads_in(value, where)
        else:  # a repeated message field
            for item in value:
                yield from payloads_in(item, where)


def open_history(history: WorkflowHistory, codec: EncryptionCodec) -> WorkflowHistory:
    """The history with every sealed payload opened in place (plaintext ones untouched): how
    a history recorded from a stack that seals is kept for replay tests, which hold no key."""
    for event in history.events:
        for _, payload in payloads_in(event):
            if is_encrypted(payload):
                payload.CopyFrom(codec.open(payload))
    return history
