"""`refundflow dev --fresh` deletes the stack's saved state, the dev issuer's key with it
(tokens signed before then stop verifying), and nothing else in the folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from api.dev_issuer import ensure_signing_key, key_path
from worker.dev_codec import ensure_key
from worker.processes import StackError
from worker.stack_home import wipe_home


def test_fresh_deletes_the_state_and_the_issuer_key_only(tmp_path: Path) -> None:
    home = tmp_path / ".refundflow"
    (home / "postgres").mkdir(parents=True)
    (home / "logs").mkdir()
    (home / "temporal.sqlite").write_text("")
    (home / "notes.txt").write_text("mine")
    key = ensure_signing_key(home)
    assert key == key_path(home) and key.stat().st_mode & 0o777 == 0o600
    assert ensure_signing_key(home).read_bytes() == key.read_bytes()  # made once, then kept
    ensure_key(home)  # the payload key goes with the Temporal state it sealed
    wipe_home(home)
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt"]


def test_fresh_is_refused_while_the_stack_runs(tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text(json.dumps({"pid": os.getpid()}))
    with pytest.raises(StackError, match="stop it before --fresh"):
        wipe_home(tmp_path)
