"""The dev stack's home folder (./.refundflow): what `refundflow dev --fresh` deletes."""

from __future__ import annotations

import shutil
from pathlib import Path

from client.settings import STACK_FILE, pid_alive, read_stack_file
from worker.processes import StackError

STATE = ("postgres", "temporal.sqlite", "logs", "issuer", "codec", STACK_FILE)
"""Everything the stack keeps between runs; `issuer` holds the dev token issuer's key,
`codec` the payload key that Temporal's state is sealed with (they go together)."""


def wipe_home(home: Path) -> None:
    """Delete the dev stack's state (refused while a stack is running from it)."""
    running = read_stack_file(home)
    if running and pid_alive(int(running["pid"])):
        raise StackError(f"a dev stack is running from {home}; stop it before --fresh")
    for name in STATE:
        target = home / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
