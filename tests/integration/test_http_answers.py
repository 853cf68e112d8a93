"""HTTP answers beside the pages: a method a path does not take says which it does, a trailing
slash is not redirected to a host the caller chose, and HEAD answers what GET would (split
from test_console_pages.py)."""

from __future__ import annotations

import aiohttp
import pytest

from tests.integration.api_support import Api
from tests.integration.test_console_pages import sign_in

pytestmark = pytest.mark.stack


async def test_wrong_methods_and_trailing_slashes_get_answers_that_say_so(
    browserless: aiohttp.ClientSession, api: Api
) -> None:
    """A trial: a 405 without Allow, and a trailing slash answered with an empty 307 to an
    absolute address built from the Host header the caller chose."""
    headers = {"Authorization": f"Bearer {api.token('li')}"}
    async with browserless.delete(f"{api.base}/v1/refunds", headers=headers) as r:
        body = await r.json(content_type=None)
        assert (r.status, r.headers.get("Allow")) == (405, "GET, HEAD, POST"), body
        allowed = "allowed: GET, HEAD, POST"
        assert body["detail"] == f"DELETE is not allowed on /v1/refunds ({allowed})"
    evil = {**headers, "Host": "evil.example"}
    refund = f"/v1/refunds/rf_{'0' * 24}/"
    async with browserless.get(f"{api.base}{refund}", headers=evil, allow_redirects=False) as r:
        body = await r.json(content_type=None)
        assert r.status == 404 and "Location" not in r.headers, r.headers
        assert body["detail"] == f"nothing is at {refund} (without the trailing /?)"
    await sign_in(browserless, api, "li", "/console")
    wanted = f"{api.base}/console/report/?preset=7d"
    async with browserless.get(
        wanted, headers={"Host": "evil.example"}, allow_redirects=False
    ) as r:
        assert (r.status, r.headers["Location"]) == (303, "/console/report?preset=7d")


async def test_head_answers_what_get_would_without_a_body(
    browserless: aiohttp.ClientSession, api: Api
) -> None:
    """A trial: `HEAD /healthz` (what load balancers and uptime checkers send) got a 405.
    HEAD answers the GET's status and headers, with no body, wherever GET is served; a
    path without GET still says what it takes."""
    token = {"Authorization": f"Bearer {api.token('li')}"}
    unknown = f"/v1/refunds/rf_{'0' * 24}"
    for path, headers, status in (
        ("/healthz", None, 200),
        ("/v1/refunds", token, 200),
        ("/v1/refunds", None, 401),
        (unknown, token, 404),
        (f"/track/{unknown[12:]}", None, 403),
    ):
        async with browserless.get(f"{api.base}{path}", headers=headers) as got:
            body = await got.read()
            assert got.status == status, (path, got.status, body)
        async with browserless.head(f"{api.base}{path}", headers=headers) as head:
            assert head.status == status, (path, head.status)
            assert await head.read() == b""
            for name in ("Content-Type", "Content-Length"):
                assert head.headers.get(name) == got.headers.get(name), (path, name)
    async with browserless.head(f"{api.base}/v1/refunds/{unknown[12:]}/approve") as r:
        assert r.status == 405 and r.headers["Allow"] == "POST"
