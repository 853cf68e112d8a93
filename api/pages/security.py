"""What keeps the pages safe to use: the session cookie (a verified access token, HttpOnly
and SameSite=Strict), CSRF tokens bound to a per-browser cookie (signed double submit),
customers' signed, expiring tracking links (made and checked in activities/tracking_links.py,
which the outbox dispatcher shares), and the headers every page is sent with.

Everything here is pure but for reading the clock: HMAC-SHA256 over the pages' secret.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from starlette.responses import Response

from activities.tracking_links import TRACKING_LINK_DAYS as TRACKING_LINK_DAYS
from activities.tracking_links import mac as mac
from activities.tracking_links import tracking_ok as tracking_ok
from activities.tracking_links import tracking_query as tracking_query

SESSION_COOKIE = "rf_session"
CSRF_COOKIE = "rf_csrf"
CSRF_FIELD = "csrf"

PAGE_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
CHART_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"
"""The report's chart is a self-contained page with inline CSS and SVG, and no script."""


def protect(response: Response, csp: str = PAGE_CSP) -> Response:
    """The headers of every page: what may load, no framing, no caching of staff data, and
    no Referer (a tracking link's signature must not travel to another site)."""
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    if "frame-ancestors 'none'" in csp:
        response.headers["X-Frame-Options"] = "DENY"
    return response


# --- CSRF ---------------------------------------------------------------------------------


def csrf_seed(request: Request) -> tuple[str, bool]:
    """This browser's CSRF cookie value, and whether it is new (then set it)."""
    seed = request.cookies.get(CSRF_COOKIE, "")
    if len(seed) >= 32:
        return seed, False
    return secrets.token_urlsafe(32), True


def csrf_token(secret: bytes, seed: str) -> str:
    return mac(secret, "csrf", seed)


def csrf_ok(secret: bytes, request: Request, submitted: str) -> bool:
    """The form's token matches this browser's cookie, and a browser that says where the
    form came from says it came from here."""
    seed = request.cookies.get(CSRF_COOKIE, "")
    if len(seed) < 32 or not hmac.compare_digest(csrf_token(secret, seed), submitted or ""):
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return origin.rstrip("/") == str(request.base_url).rstrip("/")
    return True


def set_cookie(response: Response, name: str, value: str, secure: bool, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="strict"
    )
