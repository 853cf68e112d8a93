"""Waiting for asynchronous outcomes without fixed sleeps; the CLI and scratch databases."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from client.refund_client import RefundClient
from workflows.models import StatusView

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], timeout: float = 30
) -> T:
    """Poll `probe` until `accept` holds; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last value: {value!r}")
        await asyncio.sleep(0.1)


async def wait_for_state(
    client: RefundClient, refund_id: str, *states: str, timeout: float = 30
) -> StatusView:
    return await eventually(
        lambda: client.status(refund_id), lambda s: s.state.value in states, timeout
    )


async def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """`refundflow ARGS` in a real process, without blocking the test's event loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker.cli", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


@contextlib.asynccontextmanager
async def fresh_database(admin_url: str, prefix: str) -> AsyncIterator[str]:
    """The URL of a new, empty database beside `admin_url`'s, dropped afterwards."""
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
