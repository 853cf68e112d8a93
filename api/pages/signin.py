"""Staff sign-in for the console. The session is the issuer's access token itself, kept in
an HttpOnly, SameSite=Strict cookie and verified on every request exactly as a bearer token
is (api/identity.py): the console has no identity of its own to get wrong.

Dev stack: a page lists the directory's staff and the API's own dev issuer signs a token
for the one picked. Production: the OIDC authorization-code flow with PKCE against the
configured issuer (api/pages/oidc.py), when REFUNDFLOW_CONSOLE_CLIENT_ID is set.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from api.deps import state
from api.dev_issuer import NotInDirectory, load_directory, lookup, member_name, mint
from api.identity import Principal, PrincipalKind
from api.pages import oidc
from api.pages.render import Pages
from api.pages.security import CSRF_FIELD, SESSION_COOKIE, csrf_ok, protect, set_cookie
from api.pages.settings import PagesConfig
from api.problems import Kind, ProblemError

router = APIRouter(include_in_schema=False)


def pages(request: Request) -> Pages:
    found: Pages = request.app.state.pages
    return found


async def signed_in(request: Request) -> Principal | None:
    """The staff member this browser signed in as, verified now; None when there is no
    session, it expired, or it is not staff."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    api = state(request)
    try:
        who = await api.verifier.principal(f"Bearer {token}")
        api.limiter.take(f"{who.issuer}\x1f{who.subject}")
    except ProblemError as err:
        if err.kind is Kind.RATE_LIMITED:
            raise  # said as such (429), not as a session that ended
        return None
    return who if who.kind is PrincipalKind.STAFF else None


def to_signin(request: Request) -> Response:
    """To the sign-in page, and from it back where the browser was. A form sent once the
    session had ended goes back to its page, not to where it was sent (a refund's `/act`
    takes only a POST: a trial signed in again onto a 405 in JSON), and the sign-in page
    says that what was sent was not done."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    said = ""
    if request.method != "GET":
        # The refund's page says it too once signed in (an identity provider's sign-in
        # page shows nothing of ours: a review).
        back = f"{request.url.path.removesuffix('/act')}?done={NOT_DONE}"
        said = "&ended=unsent"
    elif request.cookies.get(SESSION_COOKIE):
        said = "&ended=1"
    return protect(RedirectResponse(f"/console/signin?next={quote(back, safe='')}{said}", 303))


ENDED = "Your session ended: sign in again."
UNSENT = (
    "You are not signed in (your session may have ended), so what you sent was not done: sign"
    " in, and do it again if it is still needed."
)
NOT_DONE = "not-done"
"""The refund page's `done=` once a form sent without a session comes back to it."""


def safe_next(target: str) -> str:
    """Only a path of the console itself: never another site (open redirect)."""
    ok = target.startswith("/console") and not target.startswith("//") and "\\" not in target
    return target if ok else "/console"


def start_session(request: Request, token: str, lifetime: int, target: str) -> Response:
    response = RedirectResponse(safe_next(target), 303)
    set_cookie(response, SESSION_COOKIE, token, pages(request).config.secure_cookies, lifetime)
    return protect(response)


@router.get("/console/signin")
async def signin_page(request: Request, next: str = "/console", ended: str = "") -> Response:
    config = pages(request).config
    if config.dev_home is None and config.oidc_client_id:
        return await oidc.start(request, config, safe_next(next))
    notice = UNSENT if ended == "unsent" else ENDED if ended else None
    staff = staff_to_choose(config)
    return pages(request).render(
        request, "signin.html", staff=staff, next=safe_next(next), error=None, notice=notice
    )


def staff_to_choose(config: PagesConfig) -> list[tuple[str, str]]:
    """The dev directory's staff, (name, roles), for the sign-in page's list."""
    if config.directory is None:
        return []
    _, members = load_directory(config.directory)
    return [(m.name, ", ".join(m.roles)) for m in members.values() if m.kind == "staff"]


@router.post("/console/signin")
async def signin(
    request: Request,
    name: Annotated[str, Form(max_length=64)] = "",  # none: said on the page, not in JSON
    csrf: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = "",
    next: Annotated[str, Form(max_length=512)] = "/console",
) -> Response:
    """Dev stack only: the dev issuer signs a token for the directory member picked."""
    view = pages(request)
    config = view.config
    if config.dev_home is None or config.directory is None:
        return view.render(request, "message.html", 404, title="Not here", text="No dev sign-in.")
    _, members = load_directory(config.directory)
    error = "Choose who you sign in as." if not name.strip() else None
    try:  # as the CLI's --as takes names: Alice is alice, a typo gets the closest member
        if not error:
            entry = lookup(config.directory, member_name(name.strip(), members))
    except NotInDirectory as unknown:
        error = f"{name} is not in the staff directory{unknown.hint or '.'}"
    if not csrf_ok(config.secret, request, csrf):
        error = "The form expired. Please sign in again."
    elif not error and entry.kind != "staff":
        error = f"{name} is not a member of staff in the directory."
    if error:  # the list again, to choose from (a trial met "sign-in is not configured")
        staff = staff_to_choose(config)
        return view.render(
            request, "signin.html", 400, staff=staff, next=safe_next(next), error=error, notice=None
        )
    issued = mint(config.dev_home, state(request).verifier.config.issuer, entry)
    return start_session(request, issued["access_token"], int(issued["expires_in"]), next)


@router.get("/console/callback")
async def callback(request: Request) -> Response:
    """Production: the issuer sends the browser back here with a code for a token."""
    config = pages(request).config
    token, lifetime, target = await oidc.finish(request, config)
    return start_session(request, token, lifetime, target)


@router.post("/console/signout")
async def signout(
    request: Request, csrf: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = ""
) -> Response:
    response = RedirectResponse("/console/signin", 303)
    if csrf_ok(pages(request).config.secret, request, csrf):
        response.delete_cookie(SESSION_COOKIE, path="/")
    return protect(response)
