"""The sandbox as a process (`python -m sandbox`): the app on a port, settlements and
webhooks in the background, stopped by SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from aiohttp import web

from sandbox.app import FAULTS, build_app
from sandbox.store import SandboxStore
from sandbox.webhooks import settle_and_deliver_forever


async def serve(
    database_url: str, host: str, port: int, webhook_url: str | None, webhook_secret: str
) -> None:
    store = await SandboxStore.connect(database_url)
    app = build_app(store, os.environ.get("SANDBOX_NOTIFY_SECRET", ""))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    background = asyncio.create_task(
        settle_and_deliver_forever(store, app[FAULTS], webhook_url, webhook_secret)
    )
    print(f"sandbox listening on http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    background.cancel()
    await runner.cleanup()
    await store.pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="refundflow sandbox external systems")
    parser.add_argument("--host", default=os.environ.get("SANDBOX_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "8088")))
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        raise SystemExit("error: DATABASE_URL is not set")
    webhook_url = os.environ.get("SANDBOX_WEBHOOK_URL") or None
    secret = os.environ.get("REFUNDFLOW_WEBHOOK_SECRET", "")
    if webhook_url and not secret:
        raise SystemExit("error: SANDBOX_WEBHOOK_URL is set but REFUNDFLOW_WEBHOOK_SECRET is not")
    asyncio.run(serve(database_url, args.host, args.port, webhook_url, secret))
