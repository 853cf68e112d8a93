"""Compiled bytecode for the workflow sandbox, whatever PYTHONDONTWRITEBYTECODE says.

Temporal's workflow sandbox imports a workflow's module afresh for every workflow it runs.
Without a .pyc to load (PYTHONDONTWRITEBYTECODE=1, common in containers and set on our CI
machine), every refund compiles that module's source again: measured with py-spy as a fifth
of the worker's CPU under load. The worker therefore writes bytecode to a private folder of
its own (mode 0700, removed when it stops), never into the source tree or a shared folder
(a planted .pyc there would run as the worker). A worker killed outright cannot remove its
folder (about 20 MB): the next worker removes the folders of workers that are gone.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from client.settings import pid_alive

PREFIX = "refundflow-bytecode-"


@contextmanager
def private_bytecode_cache(root: str | None = None) -> Iterator[str | None]:
    """Write and read .pyc files under a new private folder while the block runs (no
    writable temporary folder: nothing changes, the worker is only slower)."""
    root = root or tempfile.gettempdir()
    try:
        sweep_abandoned(Path(root))
        folder = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root)
    except OSError:
        yield None
        return
    saved = (sys.pycache_prefix, sys.dont_write_bytecode)
    sys.pycache_prefix, sys.dont_write_bytecode = folder, False
    try:
        yield folder
    finally:
        sys.pycache_prefix, sys.dont_write_bytecode = saved
        shutil.rmtree(folder, ignore_errors=True)


def sweep_abandoned(root: Path) -> None:
    """Remove our folders whose worker is gone (killed before it could clean up)."""
    for folder in root.glob(f"{PREFIX}*"):
        pid = folder.name[len(PREFIX) :].split("-", 1)[0]
        info = os.lstat(folder)
        mine = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
        if pid.isdigit() and mine and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
