"""`answer_within`: the first-step update's wait. The SDK ends a cancelled update call with
its own error; a caller cancelled from outside (Ctrl-C, SIGTERM, a client gone) must leave no
"Task exception was never retrieved" behind, and a slow call is a TimeoutError."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from client.starting import answer_within


class SdkCancelled(Exception):
    """What the SDK raises when its update call is cancelled."""


async def _slow_sdk_call(seconds: float = 10.0) -> str:
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError as err:
        raise SdkCancelled("Timeout or cancellation waiting for update") from err
    return "answered"


def _unread_errors(loop: asyncio.AbstractEventLoop) -> list[str]:
    reported: list[str] = []

    def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        reported.append(context["message"])

    loop.set_exception_handler(handler)
    return reported


async def test_a_cancelled_caller_leaves_no_unread_error() -> None:
    reported = _unread_errors(asyncio.get_running_loop())
    callers = [asyncio.create_task(answer_within(_slow_sdk_call(), 5)) for _ in range(3)]
    await asyncio.sleep(0.05)
    for caller in callers:
        caller.cancel()
    for caller in callers:
        with pytest.raises(asyncio.CancelledError):
            await caller
    del callers, caller
    await asyncio.sleep(0.05)
    gc.collect()
    assert reported == []


async def test_an_answer_in_time_is_returned() -> None:
    assert await answer_within(_slow_sdk_call(0.01), 5) == "answered"


async def test_a_slow_call_is_cancelled_and_a_timeout() -> None:
    reported = _unread_errors(asyncio.get_running_loop())
    with pytest.raises(TimeoutError):
        await answer_within(_slow_sdk_call(), 0.05)
    gc.collect()
    assert reported == []
