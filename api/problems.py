"""Errors as RFC 9457 problem details (`application/problem+json`), one stable `type` URI
per kind of error, and the exception handlers that turn every failure into one.

A problem says what went wrong in one sentence (`detail`); never a stack trace.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from api.head_requests import serves
from client import error_words
from client.errors import (
    InvalidRefundRequest,
    RefundActionRefused,
    RefundConflict,
    RefundflowError,
    RefundNotFound,
    TemporalUnavailable,
)
from client.refund_ids import pasted_refund_id

log = structlog.get_logger("refundflow.api")
PROBLEM_JSON = "application/problem+json"
NOT_AN_OBJECT = ("model_attributes_type", "dict_type")
"""Pydantic's error types for a body that came but is no JSON object (a list, or bytes that
FastAPI did not read as JSON because of their media type)."""


class Kind(Enum):
    """(status, title) of each kind of problem; its `type` is `urn:refundflow:problem:NAME`."""

    NOT_FOUND = (404, "Not found")
    REFUSED = (409, "Refused by the refund")
    CONFLICT = (409, "Conflict")
    BAD_INPUT = (422, "Bad input")
    UNAUTHORIZED = (401, "Unauthorized")
    FORBIDDEN = (403, "Forbidden")
    RATE_LIMITED = (429, "Too many requests")
    TOO_LARGE = (413, "Request too large")
    UNAVAILABLE = (503, "Unavailable")
    METHOD_NOT_ALLOWED = (405, "Method not allowed")
    UNSUPPORTED_MEDIA_TYPE = (415, "Unsupported media type")

    @property
    def status(self) -> int:
        return int(self.value[0])

    @property
    def title(self) -> str:
        return str(self.value[1])

    @property
    def uri(self) -> str:
        return "urn:refundflow:problem:" + self.name.lower().replace("_", "-")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


class ProblemError(Exception):
    """Raised anywhere in a request: answered as a problem of `kind`."""

    def __init__(self, kind: Kind, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.headers = headers or {}


def problem_response(
    kind: Kind, detail: str, instance: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    body = Problem(type=kind.uri, title=kind.title, status=kind.status, detail=detail)
    if instance:
        body = body.model_copy(update={"instance": instance})
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=kind.status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def unexpected(path: str, server: str = "the API") -> Response:
    """The answer to an error nobody foresaw: its words stay in `server`'s log."""
    detail = f"unexpected error; nothing more is said here (see {server}'s log)"
    return problem_response(Kind.UNAVAILABLE, detail, path)


