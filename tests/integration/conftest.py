"""Fixtures for the HTTP API's tests: the test stack's API and tokens for anyone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.integration.api_support import Api
from worker.devstack import DevStack


@pytest.fixture(scope="session")
def api(stack: DevStack, http: aiohttp.ClientSession) -> Api:
    """The API the test stack started (as `refundflow dev` does), and a token minter."""
    return Api(http, stack)


@pytest.fixture
async def browserless() -> AsyncIterator[aiohttp.ClientSession]:
    """A client with its own cookies, as a browser keeps them (the console's tests; the
    stack listens on an IP address: `unsafe`)."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        yield session
