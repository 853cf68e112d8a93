"""Errors in logs, delivery records and the CLI's last-resort line say something: an
error without a message (a TimeoutError from asyncio) was printed as "TimeoutError: " (issue 17)."""

from __future__ import annotations

import aiohttp

from activities.ports import error_text


def test_a_timeout_says_how_long_was_waited_and_other_errors_keep_their_message() -> None:
    assert error_text(TimeoutError(), 10) == "TimeoutError: no answer within 10 s"
    assert error_text(TimeoutError(), 2.5) == "TimeoutError: no answer within 2.5 s"
    assert error_text(TimeoutError()) == "TimeoutError"
    refused = aiohttp.ClientConnectionError("Cannot connect to host 127.0.0.1:9")
    assert error_text(refused) == "ClientConnectionError: Cannot connect to host 127.0.0.1:9"
    assert not error_text(RuntimeError()).endswith(": ")
