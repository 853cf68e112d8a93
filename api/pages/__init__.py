"""Server-rendered pages on the API app: the support console (/console), the customer's
tracking page (/track/{refund_id}) and the report page (/console/report).

Jinja2 templates in api/templates, CSS and one small script in api/static, all served by
the API itself: nothing from a CDN, everything works offline. `mount` is the only thing the
app calls.
"""

from __future__ import annotations

from pathlib import Path

import structlog
from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from api.config import ApiConfig
from api.pages.render import Pages
from api.pages.settings import PagesConfig

log = structlog.get_logger("refundflow.api.pages")
STATIC = Path(__file__).resolve().parent.parent / "static"


def mount(app: FastAPI, api: ApiConfig) -> None:
    """Serve the pages, when they have a secret to sign with (see api/pages/settings.py)."""
    from api.pages import actions, console, errors, report, signin, tracking

    config = PagesConfig.from_env(api)
    if config is None:
        log.info("pages.off", why="no REFUNDFLOW_PAGES_SECRET")
        return
    app.state.pages = Pages(config)
    for module in (signin, console, actions, tracking, report):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    errors.install(app, app.state.pages)  # a page's errors as pages, not JSON
