"""The payload codec: AES-GCM with key ids, rotation (old keys still open), pass-through of
plaintext, failures sealed too, keys only from configuration and refused in one line."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from client.connections import converter_for
from client.payload_codec import (
    ENCODING,
    KEY_ID_METADATA,
    CodecKeyError,
    EncryptionCodec,
    Keyring,
    UndecryptablePayload,
    data_converter,
    ensure_key_file,
    load_keyring,
    new_key_entry,
    rotate_key_file,
)
from client.pydantic_conversion import refundflow_data_converter
from client.settings import ConfigurationError, Settings

SECRET = "customer cust_42 says: the parcel arrived crushed"


def ring(*ids: str) -> str:
    return ",".join(new_key_entry(key_id) for key_id in ids)


def plain(text: str = SECRET) -> Payload:
    return pydantic_data_converter.payload_converter.to_payloads([{"note": text}])[0]


async def test_sealed_payloads_name_their_key_and_hide_the_data() -> None:
    codec = EncryptionCodec(Keyring.parse(ring("k1"), "test"))
    [sealed] = await codec.encode([plain()])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    assert b"crushed" not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [plain()]
    [again] = await codec.encode([plain()])
    assert again.data != sealed.data, "a fresh nonce for every payload"


async def test_rotation_old_keys_still_open_and_the_new_one_seals() -> None:
    k1 = new_key_entry("k1")
    old = Keyring.parse(k1, "old")
    [under_k1] = await EncryptionCodec(old).encode([plain()])
    codec = EncryptionCodec(Keyring.parse(f"{new_key_entry('k2')},{k1}", "new"))
    assert await codec.decode([under_k1]) == [plain()]
    [under_k2] = await codec.encode([plain()])
    assert under_k2.metadata[KEY_ID_METADATA] == b"k2"
    with pytest.raises(UndecryptablePayload, match=r"key 'k2'.*does not hold"):
        await EncryptionCodec(old).decode([under_k2])


async def test_plaintext_passes_through_and_sealed_is_never_sealed_twice() -> None:
    codec = EncryptionCodec(Keyring.parse(ring("k1"), "test"))
    assert await codec.decode([plain()]) == [plain()]
    [sealed] = await codec.encode([plain()])
    assert await codec.encode([sealed]) == [sealed]


async def test_a_relabelled_or_altered_payload_does_not_open() -> None:
    keys = Keyring.parse(ring("k1", "k2"), "test")
    codec = EncryptionCodec(keys)
    [sealed] = await codec.encode([plain()])
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata[KEY_ID_METADATA] = b"k2"
    with pytest.raises(UndecryptablePayload, match="does not open"):
        await codec.decode([relabelled])
    altered = Payload()
    altered.CopyFrom(sealed)
    altered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(UndecryptablePayload, match="does not open"):
        await codec.decode([altered])
    # Cut short, down to less than a nonce (what a hand-made payload in the Web UI may be).
    for kept in (3, 12, 27):
        cut = Payload()
        cut.CopyFrom(sealed)
        cut.data = sealed.data[:kept]
        with pytest.raises(UndecryptablePayload, match=f"is {kept} bytes, too short"):
            await codec.decode([cut])


async def test_failure_messages_and_details_are_sealed_and_restored() -> None:
    converter = data_converter(Keyring.parse(ring("k1"), "test"))
    failure = Failure()
    error = ApplicationError(SECRET, {"reason": "crushed"}, type="ProviderRefused")
    await converter.encode_failure(error, failure)
    assert SECRET not in str(failure) and "crushed" not in failure.SerializeToString().decode(
        errors="replace"
    )
    assert failure.message == "Encoded failure"
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    back = await converter.decode_failure(failure)
    assert isinstance(back, ApplicationError) and back.message == SECRET
    assert back.type == "ProviderRefused" and back.details == ({"reason": "crushed"},)


def test_no_keys_configured_means_plaintext_and_no_default_key() -> None:
    settings = Settings.from_env({"REFUNDFLOW_HOME": "/nonexistent"})
    assert converter_for(settings) is refundflow_data_converter
    assert load_keyring("", "") is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "holds no key"),
        ("k1", "must be `id:base64key`"),
        ("k 1:" + base64.b64encode(os.urandom(32)).decode(), "must be `id:base64key`"),
        ("k1:not base64!", "not base64"),
        ("k1:" + base64.b64encode(os.urandom(16)).decode(), "16 bytes; AES-256 needs 32"),
        (new_key_entry("k1") + "," + new_key_entry("k1"), "appears twice"),
    ],
    # Ids of their own: made from the random keys, they would differ between xdist's
    # workers (which then refuse to run) and put key material in test names.
    ids=["empty", "no-id", "space-in-id", "not-base64", "16-byte-key", "duplicate-id"],
)
def test_bad_keys_are_refused_in_one_line_without_the_key(spec: str, message: str) -> None:
    with pytest.raises(CodecKeyError, match=message) as caught:
        Keyring.parse(spec, "REFUNDFLOW_CODEC_KEYS")
    secret = spec.partition(":")[2]
    assert "\n" not in str(caught.value) and (not secret or secret not in str(caught.value))


def test_keys_and_a_key_file_together_are_refused(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "REFUNDFLOW_HOME": "/nonexistent",
            "REFUNDFLOW_CODEC_KEYS": ring("k1"),
            "REFUNDFLOW_CODEC_KEY_FILE": str(tmp_path / "keys"),
        }
    )
    with pytest.raises(ConfigurationError, match="not both"):
        converter_for(settings)
    missing = Settings.from_env(
        {"REFUNDFLOW_HOME": "/nonexistent", "REFUNDFLOW_CODEC_KEY_FILE": str(tmp_path / "no")}
    )
    with pytest.raises(ConfigurationError, match=r"REFUNDFLOW_CODEC_KEY_FILE .*no"):
        converter_for(missing)


def test_key_file_is_made_once_for_its_owner_only_and_keys_stay_out_of_reprs(
    tmp_path: Path,
) -> None:
    path = ensure_key_file(tmp_path / "codec" / "keys")
    assert path.stat().st_mode & 0o777 == 0o600
    first = path.read_text()
    assert ensure_key_file(path).read_text() == first
    keyring = load_keyring("", str(path))
    assert keyring is not None and keyring.current == "dev-1"
    key_text = first.strip().splitlines()[-1].partition(":")[2]
    settings = Settings.from_env(
        {"REFUNDFLOW_HOME": "/nonexistent", "REFUNDFLOW_CODEC_KEYS": first}
    )
    assert key_text not in repr(keyring) and key_text not in repr(settings)


def test_the_current_key_is_the_first_one_in_a_file_with_comments(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# rotated 2026-11\n{new_key_entry('k2')}  # current\n{new_key_entry('k1')}\n")
    keyring = load_keyring("", str(path))
    assert keyring is not None and keyring.current == "k2" and set(keyring.keys) == {"k1", "k2"}


def test_commands_beside_the_dev_stack_seal_with_its_key_for_its_own_temporal_only(
    tmp_path: Path,
) -> None:
    stack = {"pid": os.getpid(), "temporal_address": "127.0.0.1:7233"}
    (tmp_path / "stack.json").write_text(
        json.dumps({**stack, "codec_key_file": str(tmp_path / "codec" / "keys")})
    )
    beside = Settings.from_env({"REFUNDFLOW_HOME": str(tmp_path)})
    assert beside.codec_key_file == str(tmp_path / "codec" / "keys")
    elsewhere = Settings.from_env(
        {"REFUNDFLOW_HOME": str(tmp_path), "TEMPORAL_ADDRESS": "prod.example:7233"}
    )
    assert elsewhere.codec_key_file == ""
    own_keys = Settings.from_env({"REFUNDFLOW_HOME": str(tmp_path), "REFUNDFLOW_CODEC_KEYS": "x"})
    assert (own_keys.codec_key_file, own_keys.codec_keys) == ("", "x")


async def test_rotating_a_key_file_puts_a_new_key_first_and_keeps_the_old(tmp_path: Path) -> None:
    path = ensure_key_file(tmp_path / "keys")
    before = load_keyring("", str(path))
    assert before is not None
    [sealed] = await EncryptionCodec(before).encode([plain()])
    after = rotate_key_file(path, "dev-2")
    assert after.current == "dev-2" and list(after.keys) == ["dev-2", "dev-1"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert await EncryptionCodec(after).decode([sealed]) == [plain()]
    with pytest.raises(CodecKeyError, match="already holds a key 'dev-2'"):
        rotate_key_file(path, "dev-2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys"]
