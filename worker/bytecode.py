"""Compiled bytecode for the workflow sandbox, whatever PYTHONDONTWRITEBYTECODE says.

Temporal's workflow sandbox imports a workflow's module afresh for every workflow it runs.
Without a .pyc to load (PYTHONDONTWRITEBYTECODE=1, common in containers and set on our CI
machine), every refund compiles that module's source again: measured with py-spy as a fifth
of the worker's CPU under load. The worker therefore writes bytecode to a private folder of
its own (mode 0700, removed when it stops), never into the source tree or a shared folder
(a planted .pyc there would run as the worker).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def private_bytecode_cache() -> Iterator[str | None]:
    """Write and read .pyc files under a new private folder while the block runs (no
    writable temporary folder: nothing changes, the worker is only slower)."""
    try:
        folder = tempfile.mkdtemp(prefix="refundflow-bytecode-")
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
