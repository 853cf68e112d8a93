"""`refundflow codec-server` (open and seal payloads for the Web UI and operators),
`refundflow codec-key --id ID` (a fresh key entry to put first in the keyring) and
`refundflow action-key` (a key pair: the API signs people's actions, workers verify them).

Stack commands: the codec server holds the payload keys, and verifies callers with the
API's identity settings (REFUNDFLOW_OIDC_*), so it lives on the composition root's side.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from client.cli.arguments import EXIT_OK
from client.cli.grammar import Subcommands, command
from client.cli.handlers import Handler
from client.codec_key_ids import KEY_ID, KEY_ID_RULE
from client.settings import ConfigurationError, Settings


def _key_id(value: str) -> str:
    """Checked as the command is read: a bad id is the option's mistake, exit 2 (a trial's
    `--id "bad id"` exited 1)."""
    if not KEY_ID.match(value):
        raise argparse.ArgumentTypeError(f"key id {value!r}: {KEY_ID_RULE}")
    return value


def add_codec_commands(sub: Subcommands) -> None:
    server = command(
        sub,
        "codec-server",
        "open sealed payloads for the Temporal Web UI and operators (REFUNDFLOW_CODEC_KEYS)",
    )
    server.add_argument("--host", help="default: REFUNDFLOW_CODEC_HOST or 127.0.0.1")
    server.add_argument("--port", type=int, help="default: REFUNDFLOW_CODEC_PORT or 8081")
    key = command(sub, "codec-key", "print a new payload key entry (id:base64key), for rotation")
    key.add_argument(
        "--id", dest="key_id", required=True, type=_key_id, help="the new key's id, e.g. 2026-11"
    )
    key.add_argument(
        "--rotate",
        type=Path,
        metavar="KEY_FILE",
        help="put the new key first in this key file (the dev stack's: .refundflow/codec/keys);"
        " restart every process to seal with it",
    )
    action_key = command(
        sub,
        "action-key",
        "print a new key pair for people's actions: REFUNDFLOW_ACTION_SIGNING_KEY for the API"
        " alone, REFUNDFLOW_ACTION_VERIFY_KEYS for workers",
    )
    action_key.add_argument(
        "--public",
        action="store_true",
        help="print only the public key of the REFUNDFLOW_ACTION_SIGNING_KEY set now (for a"
        " rotation: the workers' REFUNDFLOW_ACTION_VERIFY_KEYS)",
    )


async def _codec_server(args: argparse.Namespace) -> int:
    from api.codec_server import CodecServerConfig, serve_codec
    from api.config import ApiConfig
    from client.payload_codec import CodecKeyError, EncryptionCodec, load_keyring
    from worker.logging_setup import configure_logging

    settings = Settings.from_env()
    if args.json:
        settings = dataclasses.replace(settings, log_format="json")
    try:
        keyring = load_keyring(settings.codec_keys, settings.codec_key_file)
    except CodecKeyError as err:
        raise ConfigurationError(str(err)) from None
    if keyring is None:
        raise ConfigurationError(
            "the codec server needs the payload keys: set REFUNDFLOW_CODEC_KEYS or"
            " REFUNDFLOW_CODEC_KEY_FILE (`refundflow codec-key --id ID` makes one)"
        )
    config = CodecServerConfig.from_env()
    config = dataclasses.replace(
        config, host=args.host or config.host, port=args.port or config.port
    )
    configure_logging(settings.log_format, settings.log_level)
    await serve_codec(
        config, ApiConfig.from_env(), EncryptionCodec(keyring), settings.temporal_namespace
    )
    return EXIT_OK


def _codec_key(args: argparse.Namespace) -> int:
    from client.payload_codec import CodecKeyError, new_key_entry, rotate_key_file

    try:
        if args.rotate is not None:
            ring = rotate_key_file(args.rotate, args.key_id)
            said = {"key_file": str(args.rotate), "current": ring.current, "keys": list(ring.keys)}
            print(json.dumps(said) if args.json else _rotated(said))
            return EXIT_OK
        entry = new_key_entry(args.key_id)
    except CodecKeyError as err:
        raise ConfigurationError(str(err)) from None
    print(json.dumps({"key_id": args.key_id, "entry": entry}) if args.json else entry)
    return EXIT_OK


def _rotated(said: dict[str, Any]) -> str:
    return (
        f"{said['key_file']}: {said['current']} seals from each process's next start;"
        f" the older keys still open what they sealed: {', '.join(said['keys'][1:])}"
    )


def _action_key(args: argparse.Namespace) -> int:
    from client.action_attestation import ActionSigner

    if args.public:  # the public half of the key set now: for the workers, in a rotation
        key = Settings.from_env().action_signing_key
        if not key:
            raise ConfigurationError("--public: set REFUNDFLOW_ACTION_SIGNING_KEY first")
        said = {"REFUNDFLOW_ACTION_VERIFY_KEYS": ActionSigner.from_text(key).public_text()}
    else:
        signer = ActionSigner.new()
        said = {
            "REFUNDFLOW_ACTION_SIGNING_KEY": signer.private_text(),
            "REFUNDFLOW_ACTION_VERIFY_KEYS": signer.public_text(),
        }
    print(json.dumps(said) if args.json else "\n".join(f"{k}={v}" for k, v in said.items()))
    return EXIT_OK


CODEC_HANDLERS: dict[str, Handler] = {
    "codec-server": _codec_server,
    "codec-key": _codec_key,
    "action-key": _action_key,
}
