"""The Temporal Web UI, in a real browser, shows a sealed payload opened through the codec
server, as `refundflow dev` runs them: the dev server started with `--ui-codec-endpoint`,
the codec server letting the UI's own origin through on loopback without a token.

The session's stack has no Web UI (headless), so this test starts a dev server of its own
with one, and writes into it with the stack's key; no worker is needed to show an input."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import uuid
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import async_playwright

from client.connections import connect_temporal
from client.settings import Settings
from tests.integration.codec_support import serving_codec
from worker.devstack import DevStack
from worker.processes import free_port
from worker.temporal_server import TemporalDevServer

pytestmark = pytest.mark.stack
SECRET = f"cust_{uuid.uuid4().hex[:10]}"


async def test_the_web_ui_shows_payloads_opened_by_the_codec_server(
    stack: DevStack, settings: Settings, http: aiohttp.ClientSession
) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("no chromium on PATH: ./scripts/test installs it (apt-get install chromium)")
    ui_port = free_port()
    env = {**stack.env(), "REFUNDFLOW_CODEC_DEV_UI_ORIGINS": f"http://127.0.0.1:{ui_port}"}
    folder = Path(tempfile.mkdtemp(prefix="refundflow-ui-"))
    async with serving_codec(env, http) as codec_url:
        server = TemporalDevServer(
            port=free_port(),
            ui_port=ui_port,
            db_file=None,
            log_path=folder / "temporal.log",
            ui_codec_endpoint=codec_url,
        )
        server.start()
        try:
            sealing = dataclasses.replace(settings, temporal_address=server.address)
            temporal = await connect_temporal(sealing)
            handle = await temporal.start_workflow(
                "NoWorkerRunsThis",
                {"requested_by": SECRET},
                id=f"codec-ui-{uuid.uuid4().hex[:8]}",
                task_queue="nobody-polls",
            )
            seen, decode_calls = await _page_text(chromium, f"{server.ui_url}", handle.id)
            assert SECRET in seen, seen[:2000]
            assert decode_calls, "the UI never called the codec server"
            await handle.terminate("test over")
        finally:
            server.stop()
            shutil.rmtree(folder, ignore_errors=True)


async def _page_text(chromium: str, ui_url: str, workflow_id: str) -> tuple[str, list[str]]:
    """The workflow's page once its input shows, and the codec calls the browser made."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium)
        try:
            page = await browser.new_page()
            calls: list[str] = []
            page.on("request", lambda r: calls.append(r.url) if "/decode" in r.url else None)
            await page.goto(f"{ui_url}/namespaces/default/workflows/{workflow_id}")
            try:
                await page.get_by_text(SECRET).first.wait_for(timeout=30_000)
            except Exception:  # the assertion below says what the page showed instead
                pass
            return await page.inner_text("body"), calls
        finally:
            await browser.close()
