"""`refundflow api`: serve the API with uvicorn until SIGINT or SIGTERM."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from api.config import ApiConfig
from client.settings import Settings


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
        )
    )
    await server.serve()
