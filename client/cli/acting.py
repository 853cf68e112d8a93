"""Who a command acts as, and through which API: the CLI is a client of the HTTP API.

- `refundflow --as NAME ...` in the dev stack: NAME, with a token the stack's issuer signs
  (NAME's roles come from the staff directory; a customer is named by id, cust_…; any
  other name is refused, worker/api_commands.py).
- REFUNDFLOW_TOKEN (and REFUNDFLOW_API_URL, or the dev stack's API): that token's principal.
- Neither, in the dev stack: the staff directory's default member (a support agent), so
  commands written before the API keep working.

The dev stack's tokens are signed on the worker's side (worker/api_commands.py), which
hands `execute` a DevTokens function: the client never holds an issuer's key itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from client.cli.arguments import UserError
from client.errors import NotAllowed, RefundflowError
from client.settings import find_stack

NO_API = (
    "no API to talk to: start `refundflow dev` in this folder, or set REFUNDFLOW_HOME to the"
    " home of a stack started elsewhere (its banner names it); commands then act as its"
    " staff directory's default member, or `refundflow --as NAME ...`. Or set"
    " REFUNDFLOW_API_URL and REFUNDFLOW_TOKEN"
)
SYNONYMS = ("reviewer", "operator", "actor")
"""Options that named who acts before the API: in the dev stack, the same as --as."""
DEFAULT_ACTOR = {"received": "warehouse"}
"""Commands whose natural principal is not the default member: only the warehouse
records a returned item."""


@dataclass(frozen=True)
class Credentials:
    api_url: str
    token: str = field(repr=False)
    name: str | None = None
    """Who the token is for, when the CLI knows (dev tokens)."""
    kind: str | None = None
    """staff, customer, service, warehouse; None: a token from elsewhere."""


DevTokens = Callable[[str | None], Credentials | None]
"""NAME (None: the directory's default member) -> a dev token for the running dev stack's
API; None when no dev stack with an API runs."""


def acting_name(args: argparse.Namespace) -> str | None:
    """--as, or its older synonym on this command (--reviewer, --operator, --actor)."""
    named = getattr(args, "acting_as", None)
    for option in SYNONYMS:
        synonym = getattr(args, option, None)
        if synonym and named and synonym != named:
            raise UserError(
                f"--{option} {synonym} and --as {named} name different people: give one"
            )
        named = named or synonym
    return named or DEFAULT_ACTOR.get(args.command)


def credentials(args: argparse.Namespace, env: dict[str, str] | None = None) -> Credentials:
    """The API and token this command uses (see the module's docstring), found once."""
    known: Credentials | None = getattr(args, "credentials", None)
    if known is None:
        known = args.credentials = _find(args, dict(os.environ if env is None else env))
    return known


def _find(args: argparse.Namespace, env: dict[str, str]) -> Credentials:
    dev_tokens: DevTokens | None = getattr(args, "dev_tokens", None)
    name = acting_name(args)
    explicit = getattr(args, "acting_as", None) or any(getattr(args, o, None) for o in SYNONYMS)
    token = env.get("REFUNDFLOW_TOKEN", "").strip()
    if token and explicit:
        raise UserError(
            f"REFUNDFLOW_TOKEN says who you are: acting as {name} is for the dev stack"
            " (unset REFUNDFLOW_TOKEN there)"
        )
    if token:
        _, stack = find_stack(env.get("REFUNDFLOW_HOME"))
        url = env.get("REFUNDFLOW_API_URL") or str(stack.get("api_url") or "")
        if not url:
            raise RefundflowError("REFUNDFLOW_TOKEN is set: set REFUNDFLOW_API_URL too")
        return Credentials(url.rstrip("/"), token)
    found = dev_tokens(name) if dev_tokens is not None else None
    asked_url = env.get("REFUNDFLOW_API_URL", "").rstrip("/")
    if found is not None and asked_url and asked_url != found.api_url:
        # Another API than this folder's dev stack: its tokens would mean nothing there.
        raise RefundflowError(
            f"REFUNDFLOW_API_URL is {asked_url}, not this dev stack's API ({found.api_url}):"
            " set REFUNDFLOW_TOKEN for it, or unset REFUNDFLOW_API_URL"
        )
    if found is not None:
        return found
    if dev_tokens is None and find_stack(env.get("REFUNDFLOW_HOME"))[1].get("issuer"):
        raise RefundflowError(
            "a dev stack runs here, but only `refundflow` signs its tokens (not `python -m"
            " client`): use `refundflow`, or set REFUNDFLOW_TOKEN"
        )
    home = env.get("REFUNDFLOW_HOME")
    if explicit:  # no stack to sign for them: as "stack not running" is, exit 1
        where = f"REFUNDFLOW_HOME={home}" if home else "this folder"
        raise RefundflowError(
            f"acting as {name} needs the dev stack (`refundflow dev`), and none runs from"
            f" {where}: its issuer signs for its directory; elsewhere REFUNDFLOW_TOKEN says"
            " who you are"
        )
    if env.get("REFUNDFLOW_API_URL") and not env.get("REFUNDFLOW_TOKEN", "").strip():
        # The API is named; what is missing is who asks (a trial's empty token was told
        # there was no API to talk to).
        raise RefundflowError(
            f"REFUNDFLOW_API_URL names {env['REFUNDFLOW_API_URL']}, but REFUNDFLOW_TOKEN is"
            " empty or unset: set it to an access token for that API (docs/identity.md)"
        )
    if home:  # set on purpose: the folder it names is where a stack was looked for
        raise RefundflowError(
            f"no API to talk to: no dev stack runs from REFUNDFLOW_HOME={home} (start"
            " `refundflow dev` with it set, or unset it), or set REFUNDFLOW_API_URL and"
            " REFUNDFLOW_TOKEN"
        )
    raise RefundflowError(NO_API)


async def with_api(args: argparse.Namespace, action: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `action` on an HttpRefundClient acting as the command says."""
    from client.http_client import HttpRefundClient

    found = credentials(args)
    async with HttpRefundClient(found.api_url, found.token) as client:
        try:
            return await action(client)
        except NotAllowed as err:
            implicit = (
                found.name
                and not getattr(args, "acting_as", None)
                and not any(getattr(args, option, None) for option in SYNONYMS)
            )
            if not implicit:
                raise
            # A trial's `operator retry` without --operator read only "only the operator
            # role may retry a payment", not that it had acted as the default member.
            raise NotAllowed(
                f"{err} (you acted as {found.name}, this dev stack's default: name who acts"
                " with --as NAME)"
            ) from None


def requester(args: argparse.Namespace, staff_default: str) -> str:
    """Whom a request (or an eligibility question) is for: --requested-by; else a
    customer's own id; else, for staff and services, `staff_default` as before the API."""
    if args.requested_by:
        return str(args.requested_by)
    found = credentials(args)
    if found.kind == "customer" and found.name:
        return found.name
    if found.kind is None:
        raise UserError(
            "give --requested-by: the customer this refund is for (your own id if you are"
            " the customer)"
        )
    return staff_default


CHANNEL_OF_KIND = {"staff": "support", "service": "api", "customer": "web", "warehouse": "support"}
"""Where a request from the CLI came from, when --channel does not say: staff take requests
at the support desk, services call the API, customers ask on the web."""


def channel(args: argparse.Namespace) -> str:
    """--channel; else the one the acting identity's kind implies (CHANNEL_OF_KIND)."""
    if args.channel:
        return str(args.channel)
    implied = CHANNEL_OF_KIND.get(credentials(args).kind or "")
    if implied is None:
        raise UserError("give --channel: web, app, support or api (where the request came from)")
    return implied


def warn(args: argparse.Namespace, message: str) -> None:
    """One line on stderr; with --json a JSON object, as errors are."""
    if getattr(args, "json", False):
        print(json.dumps({"warning": message}), file=sys.stderr)
    else:
        print(f"warning: {message}", file=sys.stderr)
