"""`refundflow api`: serve the API with uvicorn until SIGINT or SIGTERM."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from api.config import ApiConfig
from client.settings import Settings

KEEP_ALIVE_S = 75
"""How long an idle client connection stays open. Longer than clients and load balancers keep
theirs (aiohttp 15 s, httpx 5 s, AWS ALB 60 s by default): a server that closes first races a
client reusing the connection, and the client's POST fails ("Can not write request body",
a 502 at a load balancer) without ever reaching the API. uvicorn's own default is 5 s."""


async def serve(settings: Settings, config: ApiConfig) -> None:
    app = create_app(config, settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_config=None,  # the process's own logging (structlog) applies
            access_log=False,
            server_header=False,
            proxy_headers=False,
            lifespan="on",
            timeout_keep_alive=KEEP_ALIVE_S,
        )
    )
    await server.serve()
