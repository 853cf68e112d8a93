"""Waiting for asynchronous outcomes without fixed sleeps; the CLI and scratch databases."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from client.refund_client import RefundClient
from worker.temporal_server import temporal_binary
from workflows.models import StatusView

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], timeout: float = 30
) -> T:
    """Poll `probe` until `accept` holds; fail with the last value or error seen.

    An exception from `probe` is retried like a value not yet accepted (the workflow may not
    be queryable yet, a service may be restarting): only the deadline ends the wait. Each
    probe is bounded by what is left of the deadline, so a probe that hangs fails too.
    """
    deadline = time.monotonic() + timeout
    last: str = "none (no probe finished)"
    error: BaseException | None = None
    while True:
        try:
            value = await asyncio.wait_for(probe(), max(deadline - time.monotonic(), 0.5))
        except Exception as err:  # retried until the deadline; reported if it is the last
            last, error = f"error {err!r}", err
        else:
            if accept(value):
                return value
            last, error = f"value {value!r}", None
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last {last}") from error
        await asyncio.sleep(0.1)


async def wait_for_state(
    client: RefundClient, refund_id: str, *states: str, timeout: float = 30
) -> StatusView:
    return await eventually(
        lambda: client.status(refund_id), lambda s: s.state.value in states, timeout
    )


def interruptible() -> None:
    """In a child, before it runs: Ctrl-C (SIGINT) as in a terminal. pytest-xdist's workers
    ignore SIGINT and a child inherits that, so without this a SIGINT never reaches the
    command (Python leaves an ignored SIGINT ignored, as a shell's background job wants)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> tuple[int, str, str]:
    """`refundflow ARGS` in a real process, without blocking the test's event loop.

    A command still running after `timeout` is stopped (see `_stop`) before the test fails,
    so a hung command cannot leave a process (or, for `bench`, a whole stack) behind.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker.cli", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        preexec_fn=interruptible,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        await _stop(proc)
        raise AssertionError(f"refundflow {' '.join(args)}: no exit within {timeout} s") from None
    return proc.returncode or 0, out.decode(), err.decode()


async def _stop(proc: asyncio.subprocess.Process, grace: float = 60) -> None:
    """SIGINT first: the commands stop what they started on Ctrl-C (bench stops its stack and
    removes its folder). SIGKILL if that takes longer than `grace`; the kernel's parent-death
    signal then still stops the stack's children."""
    if proc.returncode is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(proc.communicate(), grace)
    except TimeoutError:
        proc.kill()
        await proc.wait()


_ADMINS: dict[str, str] = {}


def administer_with(url: str, admin_url: str) -> None:
    """Make scratch databases beside `url` (the app's, whose role may not create any) as
    `admin_url`'s role, which then owns and uses them."""
    _ADMINS[url] = admin_url


@contextlib.asynccontextmanager
async def fresh_database(admin_url: str, prefix: str) -> AsyncIterator[str]:
    """The URL of a new, empty database beside `admin_url`'s, dropped afterwards; as the
    stack's owner when `admin_url` is the app's (`administer_with`)."""
    admin_url = _ADMINS.get(admin_url, admin_url)
    name = f"{prefix}_{uuid.uuid4().hex}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def run_the_reset_it_gives(said: str) -> None:
    """The `temporal workflow reset …` a finding's words give, run as written (with the
    dev stack's `temporal`): a trial's went to localhost:7233 when it lacked the address."""
    [reset] = re.findall(r"`(temporal workflow reset [^`]+)`", said)
    ran = await asyncio.to_thread(
        subprocess.run,
        [temporal_binary(), *shlex.split(reset)[1:]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, (reset, ran.stderr)
