"""A codec server of the tests' own, in this process on a free port, configured as the
environment says (the stack's keys and issuer, plus the origins a test chooses)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import uvicorn

from api.codec_server import CodecServerConfig, create_codec_app
from api.config import ApiConfig
from client.payload_codec import EncryptionCodec, load_keyring
from tests.integration.helpers import eventually
from worker.processes import free_port


@asynccontextmanager
async def serving_codec(env: dict[str, str], http: aiohttp.ClientSession) -> AsyncIterator[str]:
    """The server's base URL while it serves; stopped on leaving."""
    keyring = load_keyring(env.get("REFUNDFLOW_CODEC_KEYS", ""), env["REFUNDFLOW_CODEC_KEY_FILE"])
    assert keyring is not None
    config = dataclasses.replace(CodecServerConfig.from_env(env), port=free_port())
    app = create_codec_app(config, ApiConfig.from_env(env), EncryptionCodec(keyring), "default")
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=config.port, log_config=None)
    )
    serving = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{config.port}"
    try:
        await eventually(lambda: _status(http, f"{base}/healthz"), lambda status: status == 200)
        yield base
    finally:
        server.should_exit = True
        await serving


async def _status(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(url) as answer:
        return answer.status
