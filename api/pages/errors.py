"""Errors on the pages are pages: a browser that asks for a console or tracking address the
API cannot serve (a mistyped refund id, a path that does not exist) gets HTML in the page's
own look, not the JSON API's problem document. Everything else keeps its problem.

A refund id pasted into the console's address in capitals or with spaces around it is the
same id, as in the CLI: the browser is sent to its address.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from api.pages.render import Pages
from api.pages.tracking import CHROME, pick_locale
from api.problems import one_line
from client.refund_ids import pasted_refund_id

Handler = Callable[[Request, Exception], Awaitable[Response]]
Installed = Callable[[Request, Any], Response | Awaitable[Response]]  # as Starlette keeps it
CONSOLE_REFUND = re.compile(r"/console/refunds/([^/]*)")
NOT_A_REFUND_ID = "{given!r} is not a refund id (they look like rf_ and 24 hex digits)"


def install(app: FastAPI, pages: Pages) -> None:
    """Put the pages' errors in front of the problem handlers already installed."""
    for kind in (RequestValidationError, StarletteHTTPException):
        problem: Installed = app.exception_handlers[kind]
        app.add_exception_handler(kind, _page_or(problem, pages))


def _page_or(problem: Installed, pages: Pages) -> Handler:
    async def page_or_problem(request: Request, err: Exception) -> Response:
        page = error_page(pages, request, err)
        if page is not None:
            return page
        answer = problem(request, err)
        return answer if isinstance(answer, Response) else await answer

    return page_or_problem


def error_page(pages: Pages, request: Request, err: Exception) -> Response | None:
    """The page for this error, or None where the API's problem answers (not a page, or a
    page's own JSON poller, or a method a browser does not send)."""
    path = request.url.path
    if request.method not in ("GET", "HEAD") or path.endswith("/version"):
        return None
    if isinstance(err, StarletteHTTPException) and err.status_code != 404:
        return None  # a 405 keeps its Allow header, and the rest their problem
    if path.startswith("/track/"):  # whatever is wrong with a link, the customer's page
        locale = pick_locale("", request.headers.get("accept-language", ""), "en")
        return pages.render(request, "track_invalid.html", 404, lang=locale, t=CHROME[locale])
    if not (path == "/console" or path.startswith("/console/")):
        return None
    if path.endswith("/") and isinstance(err, StarletteHTTPException):
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(path.rstrip("/") + query, status_code=303)  # relative: here
    if isinstance(err, RequestValidationError) and not _in_path(err):
        text = f"This address asks for something the page cannot use: {one_line(err)}."
        return pages.render(request, "message.html", 422, title="Not understood", text=text)
    title, text = "No such page", f"There is no page at {path}."
    if refund := CONSOLE_REFUND.fullmatch(path):
        given = unquote(refund.group(1))
        if normal := pasted_refund_id(given):
            return RedirectResponse(f"/console/refunds/{normal}", status_code=303)
        title, text = "No such refund", NOT_A_REFUND_ID.format(given=given[:40])
    return pages.render(request, "message.html", 404, title=title, text=text)


def _in_path(err: RequestValidationError) -> bool:
    """Whether the address itself is wrong (a refund id), not a query's value."""
    return any(error.get("loc", ("",))[0] == "path" for error in err.errors())