def problem_responses(*kinds: Kind) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route: each kind as a problem+json response."""
    return {
        kind.status: {
            "description": kind.title,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for kind in kinds
    }


_CLIENT_ERRORS: list[tuple[type[RefundflowError], Kind]] = [
    (RefundNotFound, Kind.NOT_FOUND),
    (RefundConflict, Kind.CONFLICT),
    (InvalidRefundRequest, Kind.BAD_INPUT),
    (RefundActionRefused, Kind.REFUSED),
]
_HTTP_KINDS = {
    404: Kind.NOT_FOUND,
    405: Kind.METHOD_NOT_ALLOWED,
    401: Kind.UNAUTHORIZED,
    403: Kind.FORBIDDEN,
    413: Kind.TOO_LARGE,
}


def one_line(err: RequestValidationError) -> str:
    """The validation errors as one sentence: each place, and what is wrong there (the
    first three; how many more)."""
    errors = err.errors()
    if not errors:
        return "the request is not valid"
    said = "; ".join(_one_error(error) for error in errors[:3])
    return said + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else "")


def _one_error(error: Any) -> str:
    """One validation error, in words a caller can act on."""
    loc = tuple(error.get("loc", ()))
    kind, message = error.get("type"), error_words.plain(error)
    if kind == "json_invalid":
        at = f" at character {int(loc[1]) + 1}" if len(loc) > 1 else ""  # json counts from 0
        reason = (error.get("ctx") or {}).get("error", "")
        return f"the body is not valid JSON{at}" + (f": {reason}" if reason else "")
    if loc == ("body",) and kind == "missing":
        return "a JSON body is required (Content-Type: application/json)"
    if loc == ("body",) and kind in NOT_AN_OBJECT:
        return "the body must be a JSON object, sent as Content-Type: application/json"
    if loc == ("path", "refund_id"):
        return _not_a_refund_id(str(error.get("input", "")))
    if len(loc) == 2 and loc[0] == "header":  # where a caller looks for it: in its headers
        return f"the {loc[1]} header is required" if kind == "missing" else f"{loc[1]}: {message}"
    where = ".".join(str(part) for part in loc if part != "body")
    return f"{where}: {message}" if where else message


def _not_a_refund_id(given: str) -> str:
    pasted = pasted_refund_id(given)
    if pasted is not None:  # the CLI and the pages take it so; an API caller is told
        return f"{given!r} is not a refund id as written: write it {pasted} (lower case, no spaces)"
    given = given if len(given) <= 40 else given[:39] + "…"
    return f"{given!r} is not a refund id (they look like rf_ and 24 hex digits)"


def _not_json(request: Request, err: RequestValidationError) -> str | None:
    """A JSON body sent as another media type (FastAPI does not read it as JSON, so its
    validation finds no object): 415, not 422 "must be a JSON object" (a trial)."""
    given = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if given == "application/json" or given.endswith("+json"):
        return None
    if not any(
        tuple(error.get("loc", ())) == ("body",) and error.get("type") in NOT_AN_OBJECT
        for error in err.errors()
    ):
        return None
    # Without a Content-Type too (a trial: 422 "must be a JSON object" for a JSON body).
    sent_as = f"as {given}" if given else "without a Content-Type"
    return f"the body is sent {sent_as}: send it as JSON, with Content-Type: application/json"


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed(request: Request) -> str:
    """Every method some route takes at this path (Starlette's Allow names only the first
    route's: POST for /v1/refunds, which GET serves too). Asked of the routes as a request
    with each method would be; HEAD wherever GET is (api/head_requests.py answers it)."""
    served = {method for method in METHODS if serves(request.app, request.scope, method)}
    if "GET" in served:
        served.add("HEAD")
    return ", ".join(method for method in METHODS if method in served)


def _http_detail(request: Request, err: StarletteHTTPException, headers: dict[str, str]) -> str:
    """Starlette's "Method Not Allowed" and "Not Found", said so a caller can act."""
    path = request.url.path
    if err.status_code == 405:
        return f"{request.method} is not allowed on {path} (allowed: {headers['Allow']})"
    if err.status_code == 400 and str(err.detail) == "There was an error parsing the body":
        # FastAPI's words for a body it could not decode (a trial sent Latin-1 bytes)
        return "the body could not be read: send JSON text in UTF-8"
    if err.status_code == 404 and str(err.detail) == "Not Found":
        slash = " (without the trailing /?)" if path.endswith("/") and path != "/" else ""
        return f"nothing is at {path}{slash}"
    return str(err.detail)


def install(app: FastAPI, server: str = "the API") -> None:
    """Every failure a problem: ours, the client's, FastAPI's validation, Starlette's.
    `server`: whose log an unexpected error is in (the codec server has its own)."""

    async def on_problem(request: Request, err: Exception) -> Response:
        assert isinstance(err, ProblemError)
        return problem_response(err.kind, err.detail, request.url.path, err.headers)

    async def on_client_error(request: Request, err: Exception) -> Response:
        for cls, kind in _CLIENT_ERRORS:
            if isinstance(err, cls):
                return problem_response(kind, str(err), request.url.path)
        log.warning("api.unavailable", path=request.url.path, error=str(err))
        return problem_response(Kind.UNAVAILABLE, str(err), request.url.path)

    async def on_validation(request: Request, err: Exception) -> Response:
        assert isinstance(err, RequestValidationError)
        if wrong := _not_json(request, err):
            return problem_response(Kind.UNSUPPORTED_MEDIA_TYPE, wrong, request.url.path)
        return problem_response(Kind.BAD_INPUT, one_line(err), request.url.path)

    async def on_http(request: Request, err: Exception) -> Response:
        assert isinstance(err, StarletteHTTPException)
        kind = _HTTP_KINDS.get(err.status_code, Kind.BAD_INPUT)
        headers = dict(err.headers or {})  # a 405's Allow (a trial found it missing)
        if err.status_code == 405:
            headers["Allow"] = _allowed(request)
        return problem_response(
            kind, _http_detail(request, err, headers), request.url.path, headers
        )

    async def on_unavailable(request: Request, err: Exception) -> Response:
        return problem_response(Kind.UNAVAILABLE, str(err), request.url.path)

    async def on_anything(request: Request, err: Exception) -> Response:
        log.error("api.unexpected", path=request.url.path, error_type=type(err).__name__)
        return unexpected(request.url.path, server)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RefundflowError, on_client_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(TemporalUnavailable, on_unavailable)
    app.add_exception_handler(Exception, on_anything)
