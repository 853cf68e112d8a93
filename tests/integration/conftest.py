"""Fixtures for the HTTP API's tests: the test stack's API and tokens for anyone."""

from __future__ import annotations

import aiohttp
import pytest

from tests.integration.api_support import Api
from worker.devstack import DevStack


@pytest.fixture(scope="session")
def api(stack: DevStack, http: aiohttp.ClientSession) -> Api:
    """The API the test stack started (as `refundflow dev` does), and a token minter."""
    return Api(http, stack)
