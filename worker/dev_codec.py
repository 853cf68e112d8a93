"""Encrypted payloads in the dev stack: its key file, the codec server's process, and the
Web UI pointed at it.

The dev stack seals every payload, as a deployment should: its key is made once under the
stack's home (`codec/keys`, mode 0600), beside Temporal's state, which it must outlive
(`refundflow dev --fresh` deletes both). Every process the stack starts gets
REFUNDFLOW_CODEC_KEY_FILE; commands from another shell find the file through stack.json.
The Web UI (`--ui-codec-endpoint`) opens payloads through the codec server, whose dev-only
allowance lets the UI's own origin through on loopback, since that UI has no login.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from client.payload_codec import ensure_key_file
from worker.processes import spawn

KEY_FILE = "codec/keys"


def key_file(home: Path) -> Path:
    return home / KEY_FILE


def codec_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def codec_env(home: Path, port: int, ui_port: int | None) -> dict[str, str]:
    """What every process of the stack is told: the key file; and the codec server, where
    it listens and, with a Web UI, which origins are that UI's (both names reach it)."""
    env = {
        "REFUNDFLOW_CODEC_KEY_FILE": str(key_file(home)),
        "REFUNDFLOW_CODEC_HOST": "127.0.0.1",
        "REFUNDFLOW_CODEC_PORT": str(port),
    }
    if ui_port is not None:
        env["REFUNDFLOW_CODEC_DEV_UI_ORIGINS"] = (
            f"http://127.0.0.1:{ui_port},http://localhost:{ui_port}"
        )
    return env


def ensure_key(home: Path) -> Path:
    """The stack's payload key, made once (before any process that seals starts)."""
    return ensure_key_file(key_file(home))


def start_codec_server(env: dict[str, str], log_path: Path | None) -> subprocess.Popen[bytes]:
    return spawn([sys.executable, "-m", "worker.cli", "codec-server"], log_path=log_path, env=env)


def describe(home: Path, port: int) -> dict[str, Any]:
    """The codec's part of stack.json: commands from another shell seal with this key."""
    return {"codec_url": codec_url(port), "codec_key_file": str(key_file(home))}
