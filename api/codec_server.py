"""The codec server: the Temporal Web UI and `temporal --codec-endpoint` send it the sealed
payloads they show, and it answers them opened (`/decode`) or seals what an operator types
(`/encode`), with the same keyring as every refundflow process.

Its own small process (`refundflow codec-server`), apart from the API: it is meant for the
operators' network beside the Web UI, never the public one, and takes the large batches a
history page sends. Callers prove who they are as at the API (a bearer JWT from the same
issuer, verified against its JWKS: api/identity.py); only the `operator` role may open or
seal. The protocol is the Web UI's: POST JSON `{"payloads": [...]}` (protobuf JSON, data in
base64), answered in the same shape; CORS lets the Web UI's origin send `Authorization` and
`X-Namespace`.

The dev stack's Web UI has no login, so it can send no token: there, and only there, calls
from the UI's own origin on loopback are let through without one
(REFUNDFLOW_CODEC_DEV_UI_ORIGINS; refused unless the server listens on loopback beside the
dev issuer). Nothing a payload holds is ever logged.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from api import problems
from api.config import ApiConfig
from api.identity import PrincipalKind, TokenVerifier
from api.limits import BodySizeLimit, RateLimiter
from api.problems import Kind, ProblemError
from client.payload_codec import EncryptionCodec, UndecryptablePayload
from client.settings import ConfigurationError, _whole_number

log = structlog.get_logger("refundflow.codec")
OPERATOR_ROLE = "operator"
MAX_BODY_BYTES = 8 * 1024 * 1024
"""A page of history at once: Temporal's payloads are at most 2 MiB each, base64 adds a third."""
DEV_UI_CALLER = "dev-ui"
ALLOWED_HEADERS = ["authorization", "content-type", "x-namespace"]


@dataclass(frozen=True)
class CodecServerConfig:
    host: str = "127.0.0.1"
    port: int = 8081
    origins: tuple[str, ...] = ()
    """Browser origins allowed to call (CORS): the Web UI's, e.g. https://temporal.example."""
    dev_ui_origins: tuple[str, ...] = ()
    """The dev stack's Web UI origins, let through on loopback without a token (dev only)."""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> CodecServerConfig:
        env = dict(os.environ if env is None else env)
        return cls(
            host=env.get("REFUNDFLOW_CODEC_HOST") or "127.0.0.1",
            port=_whole_number(env, "REFUNDFLOW_CODEC_PORT", 8081),
            origins=_origins(env.get("REFUNDFLOW_CODEC_ORIGINS", "")),
            dev_ui_origins=_origins(env.get("REFUNDFLOW_CODEC_DEV_UI_ORIGINS", "")),
        )

    def check(self, api: ApiConfig) -> None:
        """The dev allowance only where it cannot reach beyond this machine's dev stack."""
        if not self.dev_ui_origins:
            return
        if not _loopback(self.host) or api.dev_issuer_home is None:
            raise ConfigurationError(
                "REFUNDFLOW_CODEC_DEV_UI_ORIGINS is for the dev stack only: it needs the dev"
                " issuer (REFUNDFLOW_DEV_ISSUER_HOME) and a loopback REFUNDFLOW_CODEC_HOST"
            )
        for origin in self.dev_ui_origins:
            scheme, _, rest = origin.partition("://")
            if scheme != "http" or not _loopback(rest.rpartition(":")[0]):
                raise ConfigurationError(
                    f"REFUNDFLOW_CODEC_DEV_UI_ORIGINS: {origin} is not a loopback http origin"
                )


def _origins(raw: str) -> tuple[str, ...]:
    return tuple(origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip())


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def dev_ui_call(config: CodecServerConfig, peer: str | None, headers: Any) -> bool:
    """A tokenless call from the dev stack's Web UI: its origin, from this machine."""
    return (
        bool(config.dev_ui_origins)
        and not headers.get("authorization")
        and headers.get("origin") in config.dev_ui_origins
        and _loopback(peer)
    )


def create_codec_app(
    config: CodecServerConfig, api: ApiConfig, codec: EncryptionCodec, namespace: str
) -> FastAPI:
    config.check(api)
    verifier = TokenVerifier(api)
    limiter = RateLimiter(api.rate_per_minute, api.rate_burst)

    async def operator(request: Request) -> str:
        """Who may open or seal: a verified operator (or, in the dev stack, its Web UI)."""
        asked = request.headers.get("x-namespace")
        if asked and asked != namespace:
            raise ProblemError(Kind.FORBIDDEN, f"this codec server serves namespace {namespace}")
        peer = request.client.host if request.client else None
        if dev_ui_call(config, peer, request.headers):
            return DEV_UI_CALLER
        try:
            who = await verifier.principal(request.headers.get("authorization"))
        except ProblemError as refused:  # every call is on the record, the refused ones too
            log.info("codec.unauthenticated", peer=peer, problem=refused.kind.name)
            raise
        limiter.take(f"{who.issuer}\x1f{who.subject}")
        if who.kind is not PrincipalKind.STAFF or OPERATOR_ROLE not in who.roles:
            log.info("codec.refused", subject=who.subject, kind=who.kind.value)
            raise ProblemError(Kind.FORBIDDEN, "opening payloads needs the operator role")
        return who.subject

    # A default rather than Annotated: the dependency is local, and annotations are strings.
    as_operator = Depends(operator)
    app = FastAPI(title="refundflow codec server", docs_url=None, redoc_url=None)
    problems.install(app, "the codec server")

    @app.post("/decode", summary="Open sealed payloads (the Web UI's codec protocol)")
    async def decode(request: Request, who: str = as_operator) -> JSONResponse:
        return await _apply(request, codec.decode, "decode", who)

    @app.post("/encode", summary="Seal payloads an operator sends from the Web UI")
    async def encode(request: Request, who: str = as_operator) -> JSONResponse:
        return await _apply(request, codec.encode, "encode", who)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(BodySizeLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[*config.origins, *config.dev_ui_origins],
        allow_methods=["POST"],
        allow_headers=ALLOWED_HEADERS,
        max_age=600,
    )
    return app


Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


async def _apply(request: Request, transform: Transform, what: str, who: str) -> JSONResponse:
    try:
        given = json_format.Parse(await request.body(), Payloads())
    except json_format.ParseError as err:
        log.info("codec.bad_input", operation=what, caller=who, why="not protobuf JSON")
        detail = f'the body must be {{"payloads": [...]}} in protobuf JSON: {err}'
        raise ProblemError(Kind.BAD_INPUT, detail.splitlines()[0][:300]) from None
    try:
        done = Payloads(payloads=await transform(given.payloads))
    except UndecryptablePayload as err:
        # Our own words (a key id, a length), never the payload's.
        log.info("codec.bad_input", operation=what, caller=who, why=str(err))
        raise ProblemError(Kind.BAD_INPUT, str(err)) from None
    log.info("codec.applied", operation=what, caller=who, payloads=len(given.payloads))
    # Always the `payloads` key, even empty (MessageToDict would leave it out).
    return JSONResponse({"payloads": [json_format.MessageToDict(p) for p in done.payloads]})


async def serve_codec(
    config: CodecServerConfig, api: ApiConfig, codec: EncryptionCodec, namespace: str
) -> None:
    app = create_codec_app(config, api, codec, namespace)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,  # the dev allowance trusts the peer address: no X-Forwarded-For
            lifespan="off",
        )
    )
    await server.serve()
