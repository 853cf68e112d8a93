"""Production sign-in for the console: the OIDC authorization-code flow with PKCE against
the issuer the API already trusts (REFUNDFLOW_OIDC_ISSUER), as a confidential or public
client (REFUNDFLOW_CONSOLE_CLIENT_ID, optional _CLIENT_SECRET). The issuer must issue
access tokens for the API's audience to this client (docs/identity.md); the access token
becomes the session and is verified on every request like any bearer token.

The state, PKCE verifier and return path travel in a short-lived HttpOnly cookie, signed,
so nothing is kept on the server between the two legs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import urllib.parse
import urllib.request
from typing import Any

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from api.pages.security import mac, protect, set_cookie
from api.pages.settings import PagesConfig
from api.problems import Kind, ProblemError

FLOW_COOKIE = "rf_oidc"
FLOW_SECONDS = 600
SCOPE = "openid"


def _issuer(request: Request) -> str:
    issuer: str = request.app.state.api.verifier.config.issuer
    return issuer


def _discovery(issuer: str) -> dict[str, Any]:
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    with urllib.request.urlopen(url, timeout=5) as answer:
        found: dict[str, Any] = json.loads(answer.read())
        return found


def _redirect_uri(request: Request, config: PagesConfig) -> str:
    base = config.public_url or str(request.base_url).rstrip("/")
    return f"{base}/console/callback"


async def start(request: Request, config: PagesConfig, target: str) -> Response:
    """Send the browser to the issuer's authorization endpoint."""
    meta = await asyncio.to_thread(_discovery, _issuer(request))
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    flow = json.dumps({"state": secrets.token_urlsafe(24), "verifier": verifier, "next": target})
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": config.oidc_client_id,
            "redirect_uri": _redirect_uri(request, config),
            "scope": SCOPE,
            "state": json.loads(flow)["state"],
            "code_challenge": challenge.decode().rstrip("="),
            "code_challenge_method": "S256",
        }
    )
    response = RedirectResponse(f"{meta['authorization_endpoint']}?{query}", 303)
    sealed = base64.urlsafe_b64encode(flow.encode()).decode()
    value = f"{sealed}.{mac(config.secret, 'oidc', sealed)}"
    set_cookie(response, FLOW_COOKIE, value, config.secure_cookies, FLOW_SECONDS)
    return protect(response)


def _flow(request: Request, config: PagesConfig) -> dict[str, str]:
    sealed, _, signature = request.cookies.get(FLOW_COOKIE, "").partition(".")
    if not sealed or not secrets.compare_digest(signature, mac(config.secret, "oidc", sealed)):
        raise ProblemError(Kind.UNAUTHORIZED, "sign-in expired or was not started here")
    flow: dict[str, str] = json.loads(base64.urlsafe_b64decode(sealed))
    if not secrets.compare_digest(flow["state"], request.query_params.get("state", "")):
        raise ProblemError(Kind.UNAUTHORIZED, "sign-in state does not match")
    return flow


async def finish(request: Request, config: PagesConfig) -> tuple[str, int, str]:
    """(access token, its lifetime in seconds, where to go) for the code the issuer sent."""
    if not config.oidc_client_id:
        raise ProblemError(Kind.NOT_FOUND, "OIDC sign-in is not configured")
    flow = _flow(request, config)
    form = {
        "grant_type": "authorization_code",
        "code": request.query_params.get("code", ""),
        "redirect_uri": _redirect_uri(request, config),
        "client_id": config.oidc_client_id,
        "code_verifier": flow["verifier"],
    }
    if config.oidc_client_secret:
        form["client_secret"] = config.oidc_client_secret
    meta = await asyncio.to_thread(_discovery, _issuer(request))
    tokens = await asyncio.to_thread(_post_form, str(meta["token_endpoint"]), form)
    if "access_token" not in tokens:
        raise ProblemError(Kind.UNAUTHORIZED, "the issuer gave no access token")
    return str(tokens["access_token"]), int(tokens.get("expires_in", 3600)), flow["next"]


def _post_form(url: str, form: dict[str, str]) -> dict[str, Any]:
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(request, timeout=10) as answer:
        found: dict[str, Any] = json.loads(answer.read())
        return found
