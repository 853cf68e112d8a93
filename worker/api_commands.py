"""`refundflow api` (serve the HTTP API) and `refundflow token --as NAME` (a dev token).

Stack commands: the API holds Temporal and Postgres credentials, and `token` signs with the
dev stack's own issuer key, so both live on the composition root's side.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from client.cli import arguments as types
from client.cli.acting import Credentials
from client.cli.arguments import EXIT_OK, UserError
from client.cli.grammar import Subcommands, command
from client.cli.handlers import Handler
from client.errors import RefundflowError
from client.settings import Settings, find_stack
from worker.processes import StackError

if TYPE_CHECKING:
    from api.dev_issuer import DirectoryEntry

MAX_TTL = 86400
DEV_CLI_TTL = 300
"""Seconds a token the CLI signs for one command lives: long enough for the command."""


def add_api_commands(sub: Subcommands) -> None:
    api = command(sub, "api", "serve the HTTP API (REFUNDFLOW_OIDC_* say which tokens it trusts)")
    api.add_argument("--host", help="listen address (default: REFUNDFLOW_API_HOST or 127.0.0.1)")
    api.add_argument("--port", type=int, help="default: REFUNDFLOW_API_PORT or 8080")
    token = command(sub, "token", "print a dev stack access token for NAME (the staff directory)")
    token.add_argument(
        "--as",
        dest="as_name",
        metavar="NAME",
        help="alice, bob (support), li (lead), fang and mei (finance), omar (operator),"
        " warehouse, checkout and reporting (services); or a customer, by id (cust_42); also"
        " taken"
        " before the command, as for every other command (`refundflow --as li token`)",
    )
    token.add_argument(
        "--ttl",
        type=types.positive,
        default=3600,
        help=f"seconds the token is valid (1 to {MAX_TTL}, a day)",
    )


async def _api(args: argparse.Namespace) -> int:
    from api.config import ApiConfig
    from api.server import serve
    from worker.logging_setup import configure_logging

    settings = Settings.from_env()
    if args.json:
        settings = dataclasses.replace(settings, log_format="json")
    config = ApiConfig.from_env()
    config = dataclasses.replace(
        config, host=args.host or config.host, port=args.port or config.port
    )
    configure_logging(settings.log_format, settings.log_level)
    await serve(settings, config)
    return EXIT_OK


def _token(args: argparse.Namespace) -> int:
    name = _who(args)  # the command line first: a usage mistake is one whatever runs
    if args.ttl > MAX_TTL:
        raise UserError(f"--ttl {args.ttl} is more than a day ({MAX_TTL} s): a dev token")
    home, stack = find_stack(os.environ.get("REFUNDFLOW_HOME"))
    issuer = stack.get("issuer")
    if not issuer:
        raise StackError(
            f"no dev stack with an API is running from {home}: dev tokens come from"
            " `refundflow dev`; elsewhere, ask your identity provider for a token"
        )
    minted = _mint(home, str(issuer), name, args.ttl)
    if args.json:
        print(json.dumps({**minted, "issuer": issuer, "api_url": stack.get("api_url")}))
    else:
        print(minted["access_token"])
    return EXIT_OK


def _who(args: argparse.Namespace) -> str:
    """NAME from --as, before the command or after it: once, or twice the same."""
    named: set[str] = {n for n in (args.as_name, getattr(args, "acting_as", None)) if n}
    if len(named) > 1:
        raise UserError(f"--as names {' and '.join(sorted(named))}: give one")
    if not named:
        raise UserError("say whom the token is for: `refundflow --as NAME token`")
    return named.pop()


def _mint(home: Path, issuer: str, name: str | None, ttl: int) -> dict[str, Any]:
    """A dev token for NAME (None: the staff directory's default member)."""
    from api.config import dev_directory
    from api.dev_issuer import load_directory, lookup, mint

    directory = dev_directory(dict(os.environ))
    try:
        default, members = load_directory(directory)
        name = _member_or_customer(name or default, members)
        if not name:
            raise ValueError(f"{directory} names no default member")
        return mint(home, issuer, lookup(directory, name), ttl=ttl)
    except (OSError, ValueError, KeyError) as err:
        raise RefundflowError(f"cannot sign a dev token: {err}") from None


def _member_or_customer(name: str, members: dict[str, DirectoryEntry]) -> str:
    """NAME as the directory has it, or a customer id; a typo is refused in one line."""
    from api.dev_issuer import NotInDirectory, member_name

    try:
        return member_name(name, members)
    except NotInDirectory as err:
        raise UserError(str(err)) from None


def dev_credentials(name: str | None) -> Credentials | None:
    """What the CLI's API commands act with in the running dev stack: a short-lived token
    for NAME (or the directory's default member); None when no dev stack with an API runs."""
    home, stack = find_stack(os.environ.get("REFUNDFLOW_HOME"))
    issuer, url = stack.get("issuer"), stack.get("api_url")
    if not issuer or not url:
        return None
    minted = _mint(home, str(issuer), name, DEV_CLI_TTL)
    return Credentials(str(url), minted["access_token"], minted["subject"], minted["kind"])


API_HANDLERS: dict[str, Handler] = {"api": _api, "token": _token}
