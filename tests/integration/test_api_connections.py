"""The API keeps an idle connection open longer than clients and load balancers keep theirs
(api/server.py): otherwise the server closes it just as a client sends its next request on
it, and that request (a POST is not retried) fails without reaching the API."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from api.server import KEEP_ALIVE_S
from tests.integration.api_support import Api

pytestmark = [pytest.mark.stack, pytest.mark.slow]

UVICORN_DEFAULT_S = 5


async def _status_of_answer(reader: asyncio.StreamReader) -> int:
    """One HTTP/1.1 answer read off the connection: its status (0: the server closed it)."""
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head:
        return 0
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
    )
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def test_an_idle_connection_is_kept_past_the_clients_keep_alive(api: Api) -> None:
    assert KEEP_ALIVE_S > 60  # longer than a load balancer's usual idle timeout
    address = urlsplit(api.base)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    request = f"GET /healthz HTTP/1.1\r\nHost: {address.netloc}\r\n\r\n".encode()
    try:
        writer.write(request)
        assert await _status_of_answer(reader) == 200
        await asyncio.sleep(UVICORN_DEFAULT_S + 1.5)  # idle, as a pooled client connection
        writer.write(request)
        try:
            status = await asyncio.wait_for(_status_of_answer(reader), timeout=10)
        except (asyncio.IncompleteReadError, ConnectionError):
            status = 0
        assert status == 200, "the API closed an idle connection a client may still reuse"
    finally:
        writer.close()
