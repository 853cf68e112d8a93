"""What a failed delivery records, and `subscribers list` and `refundflow events` show: the
subscriber's refusal with the start of its own answer, or plainly why no connection was made,
always on one printable line (activities/dispatcher.py)."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from activities.ports import error_text

ANSWER_SHOWN = 200
"""How much of a subscriber's refusal is kept with the delivery (the rest is its business)."""


def refusal_text(status: int, said: bytes) -> str:
    """A subscriber's refusal in one line: its status and the start of what it answered
    ("HTTP 503: database is down"), which is often the only clue to what is wrong."""
    words = one_line(said.decode("utf-8", "replace"))[:ANSWER_SHOWN]
    return f"HTTP {status}: {words}" if words else f"HTTP {status}"


def not_connected(err: aiohttp.ClientConnectorError, waited_s: float) -> str:
    """Why no connection was made, plainly where it is plain: refused, or the name not found.
    TLS and proxy failures keep their own text (theirs names the certificate or the proxy)."""
    if isinstance(err, aiohttp.ClientSSLError | aiohttp.ClientProxyConnectionError):
        return error_text(err, waited_s)
    cause = err.os_error
    if isinstance(cause, ConnectionRefusedError):
        reason = "connection refused (nothing listens there)"
    else:
        reason = cause.strerror or str(cause)
    return f"cannot connect to {err.host}:{err.port}: {reason}"


async def start_of(response: aiohttp.ClientResponse) -> bytes:
    """The first ANSWER_SHOWN bytes of a refusal's body, or what came within a second: an
    answer that stalls after its status line must not cost the status."""
    said = b""
    with contextlib.suppress(TimeoutError, aiohttp.ClientError):
        async with asyncio.timeout(1):
            while len(said) < ANSWER_SHOWN:
                chunk = await response.content.read(ANSWER_SHOWN - len(said))
                if not chunk:
                    break
                said += chunk
    return said


def one_line(text: str) -> str:
    """Text from outside on one printable line: no control characters (Postgres text holds no
    NUL, and a terminal must not take a subscriber's escape sequences), spaces collapsed."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())
