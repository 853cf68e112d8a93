"""Production sign-in (OIDC authorization code with PKCE) against a stand-in issuer, and
where the pages' secret comes from. No network: discovery and the token endpoint are
replaced by functions of the test."""

from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.requests import Request

from api.config import ApiConfig
from api.pages import oidc
from api.pages.settings import PagesConfig
from api.problems import ProblemError

ISSUER = "https://id.example.com/realms/shop"
META = {
    "authorization_endpoint": f"{ISSUER}/protocol/openid-connect/auth",
    "token_endpoint": f"{ISSUER}/protocol/openid-connect/token",
}
CONFIG = PagesConfig(secret=b"k" * 32, oidc_client_id="console", secure_cookies=True)


def request(query: str = "", cookie: str = "") -> Request:
    app = SimpleNamespace(state=SimpleNamespace(api=SimpleNamespace(
        verifier=SimpleNamespace(config=SimpleNamespace(issuer=ISSUER))
    )))  # fmt: skip
    headers = [(b"host", b"refunds.example.com")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    scope: dict[str, Any] = {
        "type": "http", "method": "GET", "path": "/console/callback", "headers": headers,
        "scheme": "https", "server": ("refunds.example.com", 443),
        "query_string": query.encode(), "app": app,
    }  # fmt: skip
    return Request(scope)


@pytest.fixture
def issuer(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """What the token endpoint was sent, one form per call."""
    sent: list[dict[str, str]] = []
    monkeypatch.setattr(oidc, "_discovery", lambda issuer: META)

    def token_endpoint(url: str, form: dict[str, str]) -> dict[str, Any]:
        assert url == META["token_endpoint"]
        sent.append(form)
        return {"access_token": "the-access-token", "expires_in": 300}

    monkeypatch.setattr(oidc, "_post_form", token_endpoint)
    return sent


async def test_the_code_flow_with_pkce(issuer: list[dict[str, str]]) -> None:
    started = await oidc.start(request(), CONFIG, "/console/refunds/rf_1")
    location = urlsplit(started.headers["location"])
    asked = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert location.geturl().startswith(META["authorization_endpoint"])
    assert asked["response_type"] == "code" and asked["client_id"] == "console"
    assert asked["redirect_uri"] == "https://refunds.example.com/console/callback"
    assert asked["code_challenge_method"] == "S256"
    cookie = started.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie
    flow = cookie.split(";")[0]

    back = request(f"code=abc&state={asked['state']}", flow)
    token, lifetime, target = await oidc.finish(back, CONFIG)
    assert (token, lifetime, target) == ("the-access-token", 300, "/console/refunds/rf_1")
    form = issuer[0]
    assert form["code"] == "abc" and form["grant_type"] == "authorization_code"
    digest = hashlib.sha256(form["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(digest).decode().rstrip("=") == asked["code_challenge"]

    with pytest.raises(ProblemError):  # another state: not the sign-in this browser started
        await oidc.finish(request("code=abc&state=other", flow), CONFIG)
    forged = flow[:-3] + "xyz"
    with pytest.raises(ProblemError):  # the flow cookie changed
        await oidc.finish(request(f"code=abc&state={asked['state']}", forged), CONFIG)
    assert len(issuer) == 1  # nothing refused was sent to the issuer


def api_config(home: Path | None) -> ApiConfig:
    return ApiConfig(issuer=ISSUER, jwks_url="", audience="a", dev_issuer_home=home)


def test_the_pages_secret(tmp_path: Path) -> None:
    assert PagesConfig.from_env(api_config(None), {}) is None  # production without: off
    with pytest.raises(ValueError, match="at least 32 bytes"):
        PagesConfig.from_env(api_config(None), {"REFUNDFLOW_PAGES_SECRET": "short"})
    given = PagesConfig.from_env(api_config(None), {"REFUNDFLOW_PAGES_SECRET": "s" * 40})
    assert given is not None and given.secure_cookies and given.directory is None

    dev = PagesConfig.from_env(api_config(tmp_path), {})
    again = PagesConfig.from_env(api_config(tmp_path), {})
    assert dev is not None and again is not None and dev.secret == again.secret
    assert not dev.secure_cookies  # the dev stack is plain HTTP on loopback
    made = tmp_path / "issuer" / "pages-secret"
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
