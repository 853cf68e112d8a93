"""Every route of the API and everything it depends on runs on the event loop. FastAPI runs a
plain `def` endpoint or dependency in its thread pool: a thread hop (and a wake-up of the
loop from another thread) on each request, which under load showed in the API's profile
as a cost of its own (issue 15)."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from api.app import create_app
from api.config import ApiConfig
from client.settings import Settings


def _calls(dependant: Dependant) -> Iterator[Any]:
    """The endpoint and every dependency below it."""
    if dependant.call is not None:
        yield dependant.call
    for below in dependant.dependencies:
        yield from _calls(below)


def _runs_in_thread_pool(call: Any) -> bool:
    """FastAPI's own test (fastapi.dependencies.utils): coroutine functions, or objects whose
    __call__ is one, run on the loop; anything else goes to the thread pool."""
    if inspect.isroutine(call):
        return not inspect.iscoroutinefunction(call)
    return not inspect.iscoroutinefunction(type(call).__call__)


def test_no_route_or_dependency_runs_in_the_thread_pool(tmp_path: Path) -> None:
    config = ApiConfig.from_env(
        {"REFUNDFLOW_OIDC_ISSUER": "http://127.0.0.1:9/issuer", "REFUNDFLOW_OIDC_AUDIENCE": "x"}
    )
    # With a dev issuer home: its routes, and the pages (signed with a secret made there).
    config = dataclasses.replace(config, dev_issuer_home=tmp_path)
    app = create_app(config, Settings.from_env({"REFUNDFLOW_HOME": "/nonexistent"}))
    routes = [
        (context.path, context.original_route)
        for context in iter_route_contexts(app.routes)  # the included routers' routes too
        if isinstance(context.original_route, APIRoute)
    ]
    paths = {path for path, _ in routes}
    # Every kind of route is walked: the API's, the pages', the dev issuer's.
    assert {"/v1/refunds", "/console", "/track/{refund_id}"} <= paths, paths
    assert any((path or "").startswith("/dev-issuer") for path in paths), paths
    in_threads = sorted(
        {
            f"{path}: {getattr(call, '__qualname__', call)!r}"
            for path, route in routes
            for call in _calls(route.dependant)
            if _runs_in_thread_pool(call)
        }
    )
    assert in_threads == []
