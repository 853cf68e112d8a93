"""Rendering a page: one Jinja2 environment (autoescaping every value, so a reason or a
note with markup is text), the filters the templates share, and the response every page
is sent as (security headers, this browser's CSRF cookie)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from api.pages.security import CSRF_COOKIE, CSRF_FIELD, csrf_seed, csrf_token, protect, set_cookie
from api.pages.settings import PagesConfig
from client.render_findings import open_finding
from workflows.money import format_minor
from workflows.wording import closed_because

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
CSRF_COOKIE_SECONDS = 8 * 3600


def when(value: datetime | str | None) -> str:
    """A moment as staff read it: UTC, to the minute."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# What a refund's `eta` is, on staff's page (a returned item's deadline read "Decision due").
ETA_LABELS = {"payment": "Money arrives by", "return": "Item due back by"}


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = lambda amount, currency: format_minor(int(amount), str(currency))
    env.filters["when"] = when
    env.filters["closed_because"] = closed_because
    env.filters["eta_label"] = lambda kind: ETA_LABELS.get(kind or "", "Decision due")
    # The same sentence `refundflow status` notes (a trial: the console said nothing of a
    # refund paid twice that reconciliation had escalated).
    env.filters["finding"] = lambda finding: open_finding(finding).removeprefix("note: ")
    return env


class Pages:
    """Renders templates for one app, with its pages' settings."""

    def __init__(self, config: PagesConfig) -> None:
        self.config = config
        self.env = environment()

    def render(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        seed, new = csrf_seed(request)
        context.setdefault("who", None)
        context.setdefault("lang", "en")
        body = self.env.get_template(template).render(
            csrf_field=CSRF_FIELD, csrf=csrf_token(self.config.secret, seed), **context
        )
        response = HTMLResponse(body, status_code=status_code)
        if new:
            secure = self.config.secure_cookies
            set_cookie(response, CSRF_COOKIE, seed, secure, CSRF_COOKIE_SECONDS)
        protect(response)
        return response
