"""What a failed delivery records (and `subscribers list` and `events` show): the start of the
subscriber's own answer to a refusal, and a plain reason when nothing took the connection,
not the HTTP library's text (activities/dispatcher.py)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from activities.delivery_errors import refusal_text
from activities.dispatcher import OutboxDispatcher


def test_a_refusal_keeps_the_start_of_the_answer_on_one_line() -> None:
    assert refusal_text(503, b"") == "HTTP 503"
    assert refusal_text(500, b"database is down,\n  try later\n") == (
        "HTTP 500: database is down, try later"
    )
    long = refusal_text(400, b"y" * 900)
    assert long == "HTTP 400: " + "y" * 200
    assert refusal_text(502, b"\xff\xfebad") == "HTTP 502: \ufffd\ufffdbad"
    # Postgres text holds no NUL (the failure could not be recorded, the event never parked),
    # and a terminal must not take a subscriber's escape sequences.
    assert refusal_text(500, b"a\x00b\x1b[31mred\x07") == "HTTP 500: a b [31mred"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


def _row(url: str) -> dict[str, Any]:
    return {
        "body": '{"type": "refund.approved"}', "secret": "s" * 32, "previous_secret": None,
        "event_id": "rf_x:1", "type": "refund.approved", "subscriber": "crm", "url": url,
    }  # fmt: skip


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the probe is


async def test_nothing_listening_is_said_plainly(session: aiohttp.ClientSession) -> None:
    dispatcher = OutboxDispatcher(pool=None, session=session, timeout_s=5)
    port = _closed_port()
    said = await dispatcher._attempt(_row(f"http://127.0.0.1:{port}/hook"))
    assert said == f"cannot connect to 127.0.0.1:{port}: connection refused (nothing listens there)"


async def test_a_refusal_records_what_the_subscriber_said(
    session: aiohttp.ClientSession,
) -> None:
    async def down(_: web.Request) -> web.Response:
        return web.Response(status=500, text="database is down, try later")

    app = web.Application()
    app.router.add_post("/hook", down)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        dispatcher = OutboxDispatcher(pool=None, session=session, timeout_s=5)
        said = await dispatcher._attempt(_row(f"http://127.0.0.1:{port}/hook"))
    finally:
        await runner.cleanup()
    assert said == "HTTP 500: database is down, try later"


async def test_the_customer_channels_answer_is_not_kept(session: aiohttp.ClientSession) -> None:
    """It may echo the event, whose signed tracking link is kept out of storage."""

    async def echo(request: web.Request) -> web.Response:
        return web.Response(status=422, text=await request.text())

    app = web.Application()
    app.router.add_post("/hook", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        dispatcher = OutboxDispatcher(
            pool=None, session=session, timeout_s=5, customer_channel="crm"
        )
        said = await dispatcher._attempt(_row(f"http://127.0.0.1:{port}/hook"))
    finally:
        await runner.cleanup()
    assert said == "HTTP 422"
